"""A node whose machine cannot take the replicated state halts applying,
reports it and retries; it never raises out of its loop (issue 12 item 1).

One node per test on loopback (port 0), MemoryStorage, the real clock.
The node's capacity (node file "capacity", what a board flashed with
--force holds) is below the cluster's limits ("limits"): a snapshot or an
entry past it raises OverLimit in the machine, and the engine keeps
serving: status "state" says why, nothing past the failed entry is
applied, no snapshot is taken, appends are dropped and counted, and once
the machine can take it (here: its capacity raised) the retry catches up.
"""
from raft import msg as M
from raft.core import LEADER
from raft.memstorage import MemoryStorage
from raft.storage import Snapshot
from raftio import clock
from raftio.node import Node
from raftkv import codec
from raftkv.kv import KVStateMachine

BOARD = {"tick_ms": 5, "election_ticks": 10, "heartbeat_ticks": 2, "ring_capacity": 32,
         "max_entry_bytes": 512, "max_key": 64, "max_value": 128, "max_sessions": 8,
         "heap_budget_bytes": 65536, "snapshot_entries": 4}
LIMITS = {"max_key": 64, "max_value": 128, "max_keys": 100, "max_sessions": 8}


def _node(st, sessions):
    cfg = {"node_id": 1, "cluster_id": 5, "key": "ab" * 16, "voters": [1],
           "peers": [{"id": 1, "host": "127.0.0.1", "port": 0}], "limits": LIMITS,
           "capacity": dict(LIMITS, max_sessions=sessions)}
    return Node(cfg, BOARD, st, seed=1)


def _turns(n, pred, ms=3000):
    # Bounded in turns and time; every turn must return (never raise).
    start = clock.ticks_ms()
    for _ in range(100000):
        n.run_once()
        if pred() or clock.ticks_diff(clock.ticks_ms(), start) > ms:
            break
    return pred()


def _leader(n):
    n.engine.campaign()
    assert _turns(n, lambda: n.engine.core.role == LEADER)


def test_a_snapshot_beyond_capacity_at_boot_halts_and_a_retry_restores_it():
    kv = KVStateMachine(64, 128, 100, 8)
    for i in range(1, 6):
        kv.apply(i, codec.encode_register())
    st = MemoryStorage((1,), ())
    st.apply_snapshot(Snapshot(5, 1, (1,), (), kv.snapshot()))
    n = _node(st, 3)
    try:
        why = "over-limit: snapshot needs 5 sessions, this node holds 3"
        assert n.engine.halted == why and n.status()["state"] == why
        assert n.machine.applied_index == 0 and n.machine.session_count() == 0
        _leader(n)
        # A halted leader takes no proposals (nothing would answer them).
        assert n.engine.propose(codec.encode_register()) == 0
        # The first retry (after 1 s) fails the same way: the back-off doubles.
        assert _turns(n, lambda: n.engine._retry_ms == 2000)
        assert n.engine.halted == why
        n.machine.cap_sessions = 8  # e.g. memory freed: the next retry restores
        assert _turns(n, lambda: n.engine.halted is None, 4000)
        assert n.status()["state"] == "ok" and n.machine.session_count() == 5
        assert n.machine.applied_index == n.engine.core.log.applied
        assert n.engine.propose(codec.encode_register()) > 0
    finally:
        n.close()


def test_an_entry_beyond_capacity_stops_applying_before_it_and_a_retry_applies_it():
    st = MemoryStorage((1,), ())
    n = _node(st, 2)
    try:
        _leader(n)
        idx = [n.engine.propose(codec.encode_register()) for _ in range(3)]
        assert 0 not in idx
        assert _turns(n, lambda: n.engine.halted is not None)
        assert n.engine.halted == "over-limit: log needs 3 sessions, this node holds 2"
        # Nothing past the failed entry, which the core counts as applied.
        assert n.machine.applied_index == idx[2] - 1 and n.machine.session_count() == 2
        assert n.engine.core.log.applied >= idx[2]
        # No snapshot of a machine that is behind the log, even forced.
        snap = st.snapshot().index
        n.engine.maybe_snapshot(True)
        assert st.snapshot().index == snap
        # Appends are dropped and counted: the flash log cannot fill.
        before = n.engine.stats["halted"]
        n.engine.step(M.Message(M.APP, 1, 2, n.engine.core.term))
        assert n.engine.stats["halted"] == before + 1
        assert n.status()["n_halted"] == before + 1
        n.machine.cap_sessions = 4
        assert _turns(n, lambda: n.engine.halted is None, 4000)
        assert n.machine.session_count() == 3
        assert n.machine.applied_index == n.engine.core.log.applied
        # Serving again: a write is applied and a snapshot can be taken.
        cid = idx[0]
        i = n.engine.propose(codec.encode_put(cid, 1, b"k", b"v"))
        assert _turns(n, lambda: n.machine.applied_index >= i)
        assert n.machine.get_local(b"k") == b"v"
        n.engine.maybe_snapshot(True)
        assert st.snapshot().index >= i
    finally:
        n.close()


def test_an_append_with_an_entry_larger_than_the_slots_is_dropped_and_halts():
    # A board forced into a cluster whose entries are larger than its slots
    # (max_entry_bytes): the flash append would fail mid-Ready; the append
    # is refused whole instead, and the node keeps running.
    st = MemoryStorage((1, 2), ())
    cfg = {"node_id": 1, "cluster_id": 5, "key": "ab" * 16,
           "peers": [{"id": 1, "host": "127.0.0.1", "port": 0},
                     {"id": 2, "host": "127.0.0.1", "port": 0}]}
    n = Node(cfg, BOARD, st, seed=1)
    try:
        big = M.Message(M.APP, 1, 2, 1, 0, 0, 0, entries=[(1, 1, 0, b"x" * 600)])
        n.engine.step(big)
        assert n.engine.halted == "over-limit: entry needs 600 bytes, this node holds 512"
        assert n.engine.stats["halted"] == 1 and n.engine.core.log.last == 0
        assert n.engine.core.term == 0  # the message never reached the core
        for _ in range(20):
            n.run_once()
        ok = M.Message(M.APP, 1, 2, 1, 0, 0, 0, entries=[(1, 1, 0, b"x" * 500)])
        n.engine._retry_at = n.clock.ticks_ms()  # the retry is due
        n.run_once()
        assert n.engine.halted is None
        n.engine.step(ok)
        n.run_once()
        assert n.engine.core.log.last == 1 and st.last_index() == 1
    finally:
        n.close()
