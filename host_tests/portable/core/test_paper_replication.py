"""Paper tests: log replication (Raft paper 5.3, 5.4.2; etcd flow control).

Plain assert functions; run under pytest and `micropython tools/mptest.py`.
raftnet.Net asserts on every apply that no two nodes apply different
entries at one index.
"""
from raft import msg as M
from raft.core import FOLLOWER, LEADER
from raft.errors import EntryTooLarge, LogFull, NotLeader
from raft.progress import REPLICATE
from raftnet import Net, Rand, replicating


def _nudge(net):
    """A few heartbeat rounds: they repair lost appends (paper 5.3)."""
    for _ in range(3):
        net.tick()
        net.stabilize()


def _agree(net, want, ids=None):
    """Every node in ids applied exactly the payloads in want, in order."""
    _nudge(net)
    net.tick()          # a heartbeat carries the final commit index
    net.stabilize()
    for i in ids or net.ids:
        assert net.data_applied(i) == want, (i, net.data_applied(i), want)


def test_basic_agreement():
    net = Net(3, seed=1)
    ld = net.wait_leader()
    want = []
    for k in range(5):
        d = b"x%d" % k
        idx = net.propose(ld, d)
        want.append(d)
        net.stabilize()
        # Committed once a majority stored it.
        assert net.raft(ld).log.committed >= idx
    _agree(net, want)
    # paper 5.3


def test_propose_on_follower_is_refused():
    net = Net(3, seed=1)
    ld = net.wait_leader()
    net.stabilize()
    f = [i for i in net.ids if i != ld][0]
    try:
        net.nodes[f].propose(b"nope")
        assert False, "a follower accepted a proposal"
    except NotLeader as e:
        assert e.args[0] == ld
    # paper 5.3 (clients talk to the leader)


def test_follower_failure():
    net = Net(3, seed=2)
    ld = net.wait_leader()
    f1, f2 = [i for i in net.ids if i != ld]
    net.crash(f1)
    for k in range(3):
        net.propose(ld, b"a%d" % k)
    net.stabilize()
    assert net.raft(ld).log.committed == net.raft(ld).log.last
    # Lose the second follower too: nothing commits any more.
    net.crash(f2)
    idx = net.propose(ld, b"lost?")
    net.run(5)
    assert net.raft(ld).log.committed < idx
    # Both come back; the pending entry commits and everybody catches up.
    net.restart(f1)
    net.restart(f2)
    net.run(20)
    assert net.raft(ld).role == LEADER
    _agree(net, [b"a0", b"a1", b"a2", b"lost?"])
    # paper 5.3


def test_leader_failure():
    net = Net(5, seed=3)
    ld = net.wait_leader()
    net.propose(ld, b"one")
    net.stabilize()
    net.crash(ld)
    ld2 = net.wait_leader()
    assert ld2 != ld
    net.propose(ld2, b"two")
    net.stabilize()
    net.restart(ld)
    net.run(20)
    _agree(net, [b"one", b"two"])
    # paper 5.3, 5.4


def test_no_agreement_without_majority():
    net = Net(5, seed=4)
    ld = net.wait_leader()
    net.propose(ld, b"before")
    net.stabilize()
    c0 = net.raft(ld).log.committed
    down = [i for i in net.ids if i != ld][:3]
    for i in down:
        net.crash(i)
    idx = net.propose(ld, b"pending")
    net.run(8)
    assert net.raft(ld).log.committed == c0 < idx
    # A majority again (in time, before check-quorum ends the term).
    for i in down:
        net.restart(i)
    net.run(10)
    ld = net.leader()
    _nudge(net)
    assert net.raft(ld).log.committed >= idx
    _agree(net, [b"before", b"pending"])
    # paper 5.3


def test_concurrent_proposals_one_order():
    for drop in (0, 100):
        net = Net(5, seed=5 + drop)
        ld = net.wait_leader()
        net.drop = drop
        rnd = Rand(55)
        sent = []
        for k in range(60):
            # Several proposals per step, interleaved with delivery and ticks.
            for _ in range(rnd.below(4)):
                ld = net.leader()
                if ld:
                    try:
                        net.propose(ld, b"c%d" % k)
                        sent.append(b"c%d" % k)
                    except NotLeader:
                        pass
            net.step()
        net.recover()
        net.wait_leader()
        net.run(30)
        _nudge(net)
        net.tick()
        net.stabilize()
        # Everyone applied the same sequence; with no loss it is everything sent.
        first = net.data_applied(1)
        for i in net.ids:
            assert net.data_applied(i) == first
        assert len(sent) > 40 and len(first) > 20, (len(sent), len(first))
        if not drop:
            assert first == sent
    # paper 5.3 (Log Matching), 5.4.3


def test_partitioned_leader_rejoins():
    net = Net(5, seed=6)
    old = net.wait_leader()
    net.propose(old, b"committed")
    net.stabilize()
    t = net.raft(old).term
    net.isolate(old)
    for k in range(3):
        net.propose(old, b"orphan%d" % k)
    # The majority elects a new leader and commits in a higher term.
    net.run(40)
    new = net.leader()
    assert new and new != old
    net.propose(new, b"new")
    net.stabilize()
    net.recover()
    net.run(20)
    r = net.raft(old)
    assert r.role == FOLLOWER and r.term > t and r.lead == net.leader()
    _agree(net, [b"committed", b"new"])
    for _, _, d in net.log_of(old):
        assert not d.startswith(b"orphan"), "uncommitted entry survived"
    # paper 5.3 (the leader forces followers' logs to duplicate its own)


def test_fast_backtracking_by_term():
    # (divergent terms on the follower, entries per term)
    for nterms, per in ((2, 25), (5, 10), (1, 50)):
        net = Net(3, pre_vote=False, check_quorum=False, election_tick=50)
        base = [1] * 5
        div = []
        for k in range(nterms):
            div += [2 + k] * per
        lt = 2 + nterms
        leader_log = base + [lt] * 60
        net.set_log(1, leader_log, commit=5)
        net.set_log(2, leader_log, commit=5)
        net.set_log(3, base + div, commit=5)
        rejects = []

        def count(i, rd):
            for m in rd.messages + rd.persisted_messages:
                if m.type == M.APP_RESP and m.reject and m.frm == 3:
                    rejects.append(m.index)

        net.on_ready = count
        assert net.elect(1) == LEADER
        net.tick()
        net.stabilize()
        assert net.log_of(3) == net.log_of(1)
        # At most one round trip per divergent term, not per entry.
        assert 1 <= len(rejects) <= nterms + 1, (nterms, per, rejects)
    # paper 5.3 (optimization at the end of the section), etcd findConflictByTerm


def test_backtracking_follower_behind():
    # A follower that is simply missing entries is found in one probe.
    net = Net(3, pre_vote=False, check_quorum=False, election_tick=50)
    net.set_log(1, [1] * 40, commit=3)
    net.set_log(2, [1] * 40, commit=3)
    net.set_log(3, [1] * 3, commit=3)
    rejects = []
    net.on_ready = lambda i, rd: rejects.extend(
        m for m in rd.persisted_messages if m.type == M.APP_RESP and m.reject)
    assert net.elect(1) == LEADER
    net.tick()
    net.stabilize()
    assert net.log_of(3) == net.log_of(1)
    assert len(rejects) <= 1
    # paper 5.3


def _replicating_leader(**kw):
    return replicating(10, **kw)


def test_inflight_window():
    for k in (1, 3, 8):
        net, ld = _replicating_leader(max_inflight=k)
        mute = [i for i in net.ids if i != ld][0]
        assert net.raft(ld).prs[mute].state == REPLICATE
        # The mute follower receives everything but its answers never arrive.
        net.filter = lambda m: m.frm == mute
        apps = []
        net.on_ready = lambda i, rd: apps.extend(
            m for m in rd.messages if m.type == M.APP and m.to == mute and m.entries)
        for n in range(20):
            net.propose(ld, b"p%d" % n)
        net.stabilize()
        assert len(apps) == k, (k, len(apps))
        # The other follower keeps the cluster committing.
        assert net.raft(ld).log.committed == net.raft(ld).log.last
        # Once the follower talks again, the window drains and it catches up.
        net.recover()
        net.on_ready = None
        for _ in range(6):
            net.tick()
            net.stabilize()
        assert net.log_of(mute) == net.log_of(ld)
    # etcd tracker/inflights (flow control)


def test_appends_batch_up_to_max_size():
    net, ld = _replicating_leader(max_size_per_msg=500, max_entry_bytes=200)
    apps = []
    net.on_ready = lambda i, rd: apps.extend(
        m for m in rd.messages if m.type == M.APP and m.entries)
    nd = net.nodes[ld]
    for n in range(30):
        nd.propose(b"%03d" % n + b"z" * 97)
    net.drive(ld)
    net.stabilize()
    assert apps
    for m in apps:
        size = 0
        for e in m.entries:
            size += len(e[3]) + M.ENTRY_OVERHEAD
        assert size <= 500, size
        assert M.encoded_size(m) <= 500 + M.HEADER_SIZE
    # 107 bytes per entry: four to a message.
    assert max(len(m.entries) for m in apps) == 4
    # etcd MaxSizePerMsg


def test_ring_back_pressure():
    net = Net(3, seed=10, ring_capacity=8, pre_vote=False)
    net.nodes[1].campaign()
    net.drive(1)
    net.deliver()
    net.deliver()
    assert net.raft(1).role == LEADER
    # Cut the followers off before they hear from the new leader.
    net.isolate(2)
    net.isolate(3)
    accepted = []
    refused = 0
    for n in range(20):
        try:
            net.propose(1, b"r%d" % n)
            accepted.append(b"r%d" % n)
        except LogFull:
            refused += 1
    assert refused > 0 and 0 < len(accepted) < 8
    r = net.raft(1)
    assert r.log.last - r.log.committed <= r.log.cap - 1
    # Heal before check-quorum ends the term: everything accepted commits.
    net.recover()
    for _ in range(3):
        net.tick()
        net.stabilize()
    assert net.leader() == 1
    assert r.log.committed == r.log.last
    _agree(net, accepted)
    # Room again after the commit.
    net.propose(1, b"after")
    _agree(net, accepted + [b"after"])
    # DESIGN.md Memory (bounded ring, back-pressure)


def test_oversized_entry_refused():
    net, ld = _replicating_leader(max_size_per_msg=200, max_entry_bytes=100)
    try:
        net.propose(ld, b"z" * 101)
        assert False, "accepted an entry larger than max_entry_bytes"
    except EntryTooLarge:
        pass
    # The largest allowed entry still fits one append.
    net.propose(ld, b"z" * 100)
    _agree(net, [b"warm", b"z" * 100])
    # DESIGN.md Wire (one message per datagram)
