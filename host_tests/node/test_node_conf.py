"""raftio.node persists the commit of every membership change it applies.

The node normally writes the commit index only every _HS_COMMIT_LAG entries
(it is volatile state), but the core's apply-time membership rule (etcd
#7625) records a conf change's commit as durable once advance() applies it,
and appends a later conf entry only then. A node restarted after applying a
change must therefore find that commit on its storage. One node, loopback.
"""
import cluster
from raft import confchange as CC
from raft.memstorage import MemoryStorage
from raftio.node import Node, initial_voters

BOARD = {"tick_ms": 10, "election_ticks": 10, "heartbeat_ticks": 2, "ring_capacity": 32,
         "max_entry_bytes": 512, "max_key": 64, "max_value": 128, "max_sessions": 8,
         "heap_budget_bytes": 262144, "snapshot_entries": 1000}


def test_applied_conf_change_commit_is_durable():
    p1, p2 = cluster.free_ports(2)
    cfg = {"node_id": 1, "cluster_id": 5, "key": "ab" * 16, "voters": [1],
           "peers": [{"id": 1, "host": "127.0.0.1", "port": p1},
                     {"id": 2, "host": "127.0.0.1", "port": p2}]}
    st = MemoryStorage(initial_voters(cfg), ())
    n = Node(cfg, BOARD, st, seed=1)
    try:
        for _ in range(300):
            n.run_once()
            if n.engine.core.role == 2:
                break
        assert n.engine.core.role == 2
        for _ in range(5):   # a few entries, far below the commit-write lag
            n.engine.propose(b"")
            n.run_once()
        idx = n.engine.propose_conf_change(CC.ADD_LEARNER, 2, b"127.0.0.1:%d" % p2)
        for _ in range(50):
            n.run_once()
            if n.engine.core.log.applied >= idx:
                break
        assert n.engine.rawnode.conf_state() == ((1,), (2,))
        assert st.initial_state()[0][2] >= idx, (st.initial_state()[0], idx)
    finally:
        n.close()
