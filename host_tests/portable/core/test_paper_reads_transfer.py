"""Paper tests: read-only queries (thesis 6.4) and leadership transfer (thesis 3.10).

Plain assert functions; run under pytest and `micropython tools/mptest.py`.
"""
from raft import msg as M
from raft.config import READ_LEASE
from raft.core import FOLLOWER, LEADER
from raft.errors import NotLeader, ProposalDropped
from raftnet import Net


def _cluster(**kw):
    net = Net(3, seed=1, **kw)
    assert net.elect(1) == LEADER
    net.propose(1, b"a")
    net.stabilize()
    net.tick()
    net.stabilize()
    return net


def test_read_index_after_heartbeat_quorum():
    net = _cluster()
    c = net.raft(1).log.committed
    net.nodes[1].read_index(7)
    net.drive(1)
    # Not before a majority confirmed the leadership.
    assert net.read_states[1] == []
    net.stabilize()
    assert net.read_states[1] == [(c, 7)]
    # thesis 6.4 (ReadIndex)


def test_read_index_covers_every_acknowledged_write():
    net = _cluster()
    for k in range(5):
        idx = net.propose(1, b"w%d" % k)
        net.stabilize()
        assert net.raft(1).log.committed >= idx
        net.nodes[1].read_index(100 + k)
        net.drive(1)
        net.stabilize()
        got = [s for s in net.read_states[1] if s[1] == 100 + k]
        assert got and got[0][0] >= idx, (k, got, idx)
    # thesis 6.4 (linearizability: the read index covers completed writes)


def test_follower_read_forwarded():
    net = _cluster()
    net.nodes[2].read_index(8)
    net.drive(2)
    net.stabilize()
    assert net.read_states[2] == [(net.raft(1).log.committed, 8)]
    # thesis 6.4


def test_isolated_leader_cannot_serve_reads():
    net = _cluster()
    net.isolate(1)
    net.nodes[1].read_index(9)
    net.drive(1)
    for _ in range(5):
        net.step()
    assert net.read_states[1] == []
    # thesis 6.4 (a deposed leader must not answer)


def test_new_leader_reads_wait_for_commit_in_term():
    net = Net(3, seed=2, pre_vote=False, check_quorum=False)
    assert net.elect(1) == LEADER
    net.stabilize()
    net.crash(1)
    net.nodes[2].campaign()
    net.drive(2)
    net.deliver()
    net.deliver()
    r = net.raft(2)
    assert r.role == LEADER and not r.committed_in_term()
    net.nodes[2].read_index(11)
    net.drive(2)
    assert net.read_states[2] == []
    net.stabilize()
    assert r.committed_in_term()
    assert net.read_states[2] == [(r.log.committed, 11)]
    # thesis 6.4 step 1 (commit an entry of the leader's term first)


def test_lease_read_without_round_trip():
    net = _cluster(read_only=READ_LEASE, check_quorum=True)
    net.tick()
    net.stabilize()
    net.nodes[1].read_index(12)
    net.drive(1)
    # The lease holds: answered at once, no heartbeat round needed.
    assert net.read_states[1] == [(net.raft(1).log.committed, 12)]
    # Cut off, the lease runs out within the election timeout.
    net.isolate(1)
    for _ in range(12):
        net.step()
    if net.raft(1).role == LEADER:
        assert not net.raft(1).lease_valid()
    # thesis 6.4.1 (lease)


def test_transfer_to_up_to_date_follower():
    net = _cluster(check_quorum=True)
    t = net.raft(1).term
    net.nodes[1].transfer_leader(2)
    net.drive(1)
    net.stabilize()
    # The target ignores the lease (forced campaign) and wins the next term.
    assert net.leader() == 2
    assert net.raft(2).term == t + 1
    assert net.raft(1).role == FOLLOWER and net.raft(1).lead == 2
    # thesis 3.10


def test_transfer_to_lagging_follower_catches_it_up_first():
    net = _cluster(check_quorum=True)
    net.isolate(3)
    for k in range(4):
        net.propose(1, b"x%d" % k)
    net.stabilize()
    net.recover()
    net.nodes[1].transfer_leader(3)
    net.drive(1)
    # Proposals are refused while the transfer is under way.
    try:
        net.nodes[1].propose(b"during")
        assert False, "accepted a proposal during a transfer"
    except ProposalDropped:
        pass
    for _ in range(5):
        net.tick()
        net.stabilize()
        if net.leader() == 3:
            break
    assert net.leader() == 3
    assert net.log_of(3)[:6] == net.log_of(1)[:6]
    # thesis 3.10 (the target first gets the leader's log)


def test_transfer_to_unreachable_target_is_abandoned():
    net = _cluster(check_quorum=True)
    net.isolate(3)
    net.nodes[1].transfer_leader(3)
    net.drive(1)
    for _ in range(25):
        net.step()
        if not net.raft(1).lead_transferee:
            break
    r = net.raft(1)
    assert r.role == LEADER and r.lead_transferee == 0
    net.propose(1, b"ok again")
    # thesis 3.10 (abort after an election timeout)


def test_transfer_on_follower_refused():
    net = _cluster()
    try:
        net.nodes[2].transfer_leader(3)
        assert False
    except NotLeader as e:
        assert e.args[0] == 1
    # thesis 3.10


def test_lease_reads_stop_before_a_new_leader_exists():
    for drift in (0, 1, 3):
        net = _cluster(read_only=READ_LEASE, check_quorum=True, lease_drift_ticks=drift)
        t1 = net.raft(1).term
        net.isolate(1)
        served = 0
        for step in range(40):
            if net.up[1] and net.raft(1).role == LEADER:
                net.nodes[1].read_index(1000 + step)
                net.drive(1)
            got = net.read_states[1]
            newer = [t for t in net.term_leader if t > t1]
            # A lease read answered while another leader may already exist
            # would be stale (it cannot see that leader's writes).
            assert not (got and newer), (drift, step, got, newer)
            served += len(got)
            del got[:]
            net.step()
            ld = net.leader()
            if ld and ld != 1:
                try:
                    net.propose(ld, b"new")
                except NotLeader:
                    pass
        assert served > 0
        assert [t for t in net.term_leader if t > t1]
    # thesis 6.4.1 (lease reads rely on followers ignoring votes in the lease)
