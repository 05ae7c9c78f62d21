"""A cluster across the ticks_ms wrap (2**30 ms, the period of a 32-bit
board's clock): the simulator's clock starts 3 s before it, so the wrap comes
after 300 steps of 10 ms. pytest and MicroPython (mptest)."""
import gc

import sim

_PERIOD = 1 << 30
_BEFORE_WRAP_MS = 3000


def _sim(faults, reads, seed, clients=3):
    gc.collect()
    opts = sim.parse_args([])
    opts.update({"seed": seed, "nodes": 5, "faults": faults, "clients": clients,
                 "check_linear": True, "reads": reads,
                 "clock_start": _PERIOD - _BEFORE_WRAP_MS})
    s = sim.Sim(opts)
    _jitter(s.clock)
    return s


def _jitter(clock):
    # A board's loop does not wake on the tick grid: steps of 7, 13, 9 and
    # 11 ms (10 on average) put the wrap between a tick deadline and the
    # clock reading, where comparing ticks without ticks_diff goes wrong.
    steps = (7, 13, 9, 11)
    k = [0]
    advance = clock.advance

    def jittered(ms):
        advance(steps[k[0] & 3] + ms - 10)
        k[0] += 1
    clock.advance = jittered


def _count_ticks(s, ticks):
    for i in s.ids:
        rn = s.nodes[i].engine.rawnode
        ticks[i] = 0

        def counted(i=i, orig=rn.tick):
            ticks[i] += 1
            orig()
        rn.tick = counted


def test_no_spurious_election_and_no_stalled_ticks_across_the_wrap():
    s = _sim([], "lease", 3)
    ticks = {}
    while s.leader() is None:
        s.step()
    elections = s.checker.elections
    _count_ticks(s, ticks)
    wrapped = None
    for _ in range(900):
        before = s.clock.ticks_ms()
        s.step()
        if wrapped is None and s.clock.ticks_ms() < before:
            wrapped = s.now
            commit_at_wrap = s.checker.commit_count()
            ticks_at_wrap = dict(ticks)
    assert wrapped is not None, "the clock never wrapped"
    res = s.summary()
    after = s.now - wrapped
    assert after >= 500
    # No spurious election: the leader elected before the wrap leads after it.
    assert s.checker.elections == elections, (elections, s.checker.elections)
    # No stalled heartbeat: every node kept ticking at one tick per 10 ms step
    # after the wrap (a tick lost to the wrap never comes back).
    for i in s.ids:
        assert ticks[i] - ticks_at_wrap[i] >= after - 2, (i, ticks, ticks_at_wrap, after)
    # Commits keep coming, and every node follows the leader's commit.
    assert s.checker.commit_count() - commit_at_wrap > 50
    top = s.leader().engine.core.log.committed
    for i in s.ids:
        assert top - s.nodes[i].engine.core.log.committed < 20
    # Lease reads served across the wrap are linearizable.
    assert res["violations"] == [] and res["linearizable"] is True, res
    assert res["get_ok"] > 20


def test_lease_reads_stay_linearizable_through_partitions_across_the_wrap():
    # A deposed leader's lease must expire by the clock on both sides of the
    # wrap, or it serves stale reads that lincheck rejects.
    for seed in (1, 2):
        s = _sim(["partition", "leader"], "lease", seed)
        for _ in range(1500):
            s.step()
        res = s.summary()
        assert res["violations"] == [] and res["linearizable"] is True, res
        assert res["elections"] > 1 and res["get_ok"] > 20, res
