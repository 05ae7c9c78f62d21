"""Snapshots and compaction in the simulator, in the spirit of MIT 6.5840 3D.

Each test drives tools/simulator/sim.py's Sim by hand, with the real flash formats
(powercut mode) where storage matters, and relies on the checker for safety.
"""
import pytest

from simrun import run_inproc

import sim as simmod


def _sim(**kw):
    opts = simmod.parse_args([])
    opts.update(kw)
    return simmod.Sim(opts)


def _run(s, steps):
    for _ in range(steps):
        s.step()
        assert not s.checker.violations, s.checker.violations


def _applied(s, i):
    return s.nodes[i].applied


def test_log_size_stays_bounded():
    # Every node's stored log stays within snapshot interval + kept tail +
    # the uncommitted window, whatever the faults (3D "log size").
    s = _sim(seed=11, faults=["drop", "dup", "reorder", "crash", "partition", "powercut"],
             snap_every=100, snap_keep=10, ring=32)
    bound = 100 + 10 + 32 + 1
    worst = 0
    for _ in range(4000):
        s.step()
        assert not s.checker.violations, s.checker.violations
        for i in s.ids:
            st = s.nodes[i].storage
            n = st.last_index() - st.first_index() + 1
            worst = max(worst, n)
            assert n <= bound, (i, n, bound)
    assert s.checker.commit_count() > 1000
    assert worst > 100  # the bound was actually approached


def test_install_snapshot_after_long_disconnect():
    s = _sim(seed=5, faults=[], snap_every=50, snap_keep=5)
    _run(s, 100)
    for b in s.ids:
        if b != 5:
            s.net.blocked.add((5, b))
            s.net.blocked.add((b, 5))
    _run(s, 600)
    behind = _applied(s, 5)
    lead = s.leader()
    assert lead.engine.core.log.snap_index > behind + 50  # it can only catch up by snapshot
    s.net.blocked = set()
    before = s.snapshots_installed
    _run(s, 100)
    assert s.snapshots_installed > before
    assert abs(_applied(s, 5) - _applied(s, lead.id)) <= 10


@pytest.mark.parametrize("faults", [["crash", "powercut"],
                                    ["crash", "powercut", "drop", "dup", "reorder"]])
def test_install_snapshot_with_crashes(faults):
    installed = 0
    for seed in range(1, 6):
        sim, res = run_inproc(seed=seed, steps=3000, faults=faults, snap_every=60, snap_keep=5)
        assert res["violations"] == [], res
        installed += res["snapshots_installed"]
    assert installed > 0


def test_all_nodes_crash_and_restart_from_snapshot_and_tail():
    s = _sim(seed=3, faults=["powercut"], snap_every=80, snap_keep=10)
    _run(s, 400)
    committed = s.checker.commit_count()
    snaps = dict((i, s.nodes[i].storage.snapshot().index) for i in s.ids)
    assert min(snaps.values()) > 0
    for i in s.ids:
        n = s.nodes[i]
        n.up = False
        s.net.drop_for(i)
    for i in s.ids:
        n = s.nodes[i]
        n.power_cycle()
        n.boot()
        s.checker.rebooted(n)
        # The state machine restarts at its snapshot, not at index 0, and
        # nothing before the snapshot is applied twice.
        assert n.applied == snaps[i] == n.engine.core.log.applied
    _run(s, 300)
    assert s.checker.commit_count() > committed + 100
    digests = set(s.nodes[i].machine.chain for i in s.ids if s.nodes[i].applied == _applied(s, 1))
    assert len(digests) == 1


def test_bounded_memory_100k_entries_through_a_64_slot_ring():
    import bench_core
    opts = simmod.parse_args(["--faults", "none", "--seed", "2", "--ring", "64",
                              "--snap-every", "500", "--snap-keep", "50", "--steps", "6000"])
    opts["per_step"] = 63
    s = bench_core.BenchSim(opts)
    max_stored = max_snap = 0
    while s.checker.commit_count() < 100000 and s.now < 6000:
        s.step()
        for i in s.ids:
            n = s.nodes[i]
            log = n.engine.core.log
            assert log.last - log.lo + 1 <= 64
            assert len(log._ring) == 64
            st = n.storage
            max_stored = max(max_stored, st.last_index() - st.first_index() + 1)
            max_snap = max(max_snap, len(st.snapshot().data))
    assert not s.checker.violations
    assert s.checker.commit_count() >= 100000
    assert max_stored <= 500 + 50 + 64 + 1
    # The image does not grow with the log: the empty address book (6
    # bytes), the chain (8) and the empty store the bench's non-commands
    # leave (raftkv's 20-byte header and checksum, and since "RSM\x02" the
    # cluster's limits: max_sessions, a count and the store's three).
    assert max_snap == 6 + 8 + 20 + 4 + 1 + 3 * 4
