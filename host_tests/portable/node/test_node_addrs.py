"""raftio.node keeps the addresses it learned from conf changes in its snapshots.

`raftctl add-learner 6 host:port` teaches every member where node 6 listens
through the conf entry's ctx. Once a snapshot compacts that entry away, a
restarted node (booting from the snapshot) and a node catching up from the
snapshot must still know it, so the snapshot carries the address book next
to the KV image. One node per test, loopback, port 0: nothing listens at the
learned addresses and nothing needs to.
"""
from raft import confchange as CC
from raft.core import LEADER
from raft.memstorage import MemoryStorage
from raft.storage import Snapshot
from raftio.frame import DROP_MALFORMED
from raftio.node import Node
from raftio.udp import resolve
from raftkv import codec
from raftkv.kv import KVStateMachine

BOARD = {"tick_ms": 5, "election_ticks": 10, "heartbeat_ticks": 2, "ring_capacity": 32,
         "max_entry_bytes": 512, "max_key": 64, "max_value": 128, "max_sessions": 8,
         "heap_budget_bytes": 65536, "snapshot_entries": 1000}


def _node(nid, st):
    cfg = {"node_id": nid, "cluster_id": 5, "key": "ab" * 16, "voters": [nid],
           "peers": [{"id": nid, "host": "127.0.0.1", "port": 0}]}
    return Node(cfg, BOARD, st, seed=nid)


def _settle(n, idx):
    for _ in range(100):
        n.run_once()
        if n.engine.core.log.applied >= idx:
            return
    assert False, "index %d not applied (applied %d)" % (idx, n.engine.core.log.applied)


def _leader():
    st = MemoryStorage((1,), ())
    n = _node(1, st)
    n.engine.campaign()
    for _ in range(50):
        n.run_once()
        if n.engine.core.role == LEADER:
            break
    assert n.engine.core.role == LEADER
    return n, st


def _knows(n, nid, port):
    return n.transport._addr_of.get(nid) == resolve("127.0.0.1", port)


def _old_image():
    kv = KVStateMachine(64, 128, 2048, 8)
    kv.apply(1, codec.encode_register())
    kv.apply(2, codec.encode_put(1, 1, b"k", b"v"))
    return kv.snapshot()


def test_learned_address_survives_compaction_restart_and_transfer():
    n, st = _leader()
    try:
        idx = n.engine.propose(codec.encode_register())
        _settle(n, idx)
        idx = n.engine.propose(codec.encode_put(idx, 1, b"k", b"v"))
        _settle(n, idx)
        idx = n.engine.propose_conf_change(CC.ADD_LEARNER, 6, b"127.0.0.1:7006")
        _settle(n, idx)
        assert _knows(n, 6, 7006)
        n.engine.maybe_snapshot(True)
        assert st.first_index() > idx  # the conf entry is gone from the log
        digest = n.machine.digest()
    finally:
        n.close()
    # Restart from the same storage: only the snapshot remembers node 6.
    n = _node(1, st)
    try:
        assert _knows(n, 6, 7006), n.transport.peers()
        assert n.machine.get_local(b"k") == b"v" and n.machine.digest() == digest
    finally:
        n.close()
    # A node that catches up from that snapshot learns it too.
    other = _node(3, MemoryStorage((3,), ()))
    try:
        assert not _knows(other, 6, 7006)
        other.engine._restore(st.snapshot())
        assert _knows(other, 6, 7006), other.transport.peers()
        assert other.machine.digest() == digest
    finally:
        other.close()


def test_remove_forgets_the_address():
    n, st = _leader()
    try:
        _settle(n, n.engine.propose_conf_change(CC.ADD_LEARNER, 6, b"127.0.0.1:7006"))
        _settle(n, n.engine.propose_conf_change(CC.ADD_LEARNER, 7, b"127.0.0.1:7007"))
        _settle(n, n.engine.propose_conf_change(CC.REMOVE, 7, b""))
        n.engine.maybe_snapshot(True)
    finally:
        n.close()
    n = _node(1, st)
    try:
        assert _knows(n, 6, 7006)
        assert 7 not in n.transport.peers()
    finally:
        n.close()


def test_snapshot_without_book_still_restores():
    # A snapshot written before the book existed is the plain KV image.
    img = _old_image()
    st = MemoryStorage((1,), ())
    st.apply_snapshot(Snapshot(2, 1, (1,), (), img))
    n = _node(1, st)
    try:
        assert n.machine.get_local(b"k") == b"v" and n.machine.applied_index == 2
        n.engine._restore(Snapshot(2, 1, (1,), (), img))
        assert n.machine.get_local(b"k") == b"v"
    finally:
        n.close()


def test_malformed_book_entries_are_counted():
    n, st = _leader()
    try:
        _settle(n, n.engine.propose_conf_change(CC.ADD_LEARNER, 6, b"127.0.0.1:7006"))
        n.engine.maybe_snapshot(True)
        good = st.snapshot().data
        hl = good[4] | good[5] << 8
        # Same framing, a book with four bad records and one good one.
        book = b"x=1.2.3.4:5 0=127.0.0.1:9 8=nocolon 9=127.0.0.1:port 7=127.0.0.1:7007"
        bad = good[:4] + bytes((len(book), 0)) + book + good[6 + hl:]
        drops = n.engine.counters.slots[DROP_MALFORMED]
        n.engine._restore(Snapshot(1, 1, (1,), (), bad))
        assert n.engine.counters.slots[DROP_MALFORMED] - drops == 4
        assert _knows(n, 7, 7007)
        # A book whose length runs past the data is a corrupt snapshot: the
        # typed error kv.restore raises for any corrupt image halts the
        # machine (reported in status) instead of leaving the node loop.
        before = n.machine.snapshot()
        assert n.engine._restore(Snapshot(1, 1, (1,), (), good[:4] + b"\xff\xff" + book)) is False
        assert n.engine.halted.startswith("DecodeError: "), n.engine.halted
        assert n.engine.status()["state"] == n.engine.halted
        assert n.machine.snapshot() == before
    finally:
        n.close()


def test_own_address_is_carried_but_not_installed():
    # A node that joined through add-learner applies its own conf change:
    # its snapshots must still tell others where it listens.
    n, st = _leader()
    other = _node(3, MemoryStorage((3,), ()))
    try:
        mine = n.transport._addr_of[1]
        n.engine._on_conf_change(CC.ADD_LEARNER, 1, b"127.0.0.1:7001")
        assert n.transport._addr_of[1] == mine
        _settle(n, n.engine.propose(b""))
        n.engine.maybe_snapshot(True)
        own = other.transport._addr_of[3]
        other.engine._on_conf_change(CC.ADD_LEARNER, 3, b"127.0.0.1:7003")
        other.engine._restore(st.snapshot())
        assert _knows(other, 1, 7001)
        assert other.transport._addr_of[3] == own
    finally:
        n.close()
        other.close()
