"""One cluster fixture, several backends: write a scenario once, run it on each.

    c = clusterfix.make("engine")          # or "core", or "processes"
    try:
        ld = c.wait_leader()
        assert c.put("k", "v")             # True once acknowledged
        c.crash(ld)
        assert c.get("k") == "v"           # linearizable (ReadIndex)
        c.check()
    finally:
        c.close()

Backends (the `backend` attribute names the one in use):
  "core"       raftnet.Net (tools/simulator/raftnet.py) on its own Ready loop
               over the pure core. The fixture is the client and the state
               machine: a put proposes b"key=value" on the leader and is
               acknowledged once that node applied the entry at the index it
               got WITH the term it got (another leader's entry there means
               the put was lost); a get runs a ReadIndex round on the leader,
               waits for its read state and for applied >= the read index,
               then folds the entries that node applied.
  "engine"     the simulator (tools/simulator/sim.py) running the shipped
               engine and server (simnode.SimNode) on the fake flash. Puts
               and gets are datagrams in the real client protocol
               (raftio.wire + raftkv.codec, sealed by raftio.frame) sent over
               the simulated network to a node's server, answered by it: one
               exactly-once session (REGISTER first, then client id + seq),
               NOT_LEADER hints followed, silence and RETRY retried with the
               same seq. The simulator's checker (election safety, log
               matching, leader completeness, state machine safety, durable
               commits) runs after every step; a violation fails at once.
  "processes"  five MicroPython unix-port node processes on 127.0.0.1
               (tools/ops/cluster.py) behind the user-space fault proxy,
               spoken to with raftio.client.Client. CPython only (it starts
               processes); slow: the scenarios' time is real time.

Time is counted in ticks: step(n) is n simulator steps, or n real ticks
(the board's tick_ms) of sleep for processes. Every wait is bounded by
`within` ticks (a count bound as well as a time bound); a wait that runs out
raises AssertionError (wait_leader, wait_until) or reports failure (put
returns False, get raises Unavailable).

Portable: imports and runs under MicroPython (no os.path, dataclasses,
typing, abc or threading); the processes backend imports its CPython-only
modules when it is built.
"""

from raft.errors import DecodeError, NotLeader, ProposalDropped
from raft.roles import LEADER as _LEADER

BACKENDS = ("core", "engine", "processes")

# Default bounds, in ticks (election timeouts are 10-20 ticks in the
# simulated backends, 15-30 on the unix board).
WAIT = 600
SHORT = 80


class Unavailable(Exception):
    """No linearizable read could be served within the bound."""


def make(backend, **kw):
    """A new cluster of 5 nodes (nodes=N to change) on backend."""
    if backend == "core":
        return CoreCluster(**kw)
    if backend == "engine":
        return EngineCluster(**kw)
    if backend == "processes":
        return ProcessCluster(**kw)
    raise ValueError("clusterfix: no backend %r; choose from %s" % (backend, ", ".join(BACKENDS)))


def _s(b):
    return b if isinstance(b, str) else bytes(b).decode()


class Cluster:
    """The interface every backend implements.

    ids                     node ids
    backend                 "core", "engine" or "processes"
    wait_leader(within)     the leader a majority of the nodes follow
    leader()                the same without waiting, 0 if none
    leaders()               every live node that believes it leads
    applied(i)              node i's applied index (i must be up)
    put(key, value, via, within)
                            True once the write is acknowledged (committed
                            and applied); False if it was not within the
                            bound (its outcome is then unknown). via=i sends
                            it to node i only, never elsewhere.
    get(key, via, within)   the value (str) or None, read linearizably;
                            raises Unavailable if no read was served
    partition(*groups)      cut every pair of nodes in different groups (the
                            nodes in no group form one more group); replaces
                            any earlier partition
    heal()                  remove every cut
    crash(i) / restart(i)   stop node i (its storage survives) / boot it again
    power_cut(*ids)         the nodes lose power: what was not durable is gone
    step(n)                 let n ticks pass
    wait_until(pred, what, within)
    check()                 raise AssertionError on any safety violation seen
    close()                 stop and release everything (call it in a finally)
    """

    backend = None
    WAIT = WAIT
    SHORT = SHORT

    def __init__(self):
        self.ids = []

    # -- what every backend provides -------------------------------------------
    def now(self):
        """Ticks elapsed since the cluster was made."""
        raise NotImplementedError

    def step(self, n=1):
        raise NotImplementedError

    def views(self):
        """{id: (is_leader, term, leader id it follows)} of the nodes up."""
        raise NotImplementedError

    def check(self):
        pass

    def close(self):
        pass

    # -- shared ----------------------------------------------------------------
    def _majority(self):
        return len(self.ids) // 2 + 1

    def leaders(self):
        v = self.views()
        return sorted(i for i in v if v[i][0])

    def leader(self):
        """The leader of the highest term that a majority of all nodes
        follows (itself included), or 0."""
        v = self.views()
        best = 0
        bt = -1
        for i in v:
            if v[i][0] and v[i][1] > bt:
                t = v[i][1]
                n = 0
                for j in v:
                    if v[j][1] == t and v[j][2] == i:
                        n += 1
                if n >= self._majority():
                    best = i
                    bt = t
        return best

    def wait_until(self, pred, what, within=None):
        """Step until pred() is true; AssertionError after `within` ticks."""
        within = self.WAIT if within is None else within
        start = self.now()
        k = 0
        while True:
            if pred():
                return
            if self.now() - start >= within or k > within:
                raise AssertionError("%s backend: %s: not within %d ticks"
                                     % (self.backend, what, within))
            self.step(1)
            k += 1

    def wait_leader(self, within=None):
        """The leader id once a majority follows one (bounded)."""
        got = [0]

        def known():
            got[0] = self.leader()
            return got[0] != 0
        self.wait_until(known, "no leader known to a majority", within)
        return got[0]

    def _groups(self, groups):
        """groups plus one group of the nodes named in none of them."""
        named = []
        out = []
        for g in groups:
            g = list(g)
            out.append(g)
            named += g
        rest = [i for i in self.ids if i not in named]
        if rest:
            out.append(rest)
        return out

    def _blocked_pairs(self, groups):
        side = {}
        for k, g in enumerate(self._groups(groups)):
            for i in g:
                side[i] = k
        return set((a, b) for a in self.ids for b in self.ids
                   if a != b and side[a] != side[b])


# -- "core": raftnet.Net over the pure core ---------------------------------------

class CoreCluster(Cluster):
    """raftnet's own Ready loop over the core (backend "core").

    Storage is raftnet's MemoryStorage, written at every Ready before
    anything is sent: nothing is ever pending, so power_cut is crash here.
    There are no client sessions: a put retried after an unknown outcome may
    apply twice (harmless for a put)."""

    backend = "core"

    def __init__(self, nodes=5, seed=1):
        Cluster.__init__(self)
        import raftnet
        old = raftnet.BACKEND
        raftnet.BACKEND = "core"
        try:
            self.net = raftnet.Net(nodes, seed=seed)
        finally:
            raftnet.BACKEND = old
        self.ids = list(self.net.ids)
        self._t = 0
        self._ctx = 0

    def now(self):
        return self._t

    def step(self, n=1):
        for _ in range(n):
            self.net.step()
            self._t += 1

    def views(self):
        net = self.net
        out = {}
        for i in self.ids:
            if net.up[i]:
                r = net.nodes[i].raft
                out[i] = (r.role == _LEADER, r.term, r.lead)
        return out

    def _is_leader(self, i):
        return self.net.up[i] and self.net.nodes[i].raft.role == _LEADER

    def applied(self, i):
        assert self.net.up[i], "node %d is down" % i
        return self.net.nodes[i].raft.log.applied

    def _entry(self, i, idx):
        for e in reversed(self.net.applied[i]):
            if e[0] == idx:
                return e
            if e[0] < idx:
                return None
        return None

    def _value(self, i, key):
        """key's value in what node i applied: the entries are b"key=value"."""
        pre = ("%s=" % key).encode()
        v = None
        for e in self.net.applied[i]:
            d = e[3]
            if d.startswith(pre):
                v = d[len(pre):].decode()
        return v

    def _target(self, via):
        if via is not None:
            return via if self._is_leader(via) else 0
        ld = self.leader()
        return ld

    def put(self, key, value, via=None, within=None):
        within = self.WAIT if within is None else within
        net = self.net
        data = ("%s=%s" % (key, value)).encode()
        end = self._t + within
        while self._t < end:
            i = self._target(via)
            if not i:
                self.step(1)
                continue
            term = net.nodes[i].raft.term
            try:
                idx = net.propose(i, data)
            except ProposalDropped:   # not leader (any more), log full
                self.step(1)
                continue
            # Acknowledged once i applied the entry at idx with our term.
            while self._t < end and net.up[i]:
                e = self._entry(i, idx)
                if e is not None:
                    if e[1] == term and e[3] == data:
                        return True
                    break   # another leader's entry took idx: lost
                self.step(1)
        return False

    def get(self, key, via=None, within=None):
        within = self.WAIT if within is None else within
        net = self.net
        end = self._t + within
        while self._t < end:
            i = self._target(via)
            if not i:
                self.step(1)
                continue
            self._ctx += 1
            ctx = self._ctx
            try:
                net.nodes[i].read_index(ctx)
            except NotLeader:
                self.step(1)
                continue
            net.drive(i)
            # The read state, then applied >= the read index (thesis 6.4).
            # A leader that loses its quorum never answers: give the round
            # two election timeouts, then ask again.
            ri = -1
            give_up = min(end, self._t + 20)
            while self._t < give_up and net.up[i]:
                for index, c in net.read_states[i]:
                    if c == ctx:
                        ri = index
                if ri >= 0:
                    break
                self.step(1)
            if ri < 0:
                continue
            while self._t < end and net.up[i]:
                if net.nodes[i].raft.log.applied >= ri:
                    return self._value(i, key)
                self.step(1)
        raise Unavailable("core backend: no read of %r served within %d ticks" % (key, within))

    def partition(self, *groups):
        self.net.blocked = self._blocked_pairs(groups)

    def heal(self):
        self.net.blocked = set()

    def crash(self, i):
        assert self.net.up[i], "node %d is already down" % i
        self.net.crash(i)

    def power_cut(self, *ids):
        for i in ids:
            self.crash(i)

    def restart(self, i):
        assert not self.net.up[i], "node %d is up" % i
        self.net.restart(i)


# -- "engine": the simulator with the shipped engine ------------------------------

_TRY = 30   # ticks one request may take before it is sent again


class _SimClient:
    """The fixture's client as the simulator's workload: Sim calls step()
    after each step, deliver() for a datagram to a client address,
    on_apply() for each applied entry and summarize() for its summary;
    SimNode reads max_sessions when it boots a node."""

    def __init__(self, sim, pid):
        from raftio.frame import Framer, MAX_DATAGRAM
        from simnode import CLUSTER_ID, KEY
        self.sim = sim
        self.pid = pid
        self.max_sessions = 16   # what SimNode gives nodes when there is no workload
        self.framer = Framer(CLUSTER_ID, KEY)
        self.tx = bytearray(MAX_DATAGRAM)
        self.waiting = 0   # the request id we wait for
        self.reply = None  # (code, leader, body) for it

    # -- sim hooks -----------------------------------------------------------------
    def step(self):
        pass

    def on_apply(self, simnode, e):
        pass

    def summarize(self, out, check_linear):
        pass

    def deliver(self, pid, datagram):
        from raftio import wire
        from raftio.frame import HEADER
        if pid != self.pid:
            return
        n = self.framer.check(datagram, len(datagram))
        if n < 0:
            return
        try:
            _, rid, code, leader, body = wire.decode_reply(datagram, HEADER, n)
        except DecodeError:
            return
        if rid == self.waiting and self.reply is None:
            self.reply = (code, leader, bytes(body))

    # -- requests --------------------------------------------------------------------
    def send(self, to, rid, cmd):
        from raftio import wire
        from raftio.frame import HEADER
        from simnode import CLIENT_BASE
        sim = self.sim
        n = wire.encode_request_into(self.tx, HEADER, rid, cmd)
        n = self.framer.seal(self.tx, n)
        self.waiting = rid
        self.reply = None
        sim.net.send(sim.now, CLIENT_BASE + self.pid, to, bytes(self.tx[:n]))


class EngineCluster(Cluster):
    """The shipped engine in the simulator (backend "engine").

    Every node stores its log, hard state and snapshots in the real flash
    formats on the fake flash (raftio/fakeflash.py): bytes reach it only when
    flushed. crash(i) stops the node; restart(i) reboots its flash (anything
    unflushed is gone, as the simulator's own crashes do) and boots a new
    engine from it. power_cut(*ids) arms a power cut on each node at a random
    byte of its next flash writes (up to 200 bytes on), lets time run until
    all of them lost power, at most 10 ticks, and cuts the ones that wrote
    nothing in that time."""

    backend = "engine"
    CUT_TICKS = 10

    def __init__(self, nodes=5, seed=1):
        Cluster.__init__(self)
        import sim as simmod
        from simnet import Rand
        opts = simmod.parse_args([])
        # "powercut" makes the nodes use the fake flash; then no fault is
        # left to the simulator's nemesis: the fixture makes every one.
        opts.update(nodes=nodes, seed=seed, faults=["powercut"], shrink=False)
        s = simmod.Sim(opts)
        s.faults = []
        self.client = _SimClient(s, 0)
        s.workload = self.client   # also turns off the sim's own proposals
        self.sim = s
        self.ids = list(s.ids)
        self._rand = Rand(seed * 7919 + 17)
        self._t0 = s.now
        self._rid = 0
        self._cid = 0
        self._seq = 0
        self._hint = 0

    def now(self):
        return self.sim.now - self._t0

    def step(self, n=1):
        s = self.sim
        for _ in range(n):
            s.step()
            # A node that lost power mid-write stays down until restart().
            s.heals = []
            if s.checker.violations:
                raise AssertionError("engine backend: safety violation: %s"
                                     % s.checker.violations[0])

    def views(self):
        out = {}
        for i in self.ids:
            n = self.sim.nodes[i]
            if n.up:
                r = n.engine.core
                out[i] = (r.role == _LEADER, r.term, r.lead)
        return out

    def applied(self, i):
        n = self.sim.nodes[i]
        assert n.up, "node %d is down" % i
        return n.engine.core.log.applied

    def check(self):
        v = self.sim.checker.violations
        assert not v, "engine backend: safety violations: %r" % (v,)

    # -- the client protocol -----------------------------------------------------------
    def _next_target(self, cur):
        ids = self.ids
        return ids[(ids.index(cur) + 1) % len(ids)] if cur in ids else ids[0]

    def _call(self, cmd, via, within):
        """Send cmd until a node answers OK: (True, result) or (False, None)
        when the bound runs out. via: that node only."""
        from raftio import wire
        cl = self.client
        end = self.now() + within
        target = via or self._hint or self.ids[0]
        while self.now() < end:
            self._rid += 1
            cl.send(target, self._rid, cmd)
            deadline = min(end, self.now() + _TRY)
            while cl.reply is None and self.now() < deadline:
                self.step(1)
            got = cl.reply
            cl.waiting = 0
            if got is None:
                if via is None:
                    target = self._next_target(target)
                continue
            code, lead, body = got
            if code == wire.OK:
                if via is None:
                    self._hint = target
                return True, body
            if code == wire.BAD_REQUEST:
                raise AssertionError("engine backend: node %d refused %r as malformed"
                                     % (target, cmd))
            if code == wire.NOT_LEADER and via is None:
                target = lead if lead in self.ids and lead != target else \
                    self._next_target(target)
            self.step(1)   # RETRY, BUSY, or not leader (via): again, same seq
        return False, None

    def _session(self, within):
        if self._cid:
            return True
        from raftkv import codec
        ok, res = self._call(codec.encode_register(), None, within)
        if ok:
            self._cid = codec.decode_client_id(res)
            self._seq = 0
        return ok

    def put(self, key, value, via=None, within=None):
        from raftkv import codec
        within = self.WAIT if within is None else within
        start = self.now()
        if not self._session(within):
            return False
        self._seq += 1
        cmd = codec.encode_put(self._cid, self._seq, key.encode(), value.encode())
        ok, res = self._call(cmd, via, within - (self.now() - start))
        if not ok:
            return False
        st = codec.decode_result(res)[0]
        assert st == codec.OK, "engine backend: put %s answered %s" % (
            key, codec.status_name(st))
        return True

    def get(self, key, via=None, within=None):
        from raftkv import codec
        within = self.WAIT if within is None else within
        ok, res = self._call(codec.encode_get(self._cid, 0, key.encode()), via, within)
        if not ok:
            raise Unavailable("engine backend: no read of %r served within %d ticks"
                              % (key, within))
        st, val = codec.decode_result(res)
        if st == codec.NOT_FOUND:
            return None
        assert st == codec.OK, "engine backend: get %s answered %s" % (
            key, codec.status_name(st))
        return _s(val) if val is not None else ""

    # -- faults --------------------------------------------------------------------------
    def partition(self, *groups):
        self.sim.net.blocked = self._blocked_pairs(groups)
        self.sim.partitions += 1
        self.sim.log("fixture: partition %r" % (self._groups(groups),))

    def heal(self):
        self.sim.net.blocked = set()
        self.sim.log("fixture: heal")

    def crash(self, i):
        s = self.sim
        n = s.nodes[i]
        assert n.up, "node %d is already down" % i
        n.up = False
        s.crashes += 1
        s.net.drop_for(i)
        s.log("fixture: crash %d" % i)

    def power_cut(self, *ids):
        s = self.sim
        for i in ids:
            n = s.nodes[i]
            assert n.up, "node %d is already down" % i
            if n.fs.budget is None:
                n.fs.budget = self._rand.below(200)
        s.log("fixture: arm power cut on %r" % (list(ids),))
        k = 0
        while k < self.CUT_TICKS and [i for i in ids if s.nodes[i].up]:
            self.step(1)
            k += 1
        for i in ids:
            n = s.nodes[i]
            if n.up:
                # Wrote nothing in the meantime: off now, unflushed bytes lost.
                n.up = False
                s.crashes += 1
                s.power_cuts += 1
                s.net.drop_for(i)
            n.fs.budget = None

    def restart(self, i):
        s = self.sim
        assert not s.nodes[i].up, "node %d is up" % i
        s.heal((s.now, "restart", i))   # power cycle the flash, boot, tell the checker
        self.check()


# -- "processes": real MicroPython node processes ------------------------------------

class ProcessCluster(Cluster):
    """Five MicroPython unix-port node processes on 127.0.0.1 behind the
    fault proxy (tools/ops/cluster.py up --proxy); CPython only.

    crash(i) and power_cut(i) are both SIGKILL: a process cannot lose power.
    That is the closest honest equivalent: the node gets no chance to run
    any code, and what it had not handed to the OS is gone; what it had
    written but not flushed (fsync on the unix port) survives in the page
    cache, where a real power cut would lose it. Partitions are the proxy's
    (node to node traffic only; clients reach every node). step(n) sleeps n
    of the board's ticks. close() stops every process this fixture started.
    """

    backend = "processes"
    WAIT = 1500   # 15 s at 10 ms ticks: process starts and elections are real time

    def __init__(self, nodes=5, d=None, runtime="micropython"):
        Cluster.__init__(self)
        import json
        import os
        import tempfile
        import time
        import cluster
        self._cluster = cluster
        self._time = time
        self.runtime = runtime
        self._own = d is None
        self.dir = d or tempfile.mkdtemp(prefix="mpraft-clusterfix-")
        self.client = None
        self._vias = {}
        try:
            cluster.up(self.dir, nodes, runtime, timeout_s=30, proxy=True)
            with open(os.path.join(self.dir, "board.json")) as f:
                self.tick_ms = json.load(f)["tick_ms"]
            self.cl = cluster.load(self.dir)
            self.ids = [n["id"] for n in self.cl["nodes"]]
            self.client = cluster.client(self.dir, timeout_ms=self.WAIT * self.tick_ms)
        except BaseException:
            cluster.down(self.dir)
            raise
        self._t0 = time.monotonic()
        self._status = None

    def now(self):
        return int((self._time.monotonic() - self._t0) * 1000 / self.tick_ms)

    def step(self, n=1):
        self._time.sleep(n * self.tick_ms / 1000.0)

    def _statuses(self):
        return self._cluster.statuses(self.dir, self.client, 100)

    def views(self):
        out = {}
        for i, st in self._statuses():
            if st:
                out[i] = (st["role"] == "leader", st["term"], st["leader"])
        return out

    def applied(self, i):
        st = self.client.status(i, 300)
        assert st is not None, "node %d does not answer" % i
        return st["applied"]

    def _via(self, i):
        """A client that talks to node i only, in the main client's session."""
        from raftio.client import Client
        c = self._vias.get(i)
        if c is None:
            n = [n for n in self.cl["nodes"] if n["id"] == i][0]
            c = self._vias[i] = Client(self.cl["cluster_id"], self.cl["key"],
                                       [(i, n["host"], n["port"])])
        if not self.client.cid:
            self.client.register()
        c.cid = self.client.cid
        c.seq = self.client.seq
        return c

    def put(self, key, value, via=None, within=None):
        from raftio.client import ClusterUnavailable
        within = self.WAIT if within is None else within
        self.client.timeout_ms = within * self.tick_ms
        c = self.client
        try:
            if via is not None:
                c = self._via(via)   # may register the session first
                c.timeout_ms = within * self.tick_ms
            c.put(key, value)
            return True
        except ClusterUnavailable:
            return False
        finally:
            if c is not self.client:
                self.client.seq = c.seq   # the seq is spent either way

    def get(self, key, via=None, within=None):
        from raftio.client import ClusterUnavailable
        within = self.WAIT if within is None else within
        self.client.timeout_ms = within * self.tick_ms
        try:
            c = self.client if via is None else self._via(via)
            c.timeout_ms = within * self.tick_ms
            v = c.get(key)
        except ClusterUnavailable:
            raise Unavailable("processes backend: no read of %r served within %d ticks"
                              % (key, within))
        return None if v is None else _s(v)

    def partition(self, *groups):
        self._cluster.faults(self.dir, partition=self._groups(groups))

    def heal(self):
        self._cluster.faults(self.dir)

    def crash(self, i):
        assert self._cluster.kill(self.dir, i), "node %d was not running" % i

    def power_cut(self, *ids):
        for i in ids:
            self.crash(i)

    def restart(self, i):
        assert self._cluster.pid(self.dir, i) is None, "node %d is running" % i
        self._cluster.start(self.dir, i, self.runtime)

    def check(self):
        """No node printed a traceback."""
        import os
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name)) as f:
                    text = f.read()
                assert "Traceback" not in text, "%s:\n%s" % (name, text[-2000:])

    def close(self):
        """Stop every process (nodes and proxy); a folder this fixture made
        itself (no d= given) is removed too."""
        try:
            self._cluster.down(self.dir)
        finally:
            for c in [self.client] + list(self._vias.values()):
                if c is not None:
                    try:
                        c.close()
                    except Exception:
                        pass
            if self._own:
                import shutil
                shutil.rmtree(self.dir, ignore_errors=True)
