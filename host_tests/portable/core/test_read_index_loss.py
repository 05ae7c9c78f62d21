"""ReadIndex survives lost heartbeats: the periodic heartbeat carries the
newest pending read round, so the read completes without another read
(thesis 6.4; etcd sends the last pending read context with heartbeats)."""
from raft import msg as M
from raftnet import Net


def test_read_completes_after_its_heartbeat_round_is_lost():
    net = Net(3, seed=4)
    ld = net.wait_leader()
    net.propose(ld, b"x")
    net.stabilize()
    lost = []

    def drop_first_round(m):
        # Lose the read's own heartbeat round (the first one carrying ctx 1).
        if m.type == M.HEARTBEAT and m.ctx == 1 and len(lost) < 2:
            lost.append(m)
            return True
        return False

    net.filter = drop_first_round
    net.raft(ld).read_index(42)
    net.stabilize()
    assert len(lost) == 2 and net.read_states[ld] == []
    for _ in range(3):          # periodic heartbeats only, no new read
        net.tick()
        net.stabilize()
    states = net.read_states[ld]
    assert len(states) == 1 and states[0][1] == 42
    assert states[0][0] == net.raft(ld).log.committed
