"""Paper tests: a wiped node (blank storage, old id) and node incarnations
(docs/incarnation.md; thesis 4.1 and 11.1: a server that lost its storage
must rejoin as a new member, never act on its old identity).

Every member is bound to an incarnation (the cluster file's incs); a wiped
node boots with a new one. Plain assert functions; run under pytest (both
backends) and `micropython tools/mptest.py`.
"""
import gc

from raft import confchange as CC
from raft import msg as M
from raft.config import Config
from raft.core import FOLLOWER, LEADER
from raft.memstorage import MemoryStorage
from raft.snapblob import blob_head, decode_blob
from raft.storage import ENTRY_CONF, Snapshot
from raftnet import Net

INCS = {1: 101, 2: 102, 3: 103}


def _net(n=3, incs=INCS, seed=1):
    gc.collect()
    net = Net(n, seed=seed)
    net.incs = dict(incs)       # node id -> the incarnation its storage holds

    def config(i):
        return Config(i, net.ids, election_tick=10, heartbeat_tick=1,
                      inc=net.incs.get(i, 0), incs=incs)

    net.config = config
    for i in net.ids:
        net._boot(i)
    return net


def _wipe(net, i, inc):
    """i loses its whole storage and boots with its id and a new incarnation."""
    net.crash(i)
    net.storages[i] = MemoryStorage(net.ids)
    net.incs[i] = inc
    net.restart(i)


def _settle(net, rounds=30):
    for _ in range(rounds):
        net.tick()
        net.stabilize()


def _conf_entries(net, i):
    st = net.storages[i]
    return [CC.decode(e[3])[:2] for e in st.entries(st.first_index(), st.last_index() + 1, 0)
            if e[2] == ENTRY_CONF]


def _vote_request(to, frm, term, last, last_term, inc, t=M.VOTE):
    return M.Message(t, to, frm, term, last_term, last, inc)


def test_responses_and_vote_requests_carry_the_senders_incarnation():
    net = _net()
    assert net.elect(1) == LEADER
    seen = []
    net.trace = seen
    net.propose(1, b"x")
    net.stabilize()
    net.tick()
    net.stabilize()
    kinds = set()
    for what, m in seen:
        if m.type in (M.APP_RESP, M.HEARTBEAT_RESP):
            assert m.commit == INCS[m.frm], m
            kinds.add(m.type)
    assert kinds == {M.APP_RESP, M.HEARTBEAT_RESP}


def test_a_wiped_voter_grants_no_vote_in_a_term_it_voted_in_before():
    # Section 5.2 (one vote per term) across incarnations: node 3 voted for
    # 1 in term 2, is wiped, and 2 asks for its vote in that same term.
    net = _net()
    assert net.elect(1) == LEADER
    t = net.raft(1).term
    assert net.raft(3).vote == 1
    _wipe(net, 3, 903)
    r3 = net.raft(3)
    assert r3.term == 0 and r3.vote == 0 and r3.mismatch == 103
    last = net.raft(2).log.last
    for typ in (M.PREVOTE, M.VOTE):
        net.raft(3).step(_vote_request(3, 2, t, last, t, 102, typ))
        net.drive(3)
    grants = [m for m in net.queue if m.frm == 3 and m.type in (M.VOTE_RESP, M.PREVOTE_RESP)]
    assert grants and all(m.flags & M.FLAG_REJECT for m in grants), grants
    assert net.raft(3).vote == 0


def test_a_wiped_voter_never_campaigns():
    net = _net()
    assert net.elect(1) == LEADER
    _wipe(net, 3, 903)
    net.isolate(3)
    r3 = net.raft(3)
    for _ in range(100):
        net.tick(ids=[3])
        net.drive(3)
        assert r3.role == FOLLOWER and r3.term == 0, r3.role


def test_the_leader_ignores_a_new_incarnation_and_proposes_rejoin():
    net = _net()
    assert net.elect(1) == LEADER
    for k in range(5):
        net.propose(1, b"v%d" % k)
    _settle(net, 3)
    pr = net.raft(1).prs[3]
    assert pr.match == net.raft(1).log.last
    _wipe(net, 3, 903)
    # One heartbeat round: 3 answers as incarnation 903.
    net.tick(ids=[1])
    net.drive(1)
    net.deliver()
    net.drive_all()
    net.deliver()
    r1 = net.raft(1)
    assert r1.foreign >= 1
    assert (CC.REJOIN, 3) in _conf_entries(net, 1)
    _settle(net)
    # Back as a caught-up voter bound to its new incarnation; one change at
    # a time: REJOIN (a voter removed), then ADD_VOTER once caught up.
    ces = _conf_entries(net, 1)
    assert ces == [(CC.REJOIN, 3), (CC.ADD_VOTER, 3)], ces
    for i in net.ids:
        r = net.raft(i)
        assert r.voters == (1, 2, 3) and r.incs[3] == 903 and not r.rejoin, (i, r.voters)
    assert net.raft(3).mismatch == 0
    assert net.raft(3).log.committed == r1.log.committed
    assert net.data_applied(3) == net.data_applied(1)


def test_a_late_ack_of_the_old_incarnation_never_counts():
    # Once 3 rejoined as 903, an ack that 103 sent before the wipe (delayed
    # in the network) must not raise the leader's match for 3: with 2 cut
    # off, it would commit an entry that only the leader stores.
    net = _net()
    assert net.elect(1) == LEADER
    net.propose(1, b"a")
    _settle(net, 3)
    _wipe(net, 3, 903)
    _settle(net)
    r1 = net.raft(1)
    assert r1.incs[3] == 903 and 3 in r1.voters
    net.isolate(2)
    net.cut(1, 3)
    idx = net.propose(1, b"only on the leader")
    c = r1.log.committed
    old = M.Message(M.APP_RESP, 1, 3, r1.term, index=idx, commit=103)
    r1.step(old)
    net.drive(1)
    assert r1.prs[3].match < idx
    assert r1.log.committed == c


def test_acks_the_old_incarnation_sent_before_rejoin_do_not_stall_the_new_one():
    # Between the leader's REJOIN proposal and its apply, a late ack of 103
    # (the old incarnation, still bound) raises match again; applying the
    # REJOIN must forget it, or the leader never backs up to 903's empty
    # log and 903 never catches up.
    net = _net()
    assert net.elect(1) == LEADER
    for k in range(3):
        net.propose(1, b"v%d" % k)
    _settle(net, 3)
    r1 = net.raft(1)
    last = r1.log.last
    _wipe(net, 3, 903)
    net.isolate(3)
    r1.step(M.Message(M.HEARTBEAT_RESP, 1, 3, r1.term, commit=903))
    net.drive(1)
    assert (CC.REJOIN, 3) in _conf_entries(net, 1)
    r1.step(M.Message(M.APP_RESP, 1, 3, r1.term, index=last, commit=103))
    net.drive(1)
    net.stabilize()
    assert 3 in r1.learners and r1.incs[3] == 903
    net.recover()
    _settle(net)
    assert r1.voters == (1, 2, 3) and net.raft(3).log.committed == r1.log.committed


def test_rejoin_waits_for_a_pending_change_and_then_happens():
    net = _net(4, {1: 101, 2: 102, 3: 103, 4: 104})
    assert net.elect(1) == LEADER
    _settle(net, 3)
    # A change in flight (4 demoted, not yet committed: 2 and 4 are cut).
    net.isolate(2)
    net.isolate(4)
    net.nodes[1].propose_conf_change(CC.ADD_LEARNER, 4)
    net.drive(1)
    _wipe(net, 3, 903)
    net.tick(ids=[1])
    net.drive(1)
    net.deliver()
    net.drive_all()
    net.deliver()
    assert (CC.REJOIN, 3) not in _conf_entries(net, 1)
    net.recover()
    _settle(net)
    ces = _conf_entries(net, 1)
    assert (CC.REJOIN, 3) in ces and ces[-1] == (CC.ADD_VOTER, 3), ces


def test_a_wiped_node_takes_no_commit_index_from_a_heartbeat():
    # The leader sends min(match, commit) in heartbeats, trusting match. For
    # a wiped node it may be the old incarnation's: entries a stale leader
    # appended since the wipe (never committed) must not become committed.
    net = _net()
    _wipe(net, 3, 903)
    r3 = net.raft(3)
    stale = [(1, 2, 0, b"lost"), (2, 2, 0, b"lost too")]
    r3.step(M.Message(M.APP, 3, 1, 2, 0, 0, 0, entries=stale))
    net.drive(3)
    assert r3.log.last == 2 and r3.log.committed == 0
    r3.step(M.Message(M.HEARTBEAT, 3, 2, 3, commit=2))
    net.drive(3)
    assert r3.log.committed == 0
    assert net.applied[3] == []


def test_unbound_clusters_keep_todays_behaviour():
    net = _net(3, {})
    assert net.elect(1) == LEADER
    net.propose(1, b"a")
    _settle(net, 3)
    _wipe(net, 3, 903)
    _settle(net)
    assert _conf_entries(net, 1) == []
    assert net.raft(1).foreign == 0 and net.raft(3).mismatch == 0


def test_rejoin_codec_and_apply():
    d = CC.encode(CC.REJOIN, 3, b"\x87\x03\x00\x00")
    assert CC.decode(d) == (CC.REJOIN, 3, b"\x87\x03\x00\x00")
    # Truncated, and a REJOIN whose ctx is not one u32.
    for bad in (d[:-1], b"\x05\x03\x00\x03abc", b"\x05\x03\x00\x00"):
        try:
            CC.decode(bad)
        except Exception:
            continue
        raise AssertionError("decoded %r" % (bad,))
    conf = ((1, 2, 3), (), (), False)
    assert CC.apply_conf(conf, CC.REJOIN, 3) == ((1, 2), (), (3,), False)
    assert CC.apply_conf(((1, 2), (), (3,), False), CC.REJOIN, 3) == ((1, 2), (), (3,), False)
    try:
        CC.apply_conf(conf, CC.REJOIN, 4)
    except Exception:
        pass
    else:
        raise AssertionError("REJOIN of a non-member applied")


def test_snapshot_blob_carries_incarnations():
    s = Snapshot(9, 2, (1, 2), (3,), b"img", (), False, (101, 102, 903 | 0x80000000))
    got = decode_blob(9, 2, blob_head(s) + s.data)
    assert got.incs == (101, 102, 903 | 0x80000000) and got.data == b"img"
    plain = Snapshot(9, 2, (1, 2), (3,), b"img")
    got = decode_blob(9, 2, blob_head(plain) + plain.data)
    assert got.incs == () and got.data == b"img" and got.learners == (3,)
