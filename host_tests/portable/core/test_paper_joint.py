"""Paper tests: joint consensus (thesis 4.3, etcd ConfChangeV2 semantics: a
change takes effect when applied; several steps go through a joint
configuration, left automatically by the leader or explicitly).

Plain assert functions; run under pytest and `micropython tools/mptest.py`.
"""
import gc

from raft import confchange as CC
from raft import events as EV
from raft import msg as M
from raft.config import Config
from raft.core import FOLLOWER, LEADER
from raft.errors import ConfigError, DecodeError, ProposalDropped
from raft.memstorage import MemoryStorage
from raftnet import Net

OLD = (1, 2, 3)
NEW = (1, 4, 5)
# Replace 2 and 3 by 4 and 5 in one change.
SWAP = ((CC.REMOVE, 2), (CC.REMOVE, 3), (CC.ADD_VOTER, 4), (CC.ADD_VOTER, 5))


def _fresh_heap():
    gc.collect()


def _net(seed, n=5, **kw):
    """Nodes 1-3 are the cluster; 4.. are booted but not members yet (each
    starts as a learner of the bootstrap conf, so it never campaigns, and
    learns the real configuration from the log)."""
    net = Net(n, seed=seed)

    def config(i):
        if i > 3:
            return Config(i, list(OLD), learners=(i,), election_tick=10, heartbeat_tick=1, **kw)
        return Config(i, list(OLD), election_tick=10, heartbeat_tick=1, **kw)

    net.config = config
    for i in net.ids:
        net.storages[i] = MemoryStorage(list(OLD)) if i <= 3 else MemoryStorage()
        net._boot(i)
    return net


def _settle(net, rounds=2):
    net.stabilize()
    for _ in range(rounds):
        net.tick()
        net.stabilize()


def _conf(net, i):
    return net.nodes[i].conf()


def _joint(net, ld, steps, tr=CC.AUTO, ctx=b""):
    idx = net.nodes[ld].propose_conf_change_v2(tr, steps, ctx)
    net.drive(ld)
    return idx


def _enter_explicit(seed, **kw):
    """Leader 1 in the joint conf NEW/OLD, which it does not leave by itself."""
    net = _net(seed, **kw)
    assert net.elect(1) == LEADER
    _joint(net, 1, SWAP, CC.EXPLICIT)
    _settle(net)
    for i in net.ids:
        assert _conf(net, i) == (NEW, OLD, (), False), (i, _conf(net, i))
    return net


# -- the codec and the pure rules --------------------------------------------

def test_v2_codec_round_trip_and_bad_bytes():
    _fresh_heap()
    for tr in (CC.AUTO, CC.IMPLICIT, CC.EXPLICIT):
        for steps in ((), ((CC.ADD_VOTER, 65535),), SWAP):
            for ctx in (b"", b"4=10.0.0.4:7000", b"x" * CC.MAX_CTX):
                got = CC.decode(CC.encode_v2(tr, steps, ctx))
                assert got == (CC.JOINT, (tr, steps), ctx), got
    # A V1 change keeps its encoding.
    assert CC.encode(CC.ADD_VOTER, 4, b"a")[0] == CC.ADD_VOTER
    good = CC.encode_v2(CC.AUTO, SWAP, b"ab")
    for bad in (good[:-1], good + b"x", good[:3], b"\x04\x03\x00\x00",
                b"\x04\x00\x01\x09\x04\x00\x00", b"\x04\x00\x01\x01\x00\x00\x00",
                b"\x04\x00\x09" + b"\x01\x04\x00" * 9 + b"\x00"):
        try:
            CC.decode(bad)
            raise AssertionError("decoded %r" % bad)
        except DecodeError:
            pass
    for args in ((3, ()), (CC.AUTO, ((9, 4),)), (CC.AUTO, ((CC.REMOVE, 0),)),
                 (CC.AUTO, ((CC.REMOVE, 4),) * 9)):
        try:
            CC.encode_v2(*args)
            raise AssertionError("encoded %r" % (args,))
        except ConfigError:
            pass
    # etcd raftpb.ConfChangeV2 (Transition, Changes, Context)


def test_apply_conf_follows_etcd_confchange():
    _fresh_heap()
    c = (OLD, (), (), False)
    # Several steps enter a joint conf; AUTO and IMPLICIT leave it by themselves.
    assert CC.apply_conf(c, CC.JOINT, (CC.AUTO, SWAP)) == (NEW, OLD, (), True)
    assert CC.apply_conf(c, CC.JOINT, (CC.IMPLICIT, SWAP)) == (NEW, OLD, (), True)
    assert CC.apply_conf(c, CC.JOINT, (CC.EXPLICIT, SWAP)) == (NEW, OLD, (), False)
    # One AUTO step is a simple change; IMPLICIT/EXPLICIT still go joint.
    assert CC.apply_conf(c, CC.JOINT, (CC.AUTO, ((CC.ADD_VOTER, 4),))) == (
        (1, 2, 3, 4), (), (), False)
    assert CC.apply_conf(c, CC.JOINT, (CC.EXPLICIT, ((CC.ADD_VOTER, 4),))) == (
        (1, 2, 3, 4), OLD, (), False)
    # Demoting a voter: a voter of the outgoing half until left (LearnersNext).
    j = CC.apply_conf(c, CC.JOINT, (CC.AUTO, ((CC.ADD_LEARNER, 3), (CC.ADD_VOTER, 4))))
    assert j == ((1, 2, 4), OLD, (3,), True)
    assert CC.apply_conf(j, CC.JOINT, (CC.AUTO, ())) == ((1, 2, 4), (), (3,), False)
    # Learners added and promoted in one change.
    c2 = ((1, 2, 3), (), (4,), False)
    assert CC.apply_conf(c2, CC.JOINT, (CC.AUTO, ((CC.ADD_VOTER, 4), (CC.ADD_LEARNER, 5)))) == (
        (1, 2, 3, 4), (1, 2, 3), (5,), True)
    refused = [
        (j, CC.JOINT, (CC.AUTO, SWAP)),              # already joint
        (j, CC.ADD_VOTER, 5),                        # a simple change while joint
        (c, CC.JOINT, (CC.AUTO, ())),                # leave while not joint
        (c, CC.JOINT, (CC.AUTO, ((CC.REMOVE, 1), (CC.REMOVE, 2), (CC.REMOVE, 3)))),
        (c, CC.JOINT, (CC.AUTO, ((CC.ADD_VOTER, 1), (CC.ADD_VOTER, 2)))),   # no-op
    ]
    for k, (cf, op, arg) in enumerate(refused):
        try:
            CC.apply_conf(cf, op, arg)
            raise AssertionError("case %d applied" % k)
        except ConfigError:
            pass
    # etcd confchange/testdata (joint_*.txt, simple_*.txt)


# -- commits and elections need both majorities -------------------------------

def test_joint_commit_needs_both_majorities():
    _fresh_heap()
    net = _enter_explicit(seed=21)
    r1 = net.nodes[1].raft
    # Only the new voters (1, 4, 5) hold it: not committed.
    net.partition((1, 4, 5), (2, 3))
    i = net.propose(1, b"new-only")
    _settle(net)
    assert r1.log.committed < i
    for k in (4, 5):
        assert net.nodes[k].raft.log.last >= i
    # Only the old voters (1, 2, 3) hold the next one: not committed,
    # while the first, which now both halves hold, is.
    net.recover()
    net.partition((1, 2, 3), (4, 5))
    j = net.propose(1, b"old-only")
    _settle(net)
    assert i <= r1.log.committed < j
    # Both majorities: committed.
    net.recover()
    _settle(net)
    assert r1.log.committed >= j
    # thesis 4.3 ("agreement requires separate majorities from both")


def test_joint_election_needs_both_majorities():
    _fresh_heap()
    # No check-quorum lease: followers that heard from 1 vote at once.
    net = _enter_explicit(seed=22, check_quorum=False)
    net.crash(1)
    # Votes from the old half only (2, 3): a majority of OLD, one of NEW missing.
    net.partition((2, 3), (4, 5))
    net.nodes[2].campaign()
    _settle(net, 3)
    assert net.nodes[2].raft.role != LEADER
    # And the other way round: 4 with 5 have a majority of NEW, none of OLD.
    net.nodes[4].campaign()
    _settle(net, 3)
    assert net.nodes[4].raft.role != LEADER
    # With 4 too: 2 of OLD (2, 3) but 1 of NEW (4, and 1 is down): still no.
    net.recover()
    net.partition((2, 3, 4), (5,))
    net.nodes[2].campaign()
    _settle(net, 3)
    assert net.nodes[2].raft.role != LEADER
    # 4 and 5 both: majorities of both halves.
    net.recover()
    net.nodes[2].campaign()
    net.stabilize()
    assert net.nodes[2].raft.role == LEADER
    # thesis 4.3 ("elections require separate majorities from both")


def test_node_only_in_the_old_half_can_lead_the_joint_conf():
    _fresh_heap()
    net = _enter_explicit(seed=23, check_quorum=False)
    # 3 is in OLD only: it still votes and may lead, with both majorities.
    net.nodes[3].campaign()
    net.stabilize()
    r3 = net.nodes[3].raft
    assert r3.role == LEADER
    i = net.propose(3, b"x")
    _settle(net)
    assert r3.log.committed >= i
    # Leaving the joint conf removes it: it hands over and steps down.
    net.nodes[3].propose_conf_change_v2(CC.AUTO, ())
    net.drive(3)
    _settle(net, 0)
    assert r3.role == FOLLOWER
    ld = net.leader()
    assert ld in NEW, ld
    for k in NEW + (2,):
        assert _conf(net, k) == (NEW, (), (), False)
    # thesis 4.2.2, 4.3 (a leader not in C_new steps down once C_new commits)


# -- leaving: automatically, explicitly, across a crash ------------------------

def test_leader_leaves_the_joint_conf_by_itself():
    _fresh_heap()
    net = _net(seed=24)
    net.set_event_level(EV.ESSENTIAL)
    assert net.elect(1) == LEADER
    seen = []
    net.on_ready = lambda i, rd: i == 1 and seen.extend(c[1:3] for c in rd.conf_changes)
    enter = _joint(net, 1, ((CC.REMOVE, 3), (CC.ADD_VOTER, 4)), ctx=b"4=h:4")
    _settle(net)
    # Enter, then the empty change that leaves, proposed by the leader.
    assert seen == [(CC.JOINT, (CC.AUTO, ((CC.REMOVE, 3), (CC.ADD_VOTER, 4)))),
                    (CC.JOINT, (CC.AUTO, ()))], seen
    for i in (1, 2, 4):
        assert _conf(net, i) == ((1, 2, 4), (), (), False), (i, _conf(net, i))
        assert net.nodes[i].raft.log.committed > enter
    assert 3 not in net.nodes[1].raft.prs
    # Events: each step when entering, then the leave.
    confs = [ev[2:4] for ev in net.events[2] if ev[0] == EV.CONF]
    assert confs == [(CC.REMOVE, 3), (CC.ADD_VOTER, 4), (CC.JOINT, 0)], confs
    assert EV.to_dict((EV.CONF, 1, CC.JOINT, 0))["op"] == "leave-joint"
    # etcd raft.go (AutoLeave: the leader proposes an empty ConfChangeV2)


def test_explicit_joint_conf_waits_for_the_leave():
    _fresh_heap()
    net = _enter_explicit(seed=25)
    r1 = net.nodes[1].raft
    for _ in range(3):
        net.propose(1, b"x")
        _settle(net)
    assert _conf(net, 1) == (NEW, OLD, (), False)
    # Nothing but the leave is accepted meanwhile.
    for op, arg in ((CC.ADD_VOTER, 2), (CC.JOINT, (CC.AUTO, ((CC.ADD_VOTER, 2),)))):
        try:
            if op == CC.JOINT:
                net.nodes[1].propose_conf_change_v2(arg[0], arg[1])
            else:
                net.nodes[1].propose_conf_change(op, arg)
            raise AssertionError("accepted a change in a joint conf")
        except ConfigError:
            pass
    leave = net.nodes[1].propose_conf_change_v2(CC.AUTO, ())
    # One change at a time: a second leave is pending.
    try:
        net.nodes[1].propose_conf_change_v2(CC.AUTO, ())
        raise AssertionError("accepted two changes at once")
    except ProposalDropped:
        pass
    net.drive(1)
    _settle(net)
    assert r1.log.committed >= leave
    for i in NEW:
        assert _conf(net, i) == (NEW, (), (), False)
    # Not joint any more: another leave is refused.
    try:
        net.nodes[1].propose_conf_change_v2(CC.AUTO, ())
        raise AssertionError("left twice")
    except ConfigError:
        pass
    # etcd raft.go (refusing conf changes while joint; "not in joint state")


def test_crash_between_enter_and_leave_the_next_leader_leaves():
    _fresh_heap()
    net = _net(seed=26)
    assert net.elect(1) == LEADER
    enter = _joint(net, 1, SWAP)

    def cut(i, rd):
        # The leader is cut off once it knows the enter entry committed:
        # it applies it and proposes the leave, which nobody receives.
        if i == 1 and rd.conf_changes:
            net.isolate(1)

    net.on_ready = cut
    _settle(net)
    net.on_ready = None
    r1 = net.nodes[1].raft
    assert r1.log.last > enter and _conf(net, 1) == (NEW, OLD, (), True)
    net.crash(1)
    net.recover()
    for i in (2, 3):
        assert net.nodes[i].raft.log.last == enter
    # The enter entry is committed (on 1, 2, 3); the next leader commits it
    # again in its term, enters the joint conf and leaves it; it needs 4
    # and 5 (NEW without 1) for that, so the change finishes.
    assert net.wait_leader() in (2, 3)
    _settle(net, 3)
    # Leaving removed the leader (2 or 3): it handed over to 4 or 5 (2
    # and 3 are not members, so nobody tells them who leads).
    for _ in range(200):
        if net.leader() in (4, 5):
            break
        net.step()
    assert net.leader() in (4, 5), net.leader()
    for i in (2, 3, 4, 5):
        assert _conf(net, i) == (NEW, (), (), False), (i, _conf(net, i))
    # The old leader comes back, takes the new leader's log and follows.
    net.restart(1)
    _settle(net, 3)
    assert _conf(net, 1) == (NEW, (), (), False)
    assert net.nodes[1].raft.log.committed == net.nodes[4].raft.log.committed
    # thesis 4.3 (a crash during the change; the next leader completes it), etcd AutoLeave


# -- snapshots in the joint state ----------------------------------------------

def _snapshot(net, i):
    node = net.nodes[i]
    st = net.storages[i]
    applied = node.raft.log.applied
    c = node.conf()
    st.create_snapshot(applied, c[0], c[2], b"sm@%d" % applied, c[1], c[3])
    st.compact(applied)
    node.compacted(applied, st.term(applied))


def test_snapshot_taken_in_the_joint_state_is_installed_on_a_follower():
    _fresh_heap()
    net = _net(seed=27)
    assert net.elect(1) == LEADER
    net.isolate(5)
    # 5 misses the change; without it NEW has 1 and 4: still a majority.
    _joint(net, 1, SWAP, CC.EXPLICIT)
    _settle(net)
    for k in range(4):
        net.propose(1, b"p%d" % k)
    _settle(net)
    joint = (NEW, OLD, (), False)
    assert _conf(net, 1) == joint
    _snapshot(net, 1)
    assert net.storages[1].snapshot().voters_out == OLD
    net.recover()
    _settle(net, 3)
    r5 = net.nodes[5].raft
    assert net.storages[5].snapshot().index == net.storages[1].snapshot().index
    assert _conf(net, 5) == joint
    assert r5.voters_out == OLD and set(r5.prs) == set(range(1, 6))
    # The joint half survives a restart from that snapshot, too.
    net.crash(5)
    net.restart(5)
    assert _conf(net, 5) == joint
    leave = net.nodes[1].propose_conf_change_v2(CC.AUTO, ())
    net.drive(1)
    _settle(net)
    assert net.nodes[5].raft.log.applied >= leave and _conf(net, 5) == (NEW, (), (), False)
    # thesis 5 (the snapshot carries the latest configuration), 4.3


# -- learners ------------------------------------------------------------------

def test_learners_added_promoted_and_demoted_in_one_change():
    _fresh_heap()
    net = _net(seed=28)
    assert net.elect(1) == LEADER
    net.nodes[1].propose_conf_change(CC.ADD_LEARNER, 4)
    net.drive(1)
    _settle(net)
    # Promote 4, demote 3, add 5 as a learner.
    _joint(net, 1, ((CC.ADD_VOTER, 4), (CC.ADD_LEARNER, 3), (CC.ADD_LEARNER, 5)),
           CC.EXPLICIT)
    _settle(net)
    assert _conf(net, 1) == ((1, 2, 4), OLD, (3, 5), False)
    # 3 is still a voter of the outgoing half: it counts for commit there.
    net.partition((1, 3, 4), (2, 5))
    i = net.propose(1, b"x")
    _settle(net)
    assert net.nodes[1].raft.log.committed >= i
    net.recover()
    net.nodes[1].propose_conf_change_v2(CC.AUTO, ())
    net.drive(1)
    _settle(net)
    for k in net.ids:
        assert _conf(net, k) == ((1, 2, 4), (), (3, 5), False), (k, _conf(net, k))
    # A learner never campaigns.
    net.nodes[3].campaign()
    assert net.nodes[3].raft.role == FOLLOWER
    # etcd confchange (LearnersNext), thesis 4.2.1
