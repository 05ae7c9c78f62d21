"""Paper tests: terms and leader election (Raft paper 5.1, 5.2, 5.4.1; thesis 4.2.3, 9.6).

Plain assert functions; run under pytest and `micropython tools/mptest.py`.
raftnet.Net also asserts election safety (one leader per term) on every Ready.
"""
from raft import msg as M
from raft.config import Config
from raft.core import CANDIDATE, FOLLOWER, LEADER, PRE_CANDIDATE
from raft.rawnode import RawNode
from raft.memstorage import MemoryStorage
from raftnet import Net, Rand


def _quiet(n):
    # Plain elections: no pre-vote round, no lease, a long timeout so only
    # the test starts elections.
    return Net(n, pre_vote=False, check_quorum=False, election_tick=50)


def test_initial_election():
    for n in (1, 3, 5):
        net = Net(n, seed=n)
        ld = net.wait_leader(200)
        assert ld, "no leader among %d nodes" % n
        net.stabilize()
        t = net.raft(ld).term
        for i in net.ids:
            assert net.raft(i).term == t
            assert net.raft(i).lead == ld
        assert net.leaders() == [ld]
    # paper 5.2


def test_reelection_after_leader_failure():
    net = Net(3, seed=2)
    ld = net.wait_leader()
    t = net.raft(ld).term
    net.crash(ld)
    ld2 = net.wait_leader()
    assert ld2 and ld2 != ld
    assert net.raft(ld2).term > t
    # The old leader comes back as a follower of the new one.
    net.restart(ld)
    net.run(30)
    assert net.leader() == ld2
    assert net.raft(ld).role == FOLLOWER and net.raft(ld).lead == ld2
    # With two of three down nobody can be elected.
    net.crash(ld2)
    other = [i for i in net.ids if i not in (ld, ld2)][0]
    net.crash(other)
    net.restart(ld)
    net.run(200)
    assert net.leaders() == []
    # paper 5.2


def test_many_elections_converge():
    net = Net(7, seed=3)
    rnd = Rand(33)
    assert net.wait_leader()
    for it in range(12):
        # Cut three random nodes off (a minority); the rest keep or elect a leader.
        out = []
        while len(out) < 3:
            i = 1 + rnd.below(7)
            if i not in out:
                out.append(i)
        for i in out:
            net.isolate(i)
        net.run(60)
        ld = net.leader()
        assert ld and ld not in out, "iteration %d: no leader in the majority" % it
        net.recover()
        ld = net.wait_leader()
        assert ld
        net.run(30)
        t = net.raft(net.leader()).term
        lead = net.leader()
        for i in net.ids:
            assert net.raft(i).term == t and net.raft(i).lead == lead
    # Election safety held on every Ready (raftnet asserts it).
    assert len(net.term_leader) >= 1
    # paper 5.2


def _node(i=1, ids=(1, 2, 3), **kw):
    st = MemoryStorage(ids)
    return RawNode(Config(i, ids, **kw), st, Rand(i).below), st


def test_higher_term_message_steps_down():
    # (role to reach, message type) -> every one ends as follower of the new term.
    cases = []
    for role in (FOLLOWER, CANDIDATE, LEADER):
        for t in (M.APP, M.HEARTBEAT, M.VOTE, M.APP_RESP, M.HEARTBEAT_RESP, M.VOTE_RESP):
            cases.append((role, t))
    for role, t in cases:
        nd, _ = _node(pre_vote=False, check_quorum=False)
        r = nd.raft
        if role != FOLLOWER:
            nd.campaign()
        if role == LEADER:
            nd.step(M.Message(M.VOTE_RESP, 1, 2, r.term))
        assert r.role == role
        old = r.term
        nd.step(M.Message(t, 1, 2, old + 3, log_term=0, index=0))
        assert r.term == old + 3, (role, t)
        assert r.role == FOLLOWER, (role, t)
        if t in (M.APP, M.HEARTBEAT):
            assert r.lead == 2
        else:
            assert r.lead == 0
    # paper 5.1


def test_stale_term_message_ignored():
    nd, _ = _node(pre_vote=False, check_quorum=False)
    nd.campaign()
    nd.step(M.Message(M.VOTE_RESP, 1, 2, 1))
    r = nd.raft
    assert r.role == LEADER and r.term == 1
    nd.ready()
    nd.step(M.Message(M.APP, 1, 3, 0, entries=[(1, 0, 0, b"x")]))
    nd.step(M.Message(M.VOTE, 1, 3, 0))
    assert r.role == LEADER and r.term == 1
    # paper 5.1


def test_vote_once_per_term_and_persisted_before_grant():
    nd, st = _node(3, pre_vote=False, check_quorum=False)
    nd.step(M.Message(M.VOTE, 3, 1, 1, log_term=0, index=0))
    rd = nd.ready()
    grants = [m for m in rd.persisted_messages if m.type == M.VOTE_RESP]
    assert len(grants) == 1 and not grants[0].reject and grants[0].to == 1
    assert [m for m in rd.messages if m.type == M.VOTE_RESP] == []
    # The Ready carries the vote the grant promises.
    assert rd.hard_state == (1, 1, 0)
    st.set_hard_state(rd.hard_state)
    nd.advance(rd)
    # A second candidate in the same term is refused; the first one again is fine.
    nd.step(M.Message(M.VOTE, 3, 2, 1, log_term=5, index=9))
    nd.step(M.Message(M.VOTE, 3, 1, 1, log_term=0, index=0))
    rd = nd.ready()
    out = rd.messages + rd.persisted_messages
    assert [(m.to, m.reject) for m in out] == [(2, True), (1, False)]
    assert nd.raft.vote == 1
    nd.advance(rd)
    # The vote survives a restart: node 3 rebooted still refuses node 2.
    nd2 = RawNode(Config(3, (1, 2, 3), pre_vote=False, check_quorum=False), st, Rand(9).below)
    assert nd2.raft.term == 1 and nd2.raft.vote == 1
    nd2.step(M.Message(M.VOTE, 3, 2, 1, log_term=5, index=9))
    rd = nd2.ready()
    out = rd.messages + rd.persisted_messages
    assert len(out) == 1 and out[0].reject
    # paper 5.2, Figure 2 (votedFor is persistent)


def test_randomized_election_timeouts():
    net = Net(5, seed=4, election_tick=10)
    seen = []
    for i in net.ids:
        r = net.raft(i)
        to = r.randomized_election_timeout
        assert 10 <= to < 20
        seen.append(to)
    assert len(set(seen)) > 1, seen
    # Across many resets one node draws several different values.
    nd, _ = _node(pre_vote=False, check_quorum=False, election_tick=10)
    draws = set()
    for k in range(50):
        nd.raft.become_follower(nd.raft.term + 1, 0)
        draws.add(nd.raft.randomized_election_timeout)
    assert min(draws) >= 10 and max(draws) < 20 and len(draws) >= 5
    # Same seed, same timeouts: a run can be replayed.
    net2 = Net(5, seed=4, election_tick=10)
    assert [net2.raft(i).randomized_election_timeout for i in net2.ids] == seen
    # A follower campaigns exactly when its randomized timeout expires.
    nd, _ = _node(pre_vote=True, election_tick=10)
    to = nd.raft.randomized_election_timeout
    for _ in range(to - 1):
        nd.tick()
    assert nd.raft.role == FOLLOWER
    nd.tick()
    assert nd.raft.role == PRE_CANDIDATE
    # paper 5.2


def test_up_to_date_check():
    # Voter log ends at index 2, term 2. (candidate last index, last term, granted)
    table = [
        (1, 1, False), (2, 1, False), (3, 1, False),
        (1, 2, False), (2, 2, True), (3, 2, True),
        (1, 3, True), (2, 3, True), (3, 3, True),
    ]
    for idx, lt, ok in table:
        ids = (1, 2, 3)
        st = MemoryStorage(ids)
        st.append([(1, 1, 0, b""), (2, 2, 0, b"")])
        st.set_hard_state((2, 0, 0))
        nd = RawNode(Config(1, ids, pre_vote=False, check_quorum=False), st, Rand(1).below)
        nd.step(M.Message(M.VOTE, 1, 2, 3, log_term=lt, index=idx))
        rd = nd.ready()
        out = rd.messages + rd.persisted_messages
        assert len(out) == 1 and out[0].type == M.VOTE_RESP
        assert out[0].reject == (not ok), (idx, lt)
        assert nd.raft.term == 3
        assert nd.raft.vote == (2 if ok else 0)
    # paper 5.4.1


def test_stale_candidate_loses_in_cluster():
    net = _quiet(3)
    net.set_log(1, [1, 1])
    net.set_log(2, [1, 2])
    net.set_log(3, [1, 2, 2])
    # Node 1's log is behind both others: nobody grants.
    assert net.elect(1) == FOLLOWER
    assert net.elect(3) == LEADER
    net.stabilize()
    assert net.log_of(3)[:3] == [(1, 1, b"t1i1"), (2, 2, b"t2i2"), (3, 2, b"t2i3")]
    # paper 5.4.1


def test_election_in_one_round():
    # (cluster size, votes granted by others, votes refused) -> resulting role
    table = [
        (1, {}, LEADER),
        (3, {2: True, 3: True}, LEADER),
        (3, {2: True}, LEADER),
        (5, {2: True, 3: True, 4: True, 5: True}, LEADER),
        (5, {2: True, 3: True}, LEADER),
        (3, {}, CANDIDATE),
        (5, {2: True}, CANDIDATE),
        (5, {2: False, 3: True}, CANDIDATE),
        (3, {2: False, 3: False}, FOLLOWER),
        (5, {2: False, 3: False, 4: False}, FOLLOWER),
        (5, {2: True, 3: False, 4: False, 5: False}, FOLLOWER),
    ]
    for size, votes, want in table:
        ids = tuple(range(1, size + 1))
        nd, _ = _node(1, ids, pre_vote=False, check_quorum=False)
        nd.campaign()
        for v in sorted(votes):
            f = 0 if votes[v] else M.FLAG_REJECT
            nd.step(M.Message(M.VOTE_RESP, 1, v, 1, flags=f))
        assert nd.raft.role == want, (size, votes, nd.raft.role)
        assert nd.raft.term == 1
    # paper 5.2


def test_candidate_yields_to_leader_of_same_term():
    nd, _ = _node(pre_vote=False, check_quorum=False)
    nd.campaign()
    assert nd.raft.role == CANDIDATE
    nd.step(M.Message(M.APP, 1, 3, 1, log_term=0, index=0, entries=[(1, 1, 0, b"")]))
    assert nd.raft.role == FOLLOWER and nd.raft.lead == 3 and nd.raft.term == 1
    # paper 5.2


def test_split_vote_resolves():
    # Both candidates start together; randomized timeouts break the tie.
    net = Net(4, seed=6, pre_vote=False, check_quorum=False)
    net.nodes[1].campaign()
    net.nodes[2].campaign()
    net.drive_all()
    net.stabilize()
    assert net.wait_leader(300)
    # paper 5.2


def test_prevote_rejoin_does_not_disrupt():
    net = Net(3, seed=7, pre_vote=True, check_quorum=True)
    ld = net.wait_leader()
    t = net.raft(ld).term
    lonely = [i for i in net.ids if i != ld][0]
    net.isolate(lonely)
    net.run(150)
    # Pre-vote never succeeds alone, so the isolated node keeps its term.
    assert net.raft(lonely).term == t
    assert net.raft(lonely).role in (FOLLOWER, PRE_CANDIDATE)
    net.recover()
    net.run(50)
    assert net.leader() == ld and net.raft(ld).term == t
    assert net.raft(lonely).lead == ld
    # thesis 9.6


def test_without_prevote_rejoin_disrupts():
    net = Net(3, seed=7, pre_vote=False, check_quorum=False)
    ld = net.wait_leader()
    t = net.raft(ld).term
    lonely = [i for i in net.ids if i != ld][0]
    net.isolate(lonely)
    net.run(150)
    assert net.raft(lonely).term > t + 2
    net.recover()
    net.run(100)
    # The cluster had to move to the rejoining node's term (what pre-vote avoids).
    assert net.raft(net.wait_leader()).term > t + 2
    # thesis 9.6


def test_check_quorum_isolated_leader_steps_down():
    for et in (5, 10):
        net = Net(3, seed=8, check_quorum=True, election_tick=et)
        ld = net.wait_leader()
        net.isolate(ld)
        k = 0
        while k < 3 * et and net.raft(ld).role == LEADER:
            net.step()
            k += 1
        assert net.raft(ld).role == FOLLOWER
        # It noticed within about one election timeout (plus the round in progress).
        assert k <= 2 * et, (et, k)
    # Without check-quorum an isolated leader never notices.
    net = Net(3, seed=8, check_quorum=False, pre_vote=True)
    ld = net.wait_leader()
    net.isolate(ld)
    net.run(100)
    assert net.raft(ld).role == LEADER
    # thesis 6.2 (check quorum)


def test_leader_lease_ignores_disruptive_vote():
    net = Net(3, seed=9, pre_vote=False, check_quorum=True)
    ld = net.wait_leader()
    t = net.raft(ld).term
    f = [i for i in net.ids if i != ld]
    # A forced campaign (not a transfer) from a follower whose peers still
    # hear the leader: they ignore it, and the leader keeps its term.
    net.nodes[f[0]].campaign()
    net.drive(f[0])
    assert net.raft(f[0]).term == t + 1
    net.deliver()
    # Voters that heard the leader within the minimum timeout ignore the
    # request: no term change, no vote, the leader stays.
    assert net.raft(f[1]).term == t and net.raft(f[1]).vote == ld
    assert net.raft(ld).term == t and net.raft(ld).role == LEADER
    net.stabilize()
    assert net.raft(f[0]).role == CANDIDATE
    # (Its higher term still reaches the leader through a heartbeat reply;
    # pre-vote is what keeps such a node from ever bumping its term.)
    # thesis 4.2.3
