"""Every rule of the session layer and the lock service has a test that
fails without it.

Each case is a plausible bug written as a one-line mutation of the shipped
source (lib/raftapp/session.py, lib/raftapp/lock.py), applied in-process,
and the portable test that must then fail. The lock service's acceptance
rule, no two holders of a lock at once, is also shown broken in the
simulator: a machine that grants one tick before the lease expires (the
negative control) and replicas that decide expiry by their own clocks are
both caught by the lock checker (tools/simulator/lockcheck.py, simlock.py).
"""
import pytest

from simrun import run_inproc
from test_engine_teeth import mutate

import test_raftapp_lock as TL
import test_raftapp_session as TS
from raftapp import lock as L
from raftapp.session import SessionMachine

_S = "lib/raftapp/session.py"
_L = "lib/raftapp/lock.py"

CASES = [
    # (file, class, old, new, the test that must fail)
    (_S, "if index <= self.applied_index:", "if index < self.applied_index:",
     TS.test_replayed_index_is_ignored),
    (_S, "sessions[index] = [0, index, None]", "sessions[index + 1] = [0, index, None]",
     TS.test_register_gives_the_entry_index_as_client_id),
    (_S, "if seq == last and last:", "if False:",
     TS.test_duplicate_gets_the_cached_result_and_is_not_applied_again),
    (_S, "if seq <= last:", "if seq < last:", TS.test_seq_zero_is_stale_even_before_the_first_command),
    (_S, "if not cid:", "if False:", TS.test_client_id_zero_has_no_session_and_executes_every_time),
    (_S, "s[_ACT] = index", "pass", TS.test_eviction_least_recently_active_then_lowest_id),
    (_S, "if victim is None or act < vact or (act == vact and cid < victim):",
     "if victim is None or act < vact:", TS.test_eviction_tie_breaks_on_lowest_id),
    (_S, "act = sessions[cid][_ACT]", "act = cid",
     TS.test_eviction_least_recently_active_then_lowest_id),
    (_S, "        if err is not None:\n", "        if err is not None and False:\n",
     TS.test_refusal_by_check_is_not_cached_and_keeps_the_seq_free),
    (_S, "if binascii.crc32(mv[:end]) & 0xFFFFFFFF != struct.unpack_from(\"<I\", data, end)[0]:",
     "if False:", TS.test_corrupt_snapshot_raises_decode_error_and_keeps_the_old_state),
    (_S, "if cid <= prev or act < cid or act > applied or p + rl > end:",
     "if cid <= prev or act < cid or p + rl > end:",
     TS.test_corrupt_snapshot_raises_decode_error_and_keeps_the_old_state),
    (_S, "for cid in sorted(sessions):", "for cid in sessions:",
     TS.test_snapshot_is_independent_of_insertion_order),
    (_L, "return rec[_EXP] <= self.now", "return rec[_EXP] < self.now",
     TL.test_expiry_only_by_log_time),
    (_L, "return rec[_EXP] <= self.now", "return rec[_EXP] <= self.now + 1",
     TL.test_expiry_only_by_log_time),
    (_L, "self.now = now + lease", "self.now = now + 1", TL.test_renew_extends_only_the_live_grant_of_its_holder),
    (_L, "or rec[_TOKEN] != token", "", TL.test_renew_extends_only_the_live_grant_of_its_holder),
    (_L, "if (rec is None or rec[_HOLDER] != cid", "if (rec is None",
     TL.test_release_by_the_holder_frees_the_lock_and_others_are_refused),
    (_L, "                or self._free(rec)):", "                ):", TL.test_expiry_only_by_log_time),
    (_L, "if rec[_HOLDER] != cid:", "if False:", TL.test_grant_and_contention),
    (_L, "self.fence += 1", "self.fence += 1 if rec is None else 0", TL.test_expiry_only_by_log_time),
    (_L, "self.fence = fence", "self.fence = 0", TL.test_tokens_increase_across_snapshot_and_restore),
    (_L, "return _R_NO_SESSION", "return None", TL.test_bad_commands),
]


def _cls(path):
    return SessionMachine if path == _S else L.LockTable


@pytest.mark.parametrize("i", range(len(CASES)))
def test_each_rule_broken_once_fails_its_test(monkeypatch, i):
    path, old, new, test = CASES[i]
    test()  # the control: unmutated, it passes
    mutate(monkeypatch, path, _cls(path), old, new)
    with pytest.raises(Exception):  # an assertion, or a result that is not one
        test()


LOCK = dict(steps=2500, nodes=5, faults=["drop", "dup", "reorder", "partition", "crash",
                                         "leader", "powercut"], clients=5, machine="lock")


def _runs(seeds):
    out = []
    for s in seeds:
        _, res = run_inproc(seed=s, **LOCK)
        out.append(res)
    return out


def test_unmutated_lock_service_passes_the_same_runs():
    for res in _runs(range(1, 4)):
        assert res["violations"] == [] and res["grants"] > 20, res


def test_negative_control_grant_one_tick_before_expiry(monkeypatch):
    mutate(monkeypatch, _L, L.LockTable, "return rec[_EXP] <= self.now",
           "return rec[_EXP] <= self.now + 1")
    res = _runs(range(1, 4))
    caught = [r for r in res if any("two holders at once" in v for v in r["violations"])]
    assert caught, [r["violations"] for r in res]


def test_replicas_with_their_own_clocks_are_caught(monkeypatch):
    """Expiry by a replica's own clock (here: each replica's clock runs a
    different number of ticks ahead): the replicas answer the same entry
    differently, which the replica comparison catches."""
    made = [0]
    init = L.LockTable.__init__

    def skewed_init(self, *a):
        init(self, *a)
        made[0] += 1
        self.skew = made[0] % 3

    monkeypatch.setattr(L.LockTable, "__init__", skewed_init)
    monkeypatch.setattr(L.LockTable, "_free", lambda self, rec: rec[2] <= self.now + self.skew)
    res = _runs(range(1, 4))
    caught = [r for r in res if any("differs from another replica" in v or "two holders" in v
                                    for v in r["violations"])]
    assert caught, [r["violations"] for r in res]
