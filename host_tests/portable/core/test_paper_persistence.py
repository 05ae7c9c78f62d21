"""Paper tests: persistent state and the ready contract (Raft paper Figure 2, 5.2, 5.3).

Plain assert functions; run under pytest and `micropython tools/mptest.py`.
"""
from raft import msg as M
from raft.config import Config
from raft.core import FOLLOWER, LEADER
from raft.rawnode import RawNode
from raft.memstorage import MemoryStorage
from raftnet import Net, Rand


def _settle(net):
    ld = net.leader()
    net.stabilize()
    # Followers learn the new commit index from the next heartbeat.
    net.tick()
    net.stabilize()


def test_crash_all_restart_from_storage():
    net = Net(3, seed=1)
    ld = net.wait_leader()
    for k in range(5):
        net.propose(ld, b"p%d" % k)
        net.stabilize()
    _settle(net)
    before = {}
    for i in net.ids:
        r = net.raft(i)
        before[i] = (r.term, r.vote, r.log.last, r.log.committed, net.log_of(i))
        assert net.data_applied(i) == [b"p%d" % k for k in range(5)]
    for i in net.ids:
        net.crash(i)
    for i in net.ids:
        net.restart(i)
    for i in net.ids:
        r = net.raft(i)
        # Figure 2: currentTerm, votedFor and log[] survive; commit is in our
        # hard state (trailing by at most the driver's commit lag).
        b = before[i]
        assert (r.term, r.vote, r.log.last, net.log_of(i)) == b[:3] + b[4:], i
        assert b[3] - net.commit_lag() <= r.log.committed == net.storages[i].hard_state[2], i
        assert r.role == FOLLOWER
        # The state machines re-apply the durable committed prefix right away.
        assert net.data_applied(i) == [e[2] for e in net.log_of(i)
                                       if e[0] <= r.log.committed and e[2]], i
    ld = net.wait_leader()
    assert net.raft(ld).term > before[ld][0]
    net.propose(ld, b"after")
    _settle(net)
    for i in net.ids:
        assert net.data_applied(i) == [b"p%d" % k for k in range(5)] + [b"after"]
    # paper Figure 2 (persistent state), 5.2


def test_repeated_full_restarts():
    net = Net(5, seed=2)
    want = []
    for rnd in range(5):
        ld = net.wait_leader()
        assert ld
        net.propose(ld, b"r%d" % rnd)
        want.append(b"r%d" % rnd)
        _settle(net)
        for i in net.ids:
            net.crash(i)
        for i in net.ids:
            net.restart(i)
    ld = net.wait_leader()
    _settle(net)
    for i in net.ids:
        assert net.data_applied(i) == want
    # paper Figure 2, 5.2


def _follower(i=2, ids=(1, 2, 3)):
    st = MemoryStorage(ids)
    return RawNode(Config(i, ids, pre_vote=False, check_quorum=False), st, Rand(i).below), st


def test_append_ack_only_after_persist():
    nd, st = _follower()
    nd.step(M.Message(M.APP, 2, 1, 1, log_term=0, index=0, commit=0,
                      entries=[(1, 1, 0, b""), (2, 1, 0, b"a")]))
    rd = nd.ready()
    assert [e[0] for e in rd.entries] == [1, 2]
    assert rd.hard_state is not None and rd.hard_state[0] == 1
    acks = [m for m in rd.persisted_messages if m.type == M.APP_RESP]
    assert len(acks) == 1 and acks[0].index == 2 and not acks[0].reject
    assert [m for m in rd.messages if m.type == M.APP_RESP] == []
    # Nothing is durable until the driver writes it.
    assert st.last_index() == 0
    st.append(rd.entries)
    st.set_hard_state(rd.hard_state)
    nd.advance(rd)
    assert nd.raft.log.stable == 2
    # paper 5.3; raft-rs persisted_messages


def test_crash_before_persist_loses_only_unacked():
    net = Net(3, seed=3, pre_vote=False, check_quorum=False)
    assert net.elect(1) == LEADER
    net.tick()
    net.stabilize()
    net.nodes[1].propose(b"v")
    net.drive(1)
    # Node 2 receives the append but crashes before persisting it: its ack
    # never leaves, so nobody counted it.
    m = [x for x in net.queue if x.to == 2][0]
    net.queue.remove(m)
    net.nodes[2].step(m)
    net.crash(2)
    assert net.storages[2].last_index() == 1
    net.stabilize()
    assert net.raft(1).prs[2].match == 1
    net.restart(2)
    net.propose(1, b"w")
    net.tick()
    net.stabilize()
    net.tick()
    net.stabilize()
    assert net.log_of(2) == net.log_of(1)
    assert net.data_applied(2) == [b"v", b"w"]
    # paper 5.3 (acknowledge only what is stored)


def test_leader_counts_itself_only_when_durable():
    st = MemoryStorage((1,))
    nd = RawNode(Config(1, (1,)), st, Rand(1).below)
    nd.campaign()
    assert nd.raft.role == LEADER
    idx = nd.propose(b"solo")
    rd = nd.ready()
    # Not committed yet: the leader's own copy is not on disk.
    assert nd.raft.log.committed < idx
    assert rd.committed_entries == [] or rd.committed_entries[-1][0] < idx
    st.append(rd.entries)
    if rd.hard_state:
        st.set_hard_state(rd.hard_state)
    nd.advance(rd)
    assert nd.raft.log.committed == idx
    rd = nd.ready()
    assert rd.committed_entries[-1][3] == b"solo"
    assert rd.hard_state[2] == idx
    # paper 5.3 / thesis 10.2.1 (leader writes to its disk in parallel)


def test_commit_index_recovered_from_hard_state():
    net = Net(3, seed=4)
    ld = net.wait_leader()
    net.propose(ld, b"c")
    _settle(net)
    f = [i for i in net.ids if i != ld][0]
    c = net.raft(f).log.committed
    durable = net.storages[f].hard_state[2]
    assert c >= 2 and c - net.commit_lag() <= durable <= c
    net.crash(f)
    net.restart(f)
    # The restarted node starts from the commit it made durable...
    assert net.raft(f).log.committed == durable
    if durable == c:
        assert net.data_applied(f) == [b"c"]
    # ...and learns the rest from the leader's next heartbeat.
    net.tick()
    net.stabilize()
    assert net.raft(f).log.committed == c
    assert net.data_applied(f) == [b"c"]
    # paper Figure 2 (commitIndex is volatile in the paper; persisted here so
    # a restarted node can apply without waiting for a leader: at every
    # change by the core harness, every _HS_COMMIT_LAG entries by the engine)


def test_term_never_decreases_across_restarts():
    net = Net(3, seed=5, election_tick=5)
    last = {}
    for i in net.ids:
        last[i] = 0
    rnd = Rand(5)
    for it in range(40):
        net.run(1 + rnd.below(8))
        v = 1 + rnd.below(3)
        if net.up[v]:
            net.crash(v)
        else:
            net.restart(v)
        for i in net.ids:
            t = net.storages[i].hard_state[0]
            assert t >= last[i], (i, t, last[i])
            last[i] = t
            if net.up[i]:
                assert net.raft(i).term >= t
    # paper Figure 2, 5.1
