"""raftapp.session: exactly-once sessions around any application machine
(Raft dissertation 6.3), its apply order, eviction and snapshot framing."""
import binascii
import struct

from raft.errors import DecodeError, OverLimit
from raftapp import session as S
from raftapp.session import (OK, SESSION_EXPIRED, STALE_SEQ, TOO_LARGE, MALFORMED,
                             SessionMachine, decode_result, encode_result)

# The snapshot header (raftapp/session.py); this test app has no limits of its own.
_HDR = 17
_WRITE = 2
_READ = 3
_BIG = 4


class Tally:
    """An application machine that counts what it executes: op 2 adds its
    payload byte, op 3 reads, op 4 is always refused by check (TOO_LARGE)."""

    def __init__(self):
        self.total = 0
        self.applies = 0

    def check(self, data):
        op = data[0]
        if op == _BIG and len(data) == S.HEADER:
            return encode_result(TOO_LARGE)
        if op == _WRITE and len(data) == S.HEADER + 1:
            return None
        if op == _READ and len(data) == S.HEADER:
            return None
        raise DecodeError("tally: bad command")

    def apply(self, data):
        self.applies += 1
        if data[0] == _WRITE:
            self.total += data[S.HEADER]
        return encode_result(OK, struct.pack("<I", self.total))

    def is_read(self, data):
        self.check(data)
        return data[0] == _READ

    def query(self, data):
        return encode_result(OK, struct.pack("<I", self.total))

    def snapshot_size(self):
        return 4

    def snapshot_into(self, buf):
        struct.pack_into("<I", buf, 0, self.total)
        return 4

    def restore(self, data):
        if len(data) != 4:
            raise DecodeError("tally: image of %d bytes" % len(data))
        self.total = struct.unpack_from("<I", data, 0)[0]


def _cmd(op, cid, seq, payload=b""):
    return struct.pack("<BII", op, cid, seq) + payload


def _add(cid, seq, n):
    return _cmd(_WRITE, cid, seq, bytes((n,)))


class _Log:
    def __init__(self, max_sessions=4):
        self.app = Tally()
        self.sm = SessionMachine(self.app, max_sessions)
        self.index = 0

    def apply(self, data):
        self.index += 1
        return decode_result(self.sm.apply(self.index, data))

    def register(self):
        st, v = self.apply(b"\x01")
        assert st == OK
        return struct.unpack("<I", v)[0]


def _total(res):
    return struct.unpack("<I", res[1])[0]


def test_register_gives_the_entry_index_as_client_id():
    log = _Log()
    log.apply(_cmd(_READ, 0, 0))
    assert log.register() == 2
    assert log.register() == 3
    assert log.sm.session_count() == 2
    assert _total(log.apply(_add(2, 1, 1))) == 1  # the id names the session


def test_duplicate_gets_the_cached_result_and_is_not_applied_again():
    log = _Log()
    c = log.register()
    first = log.apply(_add(c, 1, 5))
    assert _total(first) == 5 and log.app.applies == 1
    assert log.apply(_add(c, 1, 5)) == first
    assert log.apply(_add(c, 1, 7)) == first  # the seq names the command
    assert log.app.applies == 1 and log.app.total == 5 and log.sm.duplicates == 2
    assert _total(log.apply(_add(c, 2, 1))) == 6


def test_stale_seq_is_refused_and_not_applied():
    log = _Log()
    c = log.register()
    log.apply(_add(c, 3, 1))
    assert log.apply(_add(c, 2, 1)) == (STALE_SEQ, None)
    assert log.apply(_add(c, 0, 1)) == (STALE_SEQ, None)
    assert log.app.applies == 1


def test_seq_zero_is_stale_even_before_the_first_command():
    log = _Log()
    c = log.register()
    assert log.apply(_add(c, 0, 1)) == (STALE_SEQ, None)
    assert log.app.applies == 0


def test_unknown_session_is_expired():
    log = _Log()
    log.register()
    assert log.apply(_add(99, 1, 1)) == (SESSION_EXPIRED, None)
    assert log.app.applies == 0


def test_client_id_zero_has_no_session_and_executes_every_time():
    log = _Log()
    a = log.apply(_add(0, 1, 2))
    b = log.apply(_add(0, 1, 2))
    assert (_total(a), _total(b)) == (2, 4) and log.sm.session_count() == 0
    assert log.sm.duplicates == 0


def test_refusal_by_check_is_not_cached_and_keeps_the_seq_free():
    log = _Log(max_sessions=2)
    a = log.register()   # 1
    b = log.register()   # 2
    assert log.apply(_cmd(_BIG, a, 1)) == (TOO_LARGE, None)
    assert log.sm.refused == 1
    assert _total(log.apply(_add(a, 1, 3))) == 3  # seq 1 still free
    # a refusal is no activity: b (activity 2) is older than a (activity 4)
    log.apply(_cmd(_BIG, b, 1))
    log.register()
    assert log.apply(_add(b, 1, 1)) == (SESSION_EXPIRED, None)
    assert _total(log.apply(_add(a, 2, 1))) == 4


def test_malformed_commands_change_nothing_but_the_applied_index():
    log = _Log()
    c = log.register()
    before = log.sm.snapshot()
    bad = [b"", b"\x00", b"\x01\x00", _cmd(0, c, 1, b"\x01"), _cmd(1, c, 1, b"\x01"),
           _cmd(_WRITE, c, 1), _cmd(9, c, 1), b"\x02\x01\x00"]
    for d in bad:
        assert log.apply(d) == (MALFORMED, None), d
    assert log.sm.malformed == len(bad) and log.app.applies == 0
    log.sm.applied_index = 1
    assert log.sm.snapshot() == before


def test_replayed_index_is_ignored():
    log = _Log()
    c = log.register()
    log.apply(_add(c, 1, 1))
    assert log.sm.apply(2, _add(c, 2, 1)) is None
    assert log.sm.apply(1, b"\x01") is None
    assert log.sm.stale_applies == 2 and log.app.total == 1
    log.sm.skip(9)
    log.sm.skip(4)
    assert log.sm.applied_index == 9


def test_eviction_least_recently_active_then_lowest_id():
    log = _Log(max_sessions=3)
    a = log.register()  # 1
    b = log.register()  # 2
    c = log.register()  # 3
    log.apply(_add(a, 1, 1))       # a active at 4
    log.apply(_add(b, 1, 1))       # b at 5
    log.apply(_add(c, 0, 1))       # a stale seq is activity: c at 6
    log.apply(_add(a, 1, 1))       # so is a duplicate: a at 7
    d = log.register()             # evicts b (5): not a (first registered), not c
    assert log.sm.evictions == 1
    assert log.apply(_add(b, 2, 1)) == (SESSION_EXPIRED, None)
    log.register()                 # evicts c (6)
    assert log.apply(_add(c, 1, 1)) == (SESSION_EXPIRED, None)
    assert log.apply(_add(a, 2, 1))[0] == OK
    assert log.apply(_add(d, 1, 1))[0] == OK
    assert log.sm.session_count() == 3


def _reversed_table(sm):
    # Sessions are made in ascending id order; MicroPython's dicts have no
    # order at all. Reversed, CPython's insertion order cannot hide a walk
    # that depends on it.
    t = sm._sessions
    sm._sessions = dict((k, t[k]) for k in sorted(t, reverse=True))


def test_eviction_tie_breaks_on_lowest_id():
    log = _Log(max_sessions=2)
    log.register()
    log.register()
    snap = bytearray(log.sm.snapshot())
    struct.pack_into("<I", snap, _HDR + 8, 2)  # session 1's activity := 2
    end = len(snap) - 4
    struct.pack_into("<I", snap, end, binascii.crc32(bytes(snap[:end])) & 0xFFFFFFFF)
    log.sm.restore(bytes(snap))
    _reversed_table(log.sm)
    log.register()
    assert log.apply(_add(1, 1, 1)) == (SESSION_EXPIRED, None)
    assert log.apply(_add(2, 1, 1))[0] == OK


def test_is_read_and_query():
    log = _Log()
    sm = log.sm
    assert sm.is_read(b"\x01") is False
    assert sm.is_read(_cmd(_READ, 0, 0)) is True
    assert sm.is_read(_add(1, 1, 1)) is False
    for bad in (b"", b"\x00", b"\x01\x01", _cmd(9, 1, 1), b"\x03\x00"):
        try:
            sm.is_read(bad)
        except DecodeError:
            continue
        assert False, bad
    log.apply(_add(0, 0, 4))
    assert _total(decode_result(sm.query(_cmd(_READ, 0, 0)))) == 4


def _busy():
    log = _Log(max_sessions=4)
    a = log.register()
    b = log.register()
    log.apply(_add(a, 1, 3))
    log.apply(_add(b, 1, 4))
    log.apply(_add(a, 2, 5))
    log.register()  # a session with no result yet
    return log


def test_snapshot_round_trip_keeps_sessions_cached_results_and_app_state():
    log = _busy()
    snap = log.sm.snapshot()
    assert len(snap) == log.sm.snapshot_size()
    other = _Log(max_sessions=4)
    other.sm.restore(snap)
    assert other.sm.snapshot() == snap and other.sm.applied_index == log.index
    assert other.app.total == 12 and other.sm.session_count() == 3
    other.index = log.index
    follow = [_add(1, 2, 9), _add(2, 1, 9), _add(1, 1, 9), _add(6, 1, 1), _add(7, 1, 1), b"\x01"]
    assert [log.apply(d) for d in follow] == [other.apply(d) for d in follow]
    assert log.app.total == other.app.total == 13
    assert log.sm.digest() == other.sm.digest()


def test_snapshot_is_independent_of_insertion_order():
    x = _Log()
    y = _Log()
    for lg in (x, y):
        lg.register()
        lg.register()
    _reversed_table(y.sm)
    x.apply(_add(1, 1, 1))
    x.apply(_add(2, 1, 1))
    y.apply(_add(2, 1, 1))
    y.apply(_add(1, 1, 1))
    # same sessions, seqs and totals; activity differs, so the bytes do too
    assert x.sm.snapshot() != y.sm.snapshot()
    x.apply(_add(1, 2, 1))
    x.apply(_add(2, 2, 1))
    y.apply(_add(1, 2, 1))
    y.apply(_add(2, 2, 1))
    assert x.sm.snapshot() == y.sm.snapshot()


def test_snapshot_into_a_larger_buffer_and_write_in_parts():
    log = _busy()
    buf = bytearray(log.sm.snapshot_size() + 9)
    n = log.sm.snapshot_into(buf)
    assert bytes(buf[:n]) == log.sm.snapshot()
    try:
        log.sm.snapshot_into(bytearray(log.sm.snapshot_size() - 1))
    except ValueError:
        pass
    else:
        assert False

    class Out:
        parts = []

        def write(self, b):
            self.parts.append(bytes(b))

    out = Out()
    assert log.sm.snapshot_write(out) == n
    assert b"".join(out.parts) == log.sm.snapshot() and len(out.parts) == 6


def _refused(sm, data):
    before = sm.snapshot()
    total = sm.app.total
    try:
        sm.restore(data)
    except DecodeError:
        assert sm.snapshot() == before and sm.app.total == total
        return
    assert False, "restore accepted %r" % (bytes(data),)


def _recrc(b):
    b = bytearray(b)
    end = len(b) - 4
    struct.pack_into("<I", b, end, binascii.crc32(bytes(b[:end])) & 0xFFFFFFFF)
    return bytes(b)


def test_corrupt_snapshot_raises_decode_error_and_keeps_the_old_state():
    snap = _busy().sm.snapshot()
    target = _Log()
    c = target.register()
    target.apply(_add(c, 1, 77))
    sm = target.sm
    for cut in range(len(snap)):
        _refused(sm, snap[:cut])
    for i in range(len(snap)):
        b = bytearray(snap)
        b[i] ^= 0x24
        _refused(sm, bytes(b))
    _refused(sm, snap + b"\x00")
    # well-formed crc, bad structure
    # (12: max_sessions, below the 3 sessions or zero; _HDR: the first record)
    for off, val in ((8, 2), (8, 4), (8, 99), (12, 0), (12, 2), (_HDR, 0), (_HDR, 9),
                     (_HDR + 8, 99)):
        b = bytearray(snap)
        struct.pack_into("<I", b, off, val)
        _refused(sm, _recrc(b))
    b = bytearray(snap)
    b[3] = 3  # a future format version
    _refused(sm, _recrc(b))
    # the application refuses its image: the sessions are not taken either
    _refused(sm, _recrc(snap[:-4] + b"\x00" + snap[-4:]))
    # a cached result that is no result (a value flag, no length)
    b = bytearray(snap)
    assert b[_HDR + 14] == 0x80
    b[_HDR + 14] = 0x81
    struct.pack_into("<H", b, _HDR + 15, 99)
    _refused(sm, _recrc(b))
    assert target.app.total == 77 and sm.session_count() == 1


def test_too_many_sessions_in_a_snapshot_are_over_this_nodes_capacity():
    # The snapshot's limits (4 sessions) are the cluster's and adopted; a
    # node whose capacity is 2 cannot hold its 3 sessions: OverLimit, not
    # corruption, and the old state stays.
    snap = _busy().sm.snapshot()
    small = _Log(max_sessions=2)
    small.register()
    before = small.sm.snapshot()
    try:
        small.sm.restore(snap)
        assert False, "restored 3 sessions into a capacity of 2"
    except OverLimit as e:
        assert e.args == ("snapshot", 3, "sessions", 2), e.args
    assert small.sm.snapshot() == before and small.sm.max_sessions == 2
    # A node configured with 2 but able to hold more adopts the snapshot's 4.
    roomy = _Log(max_sessions=2)
    roomy.sm.cap_sessions = 8
    roomy.sm.restore(snap)
    assert roomy.sm.max_sessions == 4 and roomy.sm.session_count() == 3


def test_results_encode_and_decode():
    for st, v in ((0, None), (127, None), (9, b""), (1, b"abc")):
        assert decode_result(encode_result(st, v)) == (st, v)
    for bad in (b"", b"\x80", b"\x80\x01\x00", b"\x00\x00", b"\x81\x00\x00x"):
        try:
            decode_result(bad)
        except DecodeError:
            continue
        assert False, bad
