"""The in-process API (raftio/call.py): a board's own code proposing and reading.

Nodes on loopback in this one process, driven by hand (blocking use).
Every error a call can end with is produced for real: not leader with the
leader's id, forwarding to the leader, back-pressure, a malformed and an
oversize command, a timeout; and nothing is lost (a timed-out write that
later commits is still readable, exactly once).
"""
from raft import events as EV
from raft.core import LEADER
from raft.memstorage import MemoryStorage
from raftio import wire
from raftio.call import TIMEOUT, CallError
from raftio.app import AppNode as Node
from raftkv import codec

import portnums

BOARD = {"tick_ms": 5, "election_ticks": 10, "heartbeat_ticks": 2, "ring_capacity": 32,
         "max_entry_bytes": 512, "max_key": 64, "max_value": 128, "max_sessions": 8,
         "heap_budget_bytes": 65536, "snapshot_entries": 1000}


def cluster(n, seed=1):
    base = portnums.base(n)
    peers = [{"id": i, "host": "127.0.0.1", "port": base + i} for i in range(1, n + 1)]
    nodes = {}
    for i in range(1, n + 1):
        cfg = {"node_id": i, "cluster_id": 9, "key": "cd" * 16, "peers": peers}
        nodes[i] = Node(cfg, BOARD, MemoryStorage(list(range(1, n + 1))), seed=seed * 10 + i)
    return nodes


def close(nodes):
    for nd in nodes.values():
        nd.close()


def pump(nodes, until, turns=3000):
    for _ in range(turns):
        for nd in nodes.values():
            if not nd.stopped:
                nd.run_once()
        if until():
            return
    assert False, "condition not reached in %d turns" % turns


def elect(nodes, who=1):
    nodes[who].engine.campaign()
    pump(nodes, lambda: nodes[who].engine.core.role == LEADER
         and all(nd.engine.core.lead == who for nd in nodes.values() if not nd.stopped))
    return nodes[who]


def session(nodes, nd):
    c = nd.propose(codec.encode_register())
    pump(nodes, c.done)
    return codec.decode_client_id(c.value())


def test_propose_and_read_on_the_leader():
    nodes = cluster(3)
    try:
        ld = elect(nodes)
        cid = session(nodes, ld)
        c = ld.propose(codec.encode_put(cid, 1, b"k", b"v1"))
        pump(nodes, c.done)
        assert c.ok() and codec.decode_result(c.value())[0] == codec.OK
        r = ld.read(codec.encode_get(cid, 0, b"k"))
        pump(nodes, r.done)
        assert codec.decode_result(r.value()) == (codec.OK, b"v1")
    finally:
        close(nodes)


def test_follower_says_not_leader_or_forwards():
    nodes = cluster(3, seed=2)
    try:
        ld = elect(nodes)
        cid = session(nodes, ld)
        f = nodes[2]
        c = f.propose(codec.encode_put(cid, 1, b"k", b"v"))
        assert c.done() and c.code == wire.NOT_LEADER and c.leader == 1
        try:
            c.value()
            assert False, "value() of a refused call"
        except CallError as e:
            assert e.code == wire.NOT_LEADER and "leader is node 1" in str(e), str(e)
        c = f.propose(codec.encode_put(cid, 1, b"k", b"v"), forward=True)
        pump(nodes, c.done)
        assert c.ok(), c
        r = nodes[3].read(codec.encode_get(cid, 0, b"k"), forward=True)
        pump(nodes, r.done)
        assert codec.decode_result(r.value()) == (codec.OK, b"v")
        assert f.calls.stats["forwarded"] == 1
    finally:
        close(nodes)


def test_bad_commands_are_refused_and_nothing_is_logged():
    nodes = cluster(1, seed=3)
    try:
        ld = elect(nodes)
        last = ld.engine.core.log.last
        c = ld.propose(b"\x00garbage")
        # Not even a command: the machine cannot classify it.
        assert c.done() and c.code == wire.BAD_REQUEST, c
        c = ld.propose(codec.encode_put(1, 1, b"k", b"x" * 600))
        assert c.done() and c.code == wire.BAD_REQUEST, c   # over max_entry_bytes
        assert ld.engine.core.log.last == last
        try:
            ld.propose(b"x", timeout_ms=0)
            assert False, "timeout 0 accepted"
        except ValueError as e:
            assert "timeout_ms" in str(e)
    finally:
        close(nodes)


def test_back_pressure_is_busy():
    nodes = cluster(1, seed=4)
    try:
        ld = elect(nodes)
        cid = session(nodes, ld)
        calls = [ld.propose(codec.encode_put(cid, k + 1, b"k", b"v")) for k in range(70)]
        busy = [c for c in calls if c.code == wire.BUSY]
        assert len(busy) == 70 - 64, len(busy)
        pump(nodes, lambda: all(c.done() for c in calls))
        assert sum(1 for c in calls if c.ok()) == 64
    finally:
        close(nodes)


def test_timeout_then_the_write_lands_exactly_once():
    nodes = cluster(3, seed=5)
    try:
        ld = elect(nodes)
        cid = session(nodes, ld)
        for i in (2, 3):
            nodes[i].stop()
        put = codec.encode_put(cid, 1, b"k", b"late")
        c = ld.propose(put, timeout_ms=60)
        pump(nodes, c.done)
        assert c.code == TIMEOUT and "outcome unknown" in str(c.error())
        # The followers come back; the entry commits although nobody waits.
        for i in (2, 3):
            nodes[i].stopped = False
        r = ld.read(codec.encode_get(cid, 0, b"k"))
        pump(nodes, r.done)
        assert codec.decode_result(r.value()) == (codec.OK, b"late")
        # A retry with the same sequence number is a duplicate, not a second put.
        c2 = ld.propose(put)
        pump(nodes, c2.done)
        assert c2.ok() and ld.machine.duplicates == 1
    finally:
        close(nodes)


def test_events_reach_the_ring_and_listeners():
    nodes = cluster(3, seed=6)
    try:
        seen = []
        nodes[2].on_event(seen.append)
        elect(nodes)
        assert (EV.LEADER, 1) in [(ev[0], ev[2]) for ev in seen], seen
        kinds = [ev[1][0] for ev in nodes[1].events]
        assert EV.ROLE in kinds and EV.LEADER in kinds
        # Essential by default: no commit events.
        assert EV.COMMIT not in kinds
        nodes[1].set_event_level("debug")
        c = nodes[1].propose(codec.encode_register())
        pump(nodes, c.done)
        assert EV.COMMIT in [ev[1][0] for ev in nodes[1].events]
    finally:
        close(nodes)
