"""Joint changes through the runtime: the admin wire op A_JOINT and the
addresses a joint change teaches (ctx "id=host:port ..."). One node per
test, loopback, port 0: nothing listens at the learned addresses.
"""
from raft import confchange as CC
from raft.core import LEADER
from raft.memstorage import MemoryStorage
from raftio import wire
from raftio.node import Node
from raftio.udp import resolve

BOARD = {"tick_ms": 5, "election_ticks": 10, "heartbeat_ticks": 2, "ring_capacity": 32,
         "max_entry_bytes": 512, "max_key": 64, "max_value": 128, "max_sessions": 8,
         "heap_budget_bytes": 65536, "snapshot_entries": 1000}


def _leader():
    cfg = {"node_id": 1, "cluster_id": 5, "key": "ab" * 16, "voters": [1],
           "peers": [{"id": 1, "host": "127.0.0.1", "port": 0}]}
    n = Node(cfg, BOARD, MemoryStorage((1,), ()), seed=1)
    n.engine.campaign()
    for _ in range(50):
        n.run_once()
        if n.engine.core.role == LEADER:
            break
    assert n.engine.core.role == LEADER
    return n


def _run(n, pred):
    for _ in range(200):
        n.run_once()
        if pred():
            return
    raise AssertionError("not reached; conf %r" % (n.engine.core.conf(),))


def _knows(n, nid, port):
    return n.transport._addr_of.get(nid) == resolve("127.0.0.1", port)


def test_joint_change_teaches_addresses_and_leaving_forgets_the_removed():
    n = _leader()
    try:
        eng = n.engine
        # Two learners at once: a joint conf whose halves are both (1,).
        i = eng.propose_conf_change(CC.JOINT, (CC.AUTO, ((CC.ADD_LEARNER, 6),
                                                         (CC.ADD_LEARNER, 7))),
                                    b"6=127.0.0.1:7006 7=127.0.0.1:7007")
        assert i > 0
        _run(n, lambda: eng.core.log.applied >= i and not eng.core.voters_out)
        assert _knows(n, 6, 7006) and _knows(n, 7, 7007)
        assert eng.core.conf() == ((1,), (), (6, 7), False)
        # Replace learner 7 by 8: 7 leaves the address book once the joint
        # conf is left.
        i = eng.propose_conf_change(CC.JOINT, (CC.AUTO, ((CC.REMOVE, 7), (CC.ADD_LEARNER, 8))),
                                    b"8=127.0.0.1:7008 junk")
        _run(n, lambda: eng.core.log.applied > i and not eng.core.voters_out)
        assert sorted(eng._book) == [6, 8], eng._book
        assert _knows(n, 8, 7008)
        assert eng.status()["voters_out"] == []
    finally:
        n.close()


def test_admin_joint_op_is_decoded_and_bad_bodies_are_refused():
    n = _leader()
    try:
        got = []
        n.server._reply = lambda token, code, leader, result: got.append(code)
        buf = bytearray(256)
        addr = resolve("127.0.0.1", 9)
        bad = (b"", b"\x04\x00\x09", CC.encode(CC.ADD_VOTER, 6, b""),
               CC.encode_v2(CC.AUTO, ((CC.ADD_VOTER, 6),))[:-1])
        for k, body in enumerate(bad):
            ln = wire.encode_admin_into(buf, 0, 10 + k, wire.A_JOINT, 0, body)
            n.server._on_admin(buf, 0, ln, addr)
        assert got == [wire.BAD_REQUEST] * len(bad), got
        # A valid joint change is proposed (and answered by the engine once applied).
        body = CC.encode_v2(CC.AUTO, ((CC.ADD_LEARNER, 6), (CC.ADD_LEARNER, 7)),
                            b"6=127.0.0.1:7006")
        assert len(body) <= wire.ADMIN_MAX_CTX
        ln = wire.encode_admin_into(buf, 0, 20, wire.A_JOINT, 0, body)
        last = n.engine.core.log.last
        n.server._on_admin(buf, 0, ln, addr)
        assert n.engine.core.log.last == last + 1
        _run(n, lambda: n.engine.core.learners == (6, 7) and not n.engine.core.voters_out)
        # The largest joint change a client can send fits the admin op.
        big = CC.encode_v2(CC.EXPLICIT, ((CC.REMOVE, 65535),) * CC.MAX_STEPS, b"x" * 64)
        assert len(big) <= wire.ADMIN_MAX_CTX
    finally:
        n.close()
