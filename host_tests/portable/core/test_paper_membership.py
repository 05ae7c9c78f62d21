"""Paper tests: cluster membership changes, one server at a time (thesis 4.1-4.2,
etcd ConfChange v1 semantics: a change takes effect when applied).

Plain assert functions; run under pytest and `micropython tools/mptest.py`.
"""
import gc

from raft import confchange as CC
from raft import msg as M
from raft.config import Config
from raft.core import FOLLOWER, LEADER
from raft.errors import ConfigError, DecodeError, NotLeader, ProposalDropped
from raft.memstorage import MemoryStorage
from raft.rawnode import RawNode
from raft.storage import ENTRY_CONF
from raftnet import Net


def _fresh_heap():
    # mptest runs every portable file in one MicroPython heap (about 2 MB,
    # no compaction); later files (lincheck in test_simkv_portable) need
    # large blocks, so these tests start from a collected heap.
    gc.collect()


def _conf(net, i):
    return net.nodes[i].conf_state()


def _change(net, ld, op, nid, ctx=b""):
    idx = net.nodes[ld].propose_conf_change(op, nid, ctx)
    net.drive(ld)
    return idx


def _newcomer_net(seed=1):
    """Nodes 1-3 are the cluster; node 4 is booted but not a member yet. It
    starts from the bootstrap voters with itself as a learner (so it can
    never campaign) and learns the real configuration from the log."""
    net = Net(4, seed=seed)

    def config(i):
        if i == 4:
            return Config(4, [1, 2, 3], learners=(4,), election_tick=10, heartbeat_tick=1)
        return Config(i, [1, 2, 3], election_tick=10, heartbeat_tick=1)

    net.config = config
    for i in net.ids:
        net.storages[i] = MemoryStorage([1, 2, 3]) if i != 4 else MemoryStorage()
        net._boot(i)
    return net


def _settle(net):
    """Deliver everything, then one heartbeat round so followers learn the commit."""
    net.stabilize()
    net.tick()
    net.stabilize()


def _committed(net, i, idx):
    return net.nodes[i].raft.log.committed >= idx


# -- the codec ---------------------------------------------------------------

def test_conf_change_codec_round_trip_and_bad_bytes():
    _fresh_heap()
    for op in (CC.ADD_VOTER, CC.ADD_LEARNER, CC.REMOVE):
        for ctx in (b"", b"10.0.0.4:7000", b"x" * CC.MAX_CTX):
            assert CC.decode(CC.encode(op, 65535, ctx)) == (op, 65535, ctx)
    good = CC.encode(CC.ADD_VOTER, 4, b"addr")
    bad = [b"", good[:3], good[:-1], good + b"!", b"\x09" + good[1:],
           b"\x01\x00\x00\x00", b"\x01\x04\x00\x41" + b"a" * 0x41]
    for b in bad:
        try:
            CC.decode(b)
        except DecodeError:
            continue
        raise AssertionError("decoded %r" % (b,))
    for args in ((9, 4), (CC.REMOVE, 0), (CC.REMOVE, 70000)):
        try:
            CC.encode(*args)
        except ConfigError:
            continue
        raise AssertionError("encoded %r" % (args,))
    try:
        CC.encode(CC.ADD_VOTER, 4, b"x" * (CC.MAX_CTX + 1))
        raise AssertionError("ctx over the cap")
    except ConfigError:
        pass
    # etcd confchange: apply returns a new config and refuses no-ops.
    assert CC.apply((1, 2, 3), (), CC.ADD_LEARNER, 4) == ((1, 2, 3), (4,))
    assert CC.apply((1, 2, 3), (4,), CC.ADD_VOTER, 4) == ((1, 2, 3, 4), ())
    assert CC.apply((1, 2, 3), (4,), CC.REMOVE, 4) == ((1, 2, 3), ())
    assert CC.apply((1, 2, 3), (), CC.ADD_LEARNER, 3) == ((1, 2), (3,))
    for v, ln, op, nid in (((1, 2), (), CC.ADD_VOTER, 2), ((1,), (2,), CC.ADD_LEARNER, 2),
                           ((1, 2), (), CC.REMOVE, 5), ((1,), (), CC.REMOVE, 1),
                           ((1,), (), CC.ADD_LEARNER, 1)):
        try:
            CC.apply(v, ln, op, nid)
        except ConfigError:
            continue
        raise AssertionError("applied %r" % ((v, ln, op, nid),))
    # etcd ConfChange v1


# -- learners (thesis 4.2.1) -------------------------------------------------------

def test_add_learner_then_promote_after_it_caught_up():
    _fresh_heap()
    net = _newcomer_net()
    assert net.elect(1) == LEADER
    for k in range(20):
        net.propose(1, b"e%d" % k)
    net.stabilize()
    assert _conf(net, 4) == ((1, 2, 3), (4,))  # booted as a learner guess
    idx = _change(net, 1, CC.ADD_LEARNER, 4, b"10.0.0.4:7000")
    _settle(net)
    for i in net.ids:
        assert _conf(net, i) == ((1, 2, 3), (4,)), (i, _conf(net, i))
    r1 = net.nodes[1].raft
    assert 4 in r1.peers and r1.prs[4].match == r1.log.last
    # The learner has the whole log, conf entry included.
    assert [e[3] for e in net.applied[4] if e[3]][:20] == [b"e%d" % k for k in range(20)]
    assert net.applied[4][-1][0] >= idx

    # It does not count in the quorum: 1 + 4 cannot commit without 2 or 3.
    net.cut(1, 2)
    net.cut(1, 3)
    i2 = net.propose(1, b"learner-only")
    net.stabilize()
    assert not _committed(net, 1, i2)
    assert net.nodes[4].raft.log.last >= i2  # it got the entry, all the same
    net.recover()
    net.stabilize()
    net.tick()
    net.stabilize()
    assert _committed(net, 1, i2)

    # Nor does it campaign, however long it hears nothing.
    net.isolate(4)
    t = net.nodes[4].raft.term
    net.tick(50, ids=[4])
    assert net.nodes[4].raft.role == FOLLOWER and net.nodes[4].raft.term == t
    net.recover()
    net.tick()
    net.stabilize()

    # Caught up: promote it. Now 1 + 4 is not a majority of four, but 1 + 2 + 4 is.
    _change(net, 1, CC.ADD_VOTER, 4)
    _settle(net)
    for i in net.ids:
        assert _conf(net, i) == ((1, 2, 3, 4), ()), (i, _conf(net, i))
    net.cut(1, 2)
    net.cut(1, 3)
    i3 = net.propose(1, b"two-of-four")
    net.stabilize()
    assert not _committed(net, 1, i3)
    net.recover()
    net.cut(1, 3)
    net.tick()
    net.stabilize()
    assert _committed(net, 1, i3)
    # The promoted node can now win an election.
    net.recover()
    _settle(net)
    net.nodes[1].transfer_leader(4)
    net.drive(1)
    _settle(net)
    assert net.leader() == 4
    # thesis 4.2.1 (new servers join as non-voting members and catch up first)


# -- removal (thesis 4.1, 4.2.2) ---------------------------------------------------

def test_remove_follower_commits_with_smaller_quorum():
    _fresh_heap()
    net = Net(4, seed=2)
    assert net.elect(1) == LEADER
    net.propose(1, b"a")
    net.stabilize()
    # Control: with two of four down, nothing commits.
    net.isolate(3)
    net.isolate(4)
    i0 = net.propose(1, b"blocked")
    net.stabilize()
    assert not _committed(net, 1, i0)
    net.recover()
    net.tick()
    net.stabilize()
    assert _committed(net, 1, i0)

    _change(net, 1, CC.REMOVE, 4)
    _settle(net)
    for i in (1, 2, 3):
        assert _conf(net, i) == ((1, 2, 3), ())
    assert 4 not in net.nodes[1].raft.prs
    net.isolate(3)
    net.isolate(4)
    i1 = net.propose(1, b"two-of-three")
    _settle(net)
    assert _committed(net, 1, i1) and _committed(net, 2, i1)
    # thesis 4.1 (the new configuration's majority decides commitment)


def test_applying_a_removal_commits_what_the_smaller_quorum_holds():
    _fresh_heap()
    net = Net(4, seed=3)
    assert net.elect(1) == LEADER
    net.propose(1, b"a")
    net.stabilize()
    ic = _change(net, 1, CC.REMOVE, 4)   # goes to 2, 3, 4
    net.isolate(4)
    ix = ic + 1
    net.filter = lambda m: m.type == M.APP and m.to == 3 and any(
        e[0] == ix for e in m.entries)
    assert net.propose(1, b"x") == ix    # goes to 2, but 3 never gets it
    net.deliver()
    # Node 2's acks (for ic and ix) arrive first, node 3's ack for ic last.
    net.queue = [m for m in net.queue if m.frm != 3] + [m for m in net.queue if m.frm == 3]
    assert [(m.frm, m.index) for m in net.queue] == [(2, ic), (2, ix), (3, ic)]
    r1 = net.nodes[1].raft
    net.deliver(limit=2)
    assert r1.log.committed < ic
    net.deliver()
    # The ack that commits the removal is the last one: applying it alone
    # must commit ix.
    assert r1.log.committed >= ix
    net.stabilize()
    # ic committed by {1, 2, 3} of four; x is only on {1, 2}: two of four is not
    # a majority, but once the leader applies the removal, two of three is.
    assert r1.log.applied >= ic and r1.voters == (1, 2, 3)
    assert net.nodes[3].raft.log.last < ix
    assert r1.log.committed >= ix
    # thesis 4.1, etcd (maybeCommit after switchToConfig)


def test_removed_leader_steps_down_and_the_rest_elect():
    _fresh_heap()
    net = Net(4, seed=4)
    assert net.elect(1) == LEADER
    net.propose(1, b"a")
    net.stabilize()
    ic = _change(net, 1, CC.REMOVE, 1)
    _settle(net)
    r1 = net.nodes[1].raft
    assert r1.role == FOLLOWER and r1.voters == (2, 3, 4)
    # Its last heartbeat carried the commit index, so the others applied it too.
    for i in (2, 3, 4):
        assert net.nodes[i].raft.log.applied >= ic and _conf(net, i) == ((2, 3, 4), ())
    ld = 0
    for _ in range(300):
        net.step()
        ld = net.leader()
        if ld:
            break
    assert ld in (2, 3, 4), ld
    net.stabilize()
    t = net.nodes[1].raft.term
    sent_to_1 = [0]
    net.filter = lambda m: m.to == 1 and sent_to_1.__setitem__(0, sent_to_1[0] + 1)
    i2 = net.propose(ld, b"after")
    net.run(60)
    assert _committed(net, ld, i2)
    # The removed node never campaigns, and the new leader does not talk to it.
    assert net.nodes[1].raft.role == FOLLOWER and net.nodes[1].raft.term == t
    assert sent_to_1[0] == 0
    # thesis 4.2.2 (the removed leader steps down once the change is committed)


def test_removed_node_cannot_win_an_election():
    _fresh_heap()
    net = Net(4, seed=5)
    assert net.elect(1) == LEADER
    _change(net, 1, CC.REMOVE, 4)
    _settle(net)
    r4 = net.nodes[4].raft
    assert r4.voters == (1, 2, 3)
    t = r4.term
    net.nodes[4].campaign()
    net.drive(4)
    assert r4.role == FOLLOWER and r4.term == t and not net.queue
    # thesis 4.2.3, etcd (promotable: only a voter campaigns)


def test_node_that_missed_its_removal_cannot_win():
    _fresh_heap()
    for pre_vote in (True, False):
        net = Net(4, seed=6, pre_vote=pre_vote, check_quorum=pre_vote)
        assert net.elect(1) == LEADER
        net.isolate(4)
        ic = _change(net, 1, CC.REMOVE, 4)
        _settle(net)
        assert _committed(net, 1, ic)
        assert net.nodes[4].raft.voters == (1, 2, 3, 4)  # it never heard
        net.recover()
        for _ in range(3):
            net.nodes[4].campaign()
            net.drive(4)
            net.stabilize()
            assert net.nodes[4].raft.role != LEADER
        if pre_vote:
            # Pre-vote and check-quorum: the cluster is not even disturbed.
            assert net.nodes[1].raft.role == LEADER
    # thesis 4.2.3 (disruptive servers; its log lacks the committed removal)


# -- one change at a time (thesis 4.1, etcd pendingConfIndex) ----------------------

def test_second_change_refused_while_one_is_pending():
    _fresh_heap()
    net = _newcomer_net(seed=7)
    assert net.elect(1) == LEADER
    net.stabilize()
    try:
        net.nodes[2].propose_conf_change(CC.ADD_LEARNER, 4)
        raise AssertionError("a follower accepted a conf change")
    except NotLeader as e:
        assert e.args[0] == 1
    idx = _change(net, 1, CC.ADD_LEARNER, 4)
    try:
        net.nodes[1].propose_conf_change(CC.ADD_VOTER, 4)
        raise AssertionError("second change accepted while %d is pending" % idx)
    except ProposalDropped:
        pass
    net.stabilize()
    # Applied: the next one is welcome; no-ops and removing the last voter are not.
    for op, nid in ((CC.ADD_LEARNER, 4), (CC.ADD_VOTER, 1), (CC.REMOVE, 9)):
        try:
            net.nodes[1].propose_conf_change(op, nid)
            raise AssertionError("no-op change accepted")
        except ConfigError:
            pass
    _change(net, 1, CC.ADD_VOTER, 4)
    _settle(net)
    assert _conf(net, 1) == ((1, 2, 3, 4), ())
    # A transfer in progress refuses changes too.
    net.isolate(3)
    net.nodes[1].transfer_leader(3)
    try:
        net.nodes[1].propose_conf_change(CC.REMOVE, 4)
        raise AssertionError("conf change accepted during a transfer")
    except ProposalDropped:
        pass
    solo = Net(1)
    assert solo.elect(1) == LEADER
    for op in (CC.REMOVE, CC.ADD_LEARNER):
        try:
            solo.nodes[1].propose_conf_change(op, 1)
            raise AssertionError("removed the last voter")
        except ConfigError:
            pass
    # thesis 4.1 (one change at a time), etcd (pendingConfIndex)


def test_new_leader_refuses_changes_until_earlier_entries_applied():
    _fresh_heap()
    net = Net(4, seed=8, pre_vote=False, check_quorum=False)
    assert net.elect(1) == LEADER
    net.stabilize()
    # Leader 1 gets REMOVE 4 onto 2 and 3, then dies before it commits.
    net.filter = lambda m: m.type == M.APP_RESP and m.to == 1
    ic = _change(net, 1, CC.REMOVE, 4)
    _settle(net)
    net.crash(1)
    net.filter = None
    assert net.nodes[2].raft.log.last >= ic and not _committed(net, 2, ic)
    net.nodes[2].campaign()
    net.drive(2)
    r2 = net.nodes[2].raft
    for _ in range(3):
        net.deliver()
        net.drive_all()
        if r2.role == LEADER:
            break
    assert r2.role == LEADER and r2.log.committed < ic
    # Until its no-op commits (and with it the earlier-term change) and is
    # applied, it refuses: the earlier change may still be in effect.
    try:
        net.nodes[2].propose_conf_change(CC.REMOVE, 3)
        raise AssertionError("new leader accepted a change before committing in its term")
    except ProposalDropped:
        pass
    net.stabilize()
    assert r2.log.applied >= ic and r2.voters == (1, 2, 3)
    _change(net, 2, CC.REMOVE, 1)
    _settle(net)
    assert _conf(net, 2) == ((2, 3), ())
    # raft-dev 2015 (Ongaro): commit in the new term before a conf change; etcd becomeLeader


# -- durability (thesis 4.1: the configuration survives restarts) ---------------

def _snapshot(net, i):
    node = net.nodes[i]
    st = net.storages[i]
    applied = node.raft.log.applied
    v, ln = node.conf_state()
    st.create_snapshot(applied, v, ln, b"sm@%d" % applied)
    st.compact(applied)
    node.compacted(applied, st.term(applied))


def test_conf_survives_restart_snapshot_and_replay():
    _fresh_heap()
    net = _newcomer_net(seed=9)
    assert net.elect(1) == LEADER
    _change(net, 1, CC.ADD_LEARNER, 4)
    _settle(net)
    # Node 2 snapshots here: the snapshot records voters 1-3 and learner 4.
    _snapshot(net, 2)
    assert net.storages[2].snapshot().learners == (4,)
    _change(net, 1, CC.ADD_VOTER, 4)
    _settle(net)
    net.propose(1, b"x")
    net.stabilize()
    _change(net, 1, CC.REMOVE, 3)
    _settle(net)
    want = ((1, 2, 4), ())
    assert _conf(net, 1) == want
    for i in (2, 4):
        net.crash(i)
        net._boot(i)
        node = net.nodes[i]
        # Before replay: the snapshot's (or bootstrap) configuration, and no
        # campaigning while committed conf changes wait to be applied.
        assert node.conf_state() != want
        r = node.raft
        assert r._conf_between(r.log.applied + 1, r.log.committed + 1)
        node.campaign()
        assert node.raft.role == FOLLOWER and not node.raft.msgs_after_persist
        net.drive(i)
        assert node.conf_state() == want, (i, node.conf_state())
    assert net.nodes[2].raft.log.snap_index > 0
    # thesis 4.1 (configuration from the snapshot, then the log), etcd restart


def test_conf_from_installed_snapshot():
    _fresh_heap()
    net = Net(4, seed=10)
    assert net.elect(1) == LEADER
    net.isolate(4)
    _change(net, 1, CC.REMOVE, 3)
    _settle(net)
    _change(net, 1, CC.ADD_LEARNER, 3)
    _settle(net)
    for k in range(5):
        net.propose(1, b"p%d" % k)
    net.stabilize()
    assert _conf(net, 1) == ((1, 2, 4), (3,))
    _snapshot(net, 1)
    assert net.storages[1].snapshot().voters == (1, 2, 4)
    net.recover()
    net.tick()
    net.stabilize()
    net.tick()
    net.stabilize()
    r4 = net.nodes[4].raft
    assert net.storages[4].snapshot().index == net.storages[1].snapshot().index
    assert _conf(net, 4) == ((1, 2, 4), (3,))
    assert set(r4.prs) == set((1, 2, 3, 4))
    # thesis 5 (the snapshot carries the latest configuration), 4.1


def test_ready_reports_conf_changes_and_bad_entries_are_skipped():
    _fresh_heap()
    net = _newcomer_net(seed=11)
    seen = []
    net.on_ready = lambda i, rd: seen.extend((i,) + c for c in rd.conf_changes)
    assert net.elect(1) == LEADER
    idx = _change(net, 1, CC.ADD_LEARNER, 4, b"addr4")
    _settle(net)
    for i in net.ids:
        assert (i, idx, CC.ADD_LEARNER, 4, b"addr4") in seen, (i, seen)
    # A committed ENTRY_CONF that does not decode changes nothing anywhere.
    bad = net.nodes[1].raft.propose(b"\x09junk", ENTRY_CONF)
    net.drive(1)
    _settle(net)
    for i in net.ids:
        r = net.nodes[i].raft
        assert r.log.applied >= bad and r.bad_conf_entries == 1
        assert _conf(net, i) == ((1, 2, 3), (4,))
    # etcd (ConfChange entries are applied by every node alike)


def _drain(n, st):
    """Drive a lone node's Readys (persist, advance) until it has none."""
    for _ in range(5):
        if not n.has_ready():
            break
        rd = n.ready()
        st.append(rd.entries)
        if rd.hard_state:
            st.set_hard_state(rd.hard_state)
        n.advance(rd)


def test_single_node_adds_a_voter():
    _fresh_heap()
    st = MemoryStorage([1])
    n = RawNode(Config(1, [1]), st, lambda k: 0)
    n.campaign()
    _drain(n, st)
    assert n.raft.role == LEADER
    n.propose_conf_change(CC.ADD_VOTER, 2)
    _drain(n, st)
    # A single voter commits its own change; from then on it needs node 2.
    assert n.conf_state() == ((1, 2), ())
    i = n.propose(b"y")
    rd = n.ready()
    st.append(rd.entries)
    n.advance(rd)
    assert n.raft.log.committed < i
    assert [m.to for m in rd.messages if m.type == M.APP] == [2]
    # thesis 4.1 (going from one server to two)


def test_follower_holds_a_conf_entry_until_the_previous_commit_is_durable():
    _fresh_heap()
    net = Net(5, seed=12)
    assert net.elect(1) == LEADER
    net.isolate(5)
    c1 = _change(net, 1, CC.REMOVE, 4)
    _settle(net)
    c2 = _change(net, 1, CC.ADD_LEARNER, 4)
    _settle(net)
    assert c2 > c1 and net.nodes[1].raft.log.committed >= c2
    r5 = net.nodes[5].raft
    assert r5.log.last < c1 and r5._durable_commit < c1
    # Node 5 rejoins: the leader's first append carries both changes and a
    # commit covering both.
    net.recover()
    seen = []
    net.on_ready = lambda i, rd: i == 5 and rd.entries and seen.append(
        (rd.entries[-1][0], rd.hard_state))
    for _ in range(6):
        net.tick()
        net.stabilize()
    assert seen, "node 5 never appended"
    # The first batch stops just before the second change, with a commit that
    # covers the first; the second arrives only once that commit is durable.
    first_last, first_hs = seen[0]
    assert first_last == c2 - 1 and first_hs[2] >= c1, seen
    assert r5.log.last >= c2 and _conf(net, 5) == ((1, 2, 3, 5), (4,))
    # etcd #7625 (apply-time changes: invariant "Append"), thesis 4.1
