"""Events from the core (raft/events.py): what happened, as data, by level.

Plain assert functions; run under pytest and `micropython tools/mptest.py`,
against the raw core and the engine (conftest parametrizes test_paper_*).
Each test checks that an event is reported where the paper says the thing
happens (an election, a new leader, a vote, a commit, a lease, a membership
change, a refused proposal), and that a level above it reports nothing.
"""
from raft import confchange as CC
from raft import events as EV
from raft.core import LEADER
from raft.errors import NotLeader
from raftnet import Net


def _kinds(net, i, kind):
    return [ev for ev in net.events[i] if ev[0] == kind]


def test_election_reports_roles_leader_and_votes():
    net = Net(3, seed=4)
    net.set_event_level(EV.DEBUG)
    ld = net.wait_leader()
    assert ld
    net.stabilize()
    t = net.raft(ld).term
    roles = [(ev[1], ev[2]) for ev in _kinds(net, ld, EV.ROLE)]
    # Pre-vote, then the real campaign in the next term, then leadership.
    assert roles[-3:] == [(t - 1, EV.ROLE_NAMES.index("pre-candidate")),
                          (t, EV.ROLE_NAMES.index("candidate")),
                          (t, LEADER)], roles
    assert [ev[2] for ev in _kinds(net, ld, EV.ELECTION)][-2:] == [1, 0]
    for i in net.ids:
        leads = _kinds(net, i, EV.LEADER)
        assert leads and leads[-1][1:3] == (t, ld), (i, leads)
        if i != ld:
            # Granted a pre-vote and a vote to the winner (debug level).
            votes = [(ev[2], ev[3]) for ev in _kinds(net, i, EV.VOTE)]
            assert (ld, 1) in votes and (ld, 0) in votes, (i, votes)
    # thesis 3.4, 9.6


def test_new_leader_is_reported_once_per_term():
    net = Net(3, seed=2)
    net.set_event_level(EV.ESSENTIAL)
    ld = net.wait_leader()
    net.stabilize()
    net.crash(ld)
    ld2 = net.wait_leader()
    net.stabilize()
    t2 = net.raft(ld2).term
    for i in net.ids:
        if i == ld:
            continue
        leads = [ev[1:3] for ev in _kinds(net, i, EV.LEADER)]
        # Heartbeats repeat the leader every tick; the event is not repeated.
        assert len(leads) == len(set(leads)), (i, leads)
        assert leads[-1] == (t2, ld2), (i, leads)
        assert leads[-2][1] == ld, (i, leads)
    # paper 5.2


def test_level_filters_and_off_builds_nothing():
    net = Net(3, seed=4)
    ld = net.wait_leader()
    net.stabilize()
    # Level 0 (the default): nothing recorded at all.
    assert all(not net.events[i] for i in net.ids)
    net.set_event_level(EV.ESSENTIAL)
    for k in range(3):
        net.propose(ld, b"x%d" % k)
    net.stabilize()
    net.tick(2)   # a heartbeat carries the last commit to the followers
    net.stabilize()
    # Commits are debug: not reported at essential.
    assert all(not _kinds(net, i, EV.COMMIT) for i in net.ids)
    net.set_event_level(EV.DEBUG)
    before = net.raft(ld).log.committed
    net.propose(ld, b"y")
    net.stabilize()
    net.tick(2)
    net.stabilize()
    for i in net.ids:
        commits = [ev[2] for ev in _kinds(net, i, EV.COMMIT)]
        assert commits and commits[-1] == before + 1, (i, commits)
        assert all(ev[0] != EV.APPLIED for ev in net.events[i])  # trace, above debug


def test_refused_proposal_is_reported_with_its_reason():
    net = Net(3, seed=4)
    net.set_event_level(EV.INFO)
    ld = net.wait_leader()
    net.stabilize()
    f = [i for i in net.ids if i != ld][0]
    try:
        net.nodes[f].propose(b"nope")
        assert False, "a follower accepted a proposal"
    except NotLeader:
        pass
    net.drive(f)
    drops = [ev[2] for ev in _kinds(net, f, EV.DROPPED)]
    assert drops == [EV.DROP_NOT_LEADER], drops


def test_membership_change_applied_is_reported_on_every_member():
    net = Net(3, seed=4)
    net.set_event_level(EV.ESSENTIAL)
    ld = net.wait_leader()
    net.stabilize()
    net.nodes[ld].propose_conf_change(CC.REMOVE, 3, b"")
    net.drive(ld)
    net.stabilize()
    for i in (1, 2):
        confs = [ev[2:4] for ev in _kinds(net, i, EV.CONF)]
        assert confs == [(CC.REMOVE, 3)], (i, confs)
    # thesis 4.1: reported when applied, the moment it takes effect


def test_lease_granted_then_revoked_by_transfer():
    net = Net(3, seed=4, check_quorum=True, read_only=1)
    net.set_event_level(EV.INFO)
    ld = net.wait_leader()
    net.stabilize()
    net.tick(3)
    net.stabilize()
    leases = [ev[2] for ev in _kinds(net, ld, EV.LEASE)]
    assert leases == [1], leases
    to = [i for i in net.ids if i != ld][0]
    net.nodes[ld].transfer_leader(to)
    net.drive(ld)
    net.stabilize()
    leases = [ev[2] for ev in _kinds(net, ld, EV.LEASE)]
    assert leases == [1, 0], leases
    # thesis 6.4.1: no lease reads once leadership is handed away


def test_to_dict_and_describe_name_the_codes():
    d = EV.to_dict((EV.ROLE, 7, LEADER, 2))
    assert d == {"event": "role", "level": "essential", "term": 7, "role": "leader", "lead": 2}
    d = EV.to_dict((EV.CONF, 3, CC.ADD_LEARNER, 6))
    assert d["op"] == "add-learner" and d["node"] == 6
    d = EV.to_dict((EV.PROPOSAL_FAILED, 3, 2, 40))
    assert d["code"] == "retry" and d["index"] == 40
    assert EV.describe((EV.LEADER, 5, 3, 0)) == "leader term 5 lead=3"
    assert len(EV.LEVELS) == len(EV.NAMES)
    assert EV.level_of("debug") == EV.DEBUG
    try:
        EV.level_of("loud")
        assert False
    except ValueError as e:
        assert "no event level" in str(e) and "loud" in str(e), str(e)


def test_a_reported_vote_is_already_on_storage():
    # The engine hands events over after persisting (engine.drive): an
    # observer that logs "voted for 2" must never see a disk that says otherwise.
    net = Net(3, seed=4)
    net.set_event_level(EV.DEBUG)
    seen = []
    if net.backend == "engine":
        for i in net.ids:
            eng = net.engines[i]
            st = net.storages[i]

            def check(ev, st=st, i=i):
                if ev[0] == EV.VOTE and ev[3] == 0:
                    hs = st.initial_state()[0]
                    seen.append((i, ev[1], ev[2], hs[0], hs[1]))
            eng._on_event = check
    ld = net.wait_leader()
    assert ld
    for i, term, cand, st_term, st_vote in seen:
        assert (st_term, st_vote) == (term, cand), (i, term, cand, st_term, st_vote)
    assert seen or net.backend == "core"
