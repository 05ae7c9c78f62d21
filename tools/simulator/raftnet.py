"""A small deterministic in-memory network of Raft nodes for paper tests.

Every node has a MemoryStorage (its "disk", which survives crash/restart).
Two backends drive the nodes; the paper tests run on both:
  - "core": the harness's own Ready loop over the RawNode, the contract at
    its plainest: persist (snapshot, entries, hard state) -> send messages,
    then persisted_messages -> apply committed entries -> advance;
  - "engine": the engine the boards and the simulator run
    (raftio/engine.py), with this network as its transport, a clock per
    node that net.tick() advances by one tick, and a state machine that
    records what it applies. Tests still reach the RawNode as net.nodes[i].
BACKEND picks the backend of every Net made after it is set
(host_tests/conftest.py and tools/mptest.py --backend set it).

Messages travel as encoded bytes (raft.msg), so every test also exercises
the codec, and a delivered message never aliases the sender's objects.
Delivery is FIFO; partitions are checked both when a message is sent and
when it is delivered. All randomness comes from one seed.

The network checks three safety properties as it goes and raises
AssertionError on the spot: at most one leader per term (paper 5.2), no two
nodes apply different entries at the same index (paper 5.4.3), and no vote
grant or append ack leaves before what it promises is on storage.
"""
from raft import msg as M
from raft.config import Config
from raft.core import LEADER
from raft.rawnode import RawNode
from raft.memstorage import MemoryStorage
from raft.storage import ENTRY_CONF
from raftio.engine import Engine
from raftio.frame import Counters
from simnet import Rand  # noqa: F401  (tests import Rand from here)

BACKENDS = ("core", "engine")
# raftio/engine.py's _HS_COMMIT_LAG (a const the build folds away, so not
# importable; host_tests/core/test_purity.py checks the two agree).
ENGINE_COMMIT_LAG = 64
BACKEND = "core"
_TICK_MS = 10


class _Clock:
    """One node's clock: net.tick() moves it by one tick."""

    def __init__(self):
        self.now = 0

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, d):
        return a + d


class _Transport:
    """The engine's transport: decodes what it sends into the Net's queue."""

    def __init__(self, net):
        self.net = net
        self.counters = Counters()
        self._buf = bytearray(64 * 1024)

    def send(self, peer_id, writer):
        n = writer(self._buf, 0)
        self.net.send(M.decode(bytes(self._buf[:n])))
        return True

    def set_peer(self, peer_id, host, port):
        pass


class _Machine:
    """Records nothing itself (the Net's observer keeps the applied list);
    results are empty, snapshots are the applied index."""

    def __init__(self):
        self.applied_index = 0

    def apply(self, index, data):
        self.applied_index = index
        return b""

    def skip(self, index):
        self.applied_index = index

    def is_read(self, data):
        return True

    def query(self, data):
        return b""

    def snapshot_size(self):
        return 0

    def snapshot_into(self, buf):
        pass

    def restore(self, data):
        pass


class _Observer:
    def __init__(self, net, i):
        self.net = net
        self.i = i

    def persisted(self, rd):
        net = self.net
        if net.on_ready is not None:
            net.on_ready(self.i, rd)
        net.read_states[self.i].extend(rd.read_states)

    def applied(self, e, res):
        self.net._apply(self.i, e)

    def event(self, ev):
        self.net.events[self.i].append(ev)

    def restored(self, snap):
        self.net.applied[self.i] = []


class Net:
    def __init__(self, n, seed=1, **cfg):
        self.backend = BACKEND
        # Engine backend: node id -> its Engine and its clock.
        self.engines = {}
        self.clocks = {}
        self.ids = list(range(1, n + 1))
        self.cfg = cfg
        self.rand = Rand(seed)
        self.storages = {}
        self.nodes = {}
        self.up = {}
        # State machine per node: the committed entries it applied, in order.
        self.applied = {}
        self.read_states = {}
        # node id -> the events (raft/events.py) it reported, oldest first,
        # at event_level (0: none; set_event_level).
        self.events = {}
        self.event_level = 0
        self._node_rand = {}
        # In flight: decoded copies, oldest first.
        self.queue = []
        # (frm, to) pairs that cannot talk.
        self.blocked = set()
        self.drop = 0            # per mille, seeded
        self.dup = 0             # per mille, seeded: deliver a second copy
        self.reorder = False     # shuffle each delivery round (seeded)
        self.filter = None       # filter(m) -> True drops m at send time
        self.on_ready = None     # on_ready(id, rd) after persisting, before sending
        self.trace = None        # a list to record ("deliver"|"drop", m) into
        self.sent = 0
        self.dropped = 0
        self.delivered = 0
        self.sent_by_type = [0] * 14
        # Safety bookkeeping: term -> leader, index -> (term, data) applied.
        self.term_leader = {}
        self.applied_at = {}
        for i in self.ids:
            self.storages[i] = MemoryStorage(self.ids)
            self._node_rand[i] = Rand(seed * 1000 + i)
            self._boot(i)

    def config(self, i):
        kw = {"election_tick": 10, "heartbeat_tick": 1}
        for k in self.cfg:
            kw[k] = self.cfg[k]
        return Config(i, self.ids, **kw)

    def commit_lag(self):
        """How far the durable commit index may trail the commit index: the
        core harness writes every change, the engine a commit-only change
        every ENGINE_COMMIT_LAG entries (the paper keeps commit volatile)."""
        return ENGINE_COMMIT_LAG if self.backend == "engine" else 0

    def _boot(self, i):
        if self.backend == "engine":
            clk = self.clocks[i] = _Clock()
            # No snapshots by policy: the tests that need one make it.
            eng = Engine(self.config(i), self.storages[i], _Transport(self), _Machine(), clk,
                         self._node_rand[i].below, _TICK_MS, 1 << 30, 0, 1 << 16,
                         _Observer(self, i))
            self.engines[i] = eng
            self.nodes[i] = eng.rawnode
            eng.set_event_level(self.event_level)
        else:
            self.nodes[i] = RawNode(self.config(i), self.storages[i], self._node_rand[i].below)
            self.nodes[i].raft.event_level = self.event_level
        self.events.setdefault(i, [])
        self.up[i] = True
        self.applied[i] = []
        self.read_states[i] = []

    def raft(self, i):
        return self.nodes[i].raft

    def set_event_level(self, level):
        """Record every node's events up to level from now on (and after restarts)."""
        self.event_level = level
        for i in self.ids:
            if self.backend == "engine":
                self.engines[i].set_event_level(level)
            else:
                self.nodes[i].raft.event_level = level

    def set_log(self, i, terms, term=0, vote=0, commit=0):
        """Replace i's disk with a log whose entry k+1 has term terms[k], then reboot i.

        Entry data is b"t<term>i<index>" so divergent entries are told apart.
        """
        st = MemoryStorage(self.ids)
        st.append([(k + 1, terms[k], 0, b"t%di%d" % (terms[k], k + 1))
                   for k in range(len(terms))])
        if term < (terms[-1] if terms else 0):
            term = terms[-1]
        st.set_hard_state((term, vote, commit))
        self.storages[i] = st
        self._boot(i)
        if commit:
            # Entries up to commit count as applied by an earlier life.
            for e in st.entries(1, commit + 1, 0):
                self.applied_at[e[0]] = (e[1], e[3])

    # -- the ready contract ----------------------------------------------
    def drive(self, i):
        if self.backend == "engine":
            self._drive_engine(i)
            return
        node = self.nodes[i]
        st = self.storages[i]
        k = 0
        while k < 100 and node.has_ready():
            k += 1
            rd = node.ready()
            if rd.snapshot is not None:
                st.apply_snapshot(rd.snapshot)
            if rd.entries:
                st.append(rd.entries)
            if rd.hard_state is not None:
                st.set_hard_state(rd.hard_state)
            if self.on_ready is not None:
                self.on_ready(i, rd)
            self.events[i].extend(rd.events)
            for m in rd.messages:
                self.send(m)
            for m in rd.persisted_messages:
                self.send(m)
            if rd.snapshot is not None:
                self.applied[i] = []
            for e in rd.committed_entries:
                self._apply(i, e)
            self.read_states[i].extend(rd.read_states)
            node.advance(rd)
            self._check_leader(i)
        assert k < 100, "node %d never ran out of ready" % i

    def _drive_engine(self, i):
        eng = self.engines[i]
        k = 0
        while k < 100:
            k += 1
            eng.drive()   # starts the queued reads, then Readies (bounded)
            self._check_leader(i)
            if not eng.rawnode.has_ready():
                break
        assert k < 100, "node %d never ran out of ready" % i

    def _check_leader(self, i):
        r = self.nodes[i].raft
        if r.role == LEADER:
            prev = self.term_leader.get(r.term)
            assert prev is None or prev == i, "two leaders in term %d: %d and %d" % (
                r.term, prev, i)
            self.term_leader[r.term] = i

    def _apply(self, i, e):
        seen = self.applied_at.get(e[0])
        got = (e[1], e[3])
        if seen is None:
            self.applied_at[e[0]] = got
        else:
            assert seen == got, "node %d applied %r at %d, another applied %r" % (
                i, got, e[0], seen)
        self.applied[i].append(e)

    def drive_all(self):
        for i in self.ids:
            if self.up[i]:
                self.drive(i)

    # -- the network -------------------------------------------------------
    def _check_persisted(self, m):
        """Persist before you send what depends on it (rawnode.py step 3):
        a vote grant leaves only once the vote is on the sender's storage,
        an append ack only once the entries it acknowledges are."""
        if m.flags & M.FLAG_REJECT:
            return
        st = self.storages.get(m.frm)
        if m.type == M.VOTE_RESP:
            hs = st.hard_state
            assert hs[0] > m.term or (hs[0] == m.term and hs[1] == m.to), (
                "node %d granted its vote to %d in term %d before it was durable (hard state %r)"
                % (m.frm, m.to, m.term, hs))
        elif m.type == M.APP_RESP:
            assert st.last_index() >= m.index, (
                "node %d acknowledged index %d with only %d on storage"
                % (m.frm, m.index, st.last_index()))

    def send(self, m):
        self._check_persisted(m)
        self.sent += 1
        self.sent_by_type[m.type] += 1
        if ((m.frm, m.to) in self.blocked or not self.up.get(m.to, False)
                or (self.drop and self.rand.chance(self.drop))
                or (self.filter is not None and self.filter(m))):
            self.dropped += 1
            if self.trace is not None:
                self.trace.append(("drop", m))
            return
        b = M.encode(m)
        self.queue.append(M.decode(b))
        if self.dup and self.rand.chance(self.dup):
            self.queue.append(M.decode(b))

    def deliver(self, limit=100000):
        """Deliver the messages in flight now (not the ones they cause); returns the count."""
        q = self.queue
        self.queue = []
        if self.reorder:
            rnd = self.rand
            for k in range(len(q) - 1, 0, -1):
                j = rnd.below(k + 1)
                q[k], q[j] = q[j], q[k]
        n = 0
        for k in range(len(q)):
            m = q[k]
            if n >= limit:
                self.queue = q[k:] + self.queue
                break
            if (m.frm, m.to) in self.blocked or not self.up.get(m.to, False):
                self.dropped += 1
                if self.trace is not None:
                    self.trace.append(("drop", m))
                continue
            n += 1
            self.delivered += 1
            if self.trace is not None:
                self.trace.append(("deliver", m))
            self.nodes[m.to].step(m)
            self.drive(m.to)
        return n

    def stabilize(self, rounds=200):
        """Deliver until nothing is in flight and nobody has a Ready; returns the rounds used."""
        self.drive_all()
        for k in range(rounds):
            if not self.queue:
                return k
            self.deliver()
            self.drive_all()
        assert not self.queue, "not stable after %d rounds" % rounds
        return rounds

    def tick(self, n=1, ids=None):
        """Tick every live node (or those in ids) n times, without delivering."""
        for _ in range(n):
            for i in ids or self.ids:
                if self.up[i]:
                    if self.backend == "engine":
                        # The engine ticks by its clock, as on a board.
                        self.clocks[i].now += _TICK_MS
                        self.engines[i].tick()
                    else:
                        self.nodes[i].tick()
                    self.drive(i)

    def step(self):
        """One time step: deliver what is in flight, then tick everybody."""
        self.deliver()
        self.tick()

    def run(self, steps):
        for _ in range(steps):
            self.step()

    # -- faults ------------------------------------------------------------
    def cut(self, a, b):
        self.blocked.add((a, b))
        self.blocked.add((b, a))

    def isolate(self, i):
        for j in self.ids:
            if j != i:
                self.cut(i, j)

    def partition(self, *groups):
        """Cut every pair of nodes that are in different groups (unlisted nodes form one group)."""
        side = {}
        for g, grp in enumerate(groups):
            for i in grp:
                side[i] = g
        for a in self.ids:
            for b in self.ids:
                if side.get(a, -1) != side.get(b, -1):
                    self.blocked.add((a, b))

    def recover(self):
        """Heal every cut and stop dropping (crashed nodes stay down)."""
        self.blocked = set()
        self.drop = 0
        self.dup = 0
        self.reorder = False
        self.filter = None

    def crash(self, i):
        """Stop i; it loses everything but its storage and its in-flight messages vanish."""
        self.up[i] = False
        self.queue = [m for m in self.queue if m.to != i and m.frm != i]

    def restart(self, i):
        """Boot i again from its storage; its state machine re-applies from scratch."""
        self._boot(i)
        self.drive(i)

    # -- queries -----------------------------------------------------------
    def leader(self):
        """The live leader with the highest term, or 0."""
        best = 0
        bt = -1
        for i in self.ids:
            r = self.nodes[i].raft
            if self.up[i] and r.role == LEADER and r.term > bt:
                best = i
                bt = r.term
        return best

    def leaders(self):
        return [i for i in self.ids if self.up[i] and self.nodes[i].raft.role == LEADER]

    def elect(self, i):
        """Make i campaign and deliver everything; returns i's role afterwards."""
        self.nodes[i].campaign()
        self.drive(i)
        self.stabilize()
        return self.nodes[i].raft.role

    def propose(self, i, data):
        idx = self.nodes[i].propose(data)
        self.drive(i)
        return idx

    def log_of(self, i):
        """(index, term, data) of every entry in i's storage."""
        st = self.storages[i]
        lo = st.first_index()
        hi = st.last_index()
        if hi < lo:
            return []
        return [(e[0], e[1], e[3]) for e in st.entries(lo, hi + 1, 0)]

    def data_applied(self, i):
        """The non-empty payloads i applied (no-ops skipped), in order."""
        return [e[3] for e in self.applied[i] if e[3]]

    def wait_leader(self, max_steps=500):
        """Run until exactly one live leader is known to a majority; returns it or 0."""
        for _ in range(max_steps):
            self.step()
            ld = self.leader()
            if ld:
                t = self.nodes[ld].raft.term
                n = 0
                for i in self.ids:
                    r = self.nodes[i].raft
                    if self.up[i] and r.term == t and r.lead == ld:
                        n += 1
                if n >= len(self.ids) // 2 + 1:
                    return ld
        return 0


def fmt_msg(m):
    """A compact, deterministic one-line rendering (interaction scripts)."""
    t = m.type
    s = "%d->%d %s t%d" % (m.frm, m.to, M.TYPE_NAMES[t], m.term)
    rej = m.flags & M.FLAG_REJECT
    if t == M.APP:
        s += " prev=%d/%d commit=%d" % (m.index, m.log_term, m.commit)
        es = m.entries
        if len(es) > 6:
            s += " [%s %s .. %s] (%d entries)" % (fmt_entry(es[0]), fmt_entry(es[1]),
                                                 fmt_entry(es[-1]), len(es))
        elif es:
            s += " [" + " ".join(fmt_entry(e) for e in es) + "]"
    elif t == M.APP_RESP:
        if rej:
            s += " reject index=%d hint=%d/%d" % (m.index, m.hint, m.hint_term)
        else:
            s += " index=%d" % m.index
    elif t == M.VOTE or t == M.PREVOTE:
        s += " last=%d/%d" % (m.index, m.log_term)
        if m.flags & M.FLAG_FORCE:
            s += " force"
    elif t == M.VOTE_RESP or t == M.PREVOTE_RESP:
        s += " rejected" if rej else " granted"
    elif t == M.HEARTBEAT:
        s += " commit=%d" % m.commit
        if m.ctx:
            s += " read=%d" % m.ctx
    elif t == M.HEARTBEAT_RESP:
        if m.ctx:
            s += " read=%d" % m.ctx
    elif t == M.READ_INDEX or t == M.READ_INDEX_RESP:
        s += " ctx=%d" % m.ctx
        if t == M.READ_INDEX_RESP:
            s += " index=%d" % m.index
    elif t == M.SNAP:
        s += " snap=%d/%d off=%d" % (m.index, m.log_term, m.hint)
    elif t == M.SNAP_RESP:
        s += " snap=%d next=%d" % (m.index, m.hint)
    return s


def fmt_entry(e):
    d = e[3]
    if e[2] == ENTRY_CONF:
        return "%d/%d:conf" % (e[0], e[1])
    if not d:
        return "%d/%d" % (e[0], e[1])
    try:
        txt = d.decode()
    except Exception:
        txt = "<%d bytes>" % len(d)
    if len(txt) > 12:
        txt = txt[:10] + ".."
    return "%d/%d:%s" % (e[0], e[1], txt)


def replicating(seed, **cfg):
    """A 3-node net whose leader has every follower in the replicate state."""
    net = Net(3, seed=seed, **cfg)
    ld = net.wait_leader()
    net.propose(ld, b"warm")
    net.stabilize()
    net.tick()
    net.stabilize()
    return net, ld
