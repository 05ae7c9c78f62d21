"""tools/simulator/lockcheck.py states the lock service's safety rules: each
rule is shown broken by a hand-made log (the checker must say so) and kept
by the real lock machine; then a short simulator run of the lock service
under every fault passes it, on both interpreters."""
import struct

from lockcheck import LockChecker
from raftapp import lock as L
from raftapp.session import OK, encode_result

A = 11   # client ids (sessions)
B = 12


def _grant(t, e):
    return encode_result(OK, struct.pack("<II", t, e))


def _feed(entries):
    ck = LockChecker()
    for i, (data, res) in enumerate(entries):
        ck.entry(i + 1, data, res, True)
    return ck


def _now(t):
    return encode_result(OK, struct.pack("<I", t))


def test_a_correct_history_passes():
    ck = _feed([
        (L.encode_acquire(A, 1, b"x", 10), _grant(1, 10)),
        (L.encode_acquire(B, 1, b"x", 10), encode_result(L.HELD, struct.pack("<II", 1, 10))),
        (L.encode_advance(5), _now(5)),
        (L.encode_renew(A, 2, b"x", 1, 10), _grant(1, 15)),
        (L.encode_check(A, 3, b"x", 1), _grant(1, 15)),
        (L.encode_advance(15), _now(20)),
        (L.encode_acquire(B, 2, b"x", 4), _grant(2, 24)),
        (L.encode_release(B, 3, b"x", 2), b"\x00"),
        (L.encode_acquire(A, 4, b"x", 4), _grant(3, 24)),
    ])
    assert ck.violations == [] and ck.n["grants"] == 3 and ck.now == 20


def test_two_holders_at_once_is_a_violation():
    ck = _feed([
        (L.encode_acquire(A, 1, b"x", 10), _grant(1, 10)),
        (L.encode_advance(9), _now(9)),
        (L.encode_acquire(B, 1, b"x", 10), _grant(2, 19)),  # one tick early
    ])
    assert len(ck.violations) == 1 and "two holders at once" in ck.violations[0]


def test_a_renewal_moves_the_end_of_the_interval():
    ck = _feed([
        (L.encode_acquire(A, 1, b"x", 10), _grant(1, 10)),
        (L.encode_renew(A, 2, b"x", 1, 30), _grant(1, 30)),
        (L.encode_advance(20), _now(20)),
        (L.encode_acquire(B, 1, b"x", 10), _grant(2, 30)),
    ])
    assert "two holders at once" in ck.violations[0]


def test_a_token_that_does_not_grow_is_a_violation():
    ck = _feed([
        (L.encode_acquire(A, 1, b"x", 10), _grant(5, 10)),
        (L.encode_acquire(B, 1, b"y", 10), _grant(5, 10)),
    ])
    assert "not above" in ck.violations[0]


def test_an_expiry_not_from_log_time_is_a_violation():
    ck = _feed([
        (L.encode_advance(7), _now(7)),
        (L.encode_acquire(A, 1, b"x", 10), _grant(1, 10)),
    ])
    assert "expiry 10, not log time 7" in ck.violations[0]
    ck = _feed([(L.encode_advance(7), _now(8))])
    assert "ADVANCE says now 8" in ck.violations[0]


def test_operations_need_the_live_grant_and_its_token():
    base = [(L.encode_acquire(A, 1, b"x", 10), _grant(1, 10))]
    for op in (L.encode_check(A, 2, b"x", 2), L.encode_check(B, 2, b"x", 1),
               L.encode_release(B, 2, b"x", 1), L.encode_renew(A, 2, b"x", 9, 5)):
        ck = _feed(base + [(op, _grant(1, 10) if op[0] != L.RELEASE else b"\x00")])
        assert "accepted" in ck.violations[0], op
    # after expiry, even the holder's right token is refused
    ck = _feed(base + [(L.encode_advance(10), _now(10)),
                       (L.encode_check(A, 2, b"x", 1), _grant(1, 10))])
    assert "accepted" in ck.violations[0]
    # after a release too
    ck = _feed(base + [(L.encode_release(A, 2, b"x", 1), b"\x00"),
                       (L.encode_renew(A, 3, b"x", 1, 5), _grant(1, 5))])
    assert "accepted" in ck.violations[0]


def test_held_without_a_live_grant_is_a_violation():
    ck = _feed([(L.encode_acquire(B, 1, b"x", 10),
                 encode_result(L.HELD, struct.pack("<II", 1, 10)))])
    assert "HELD" in ck.violations[0]


def test_duplicates_carry_no_new_fact():
    ck = LockChecker()
    ck.entry(1, L.encode_acquire(A, 1, b"x", 10), _grant(1, 10), True)
    ck.entry(2, L.encode_advance(20), _now(20), True)
    ck.entry(3, L.encode_acquire(B, 1, b"x", 10), _grant(2, 30), True)
    ck.entry(4, L.encode_acquire(A, 1, b"x", 10), _grant(1, 10), False)  # A's retry, cached
    assert ck.violations == []


def test_what_clients_were_told_must_be_the_logs():
    ck = _feed([(L.encode_acquire(A, 1, b"x", 10), _grant(1, 10))])
    ck.client_grant(A, b"x", 1)
    assert ck.violations == []
    ck.client_grant(B, b"x", 1)
    ck.client_grant(A, b"x", 7)
    assert len(ck.violations) == 2


def test_the_lock_machine_passes_the_checker():
    sm = L.machine()
    ck = LockChecker()
    cmds = [b"\x01", b"\x01", L.encode_acquire(1, 1, b"x", 3), L.encode_acquire(2, 1, b"x", 3),
            L.encode_advance(2), L.encode_renew(1, 2, b"x", 1, 3), L.encode_advance(2),
            L.encode_acquire(2, 2, b"x", 3), L.encode_check(1, 3, b"x", 1),
            L.encode_advance(1), L.encode_acquire(2, 3, b"x", 3), L.encode_check(2, 4, b"x", 2),
            L.encode_release(2, 5, b"x", 2), L.encode_acquire(1, 4, b"x", 3)]
    for i, c in enumerate(cmds):
        dup = sm.duplicates
        res = sm.apply(i + 1, c)
        ck.entry(i + 1, c, res, sm.duplicates == dup)
    assert ck.violations == [] and ck.n["grants"] == 3 and ck.n["checks"] == 2


def test_lock_service_under_every_fault_short_run():
    import sim
    opts = sim.parse_args(["--machine", "lock", "--clients", "5", "--steps", "2500",
                           "--faults", "all", "--seed", "3"])
    res = sim.Sim(opts).run()
    assert res["violations"] == [] and res["lock_violations"] == []
    assert res["grants"] > 20 and res["checks"] > 5 and res["releases"] > 0
    assert res["client_grants"] > 20 and res["log_time"] > 500
