"""The "engine" backend of the cluster fixture (clusterfix.py)."""
from raft.roles import LEADER as _LEADER

from clusterfix import Cluster, Unavailable, _s


# -- "engine": the simulator with the shipped engine ------------------------------

_TRY = 30   # ticks one request may take before it is sent again


class _SimClient:
    """The fixture's client as the simulator's workload: Sim calls step()
    after each step, deliver() for a datagram to a client address,
    on_apply() for each applied entry and summarize() for its summary;
    SimNode reads max_sessions when it boots a node."""

    def __init__(self, sim, pid):
        from simnode import SimClientPort
        self.sim = sim
        self.pid = pid
        self.max_sessions = 16   # what SimNode gives nodes when there is no workload
        self.port = SimClientPort(sim)
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
        got = self.port.open(datagram) if pid == self.pid else None
        if got is not None and got[0] == self.waiting and self.reply is None:
            self.reply = (got[1], got[2], bytes(got[3]))

    # -- requests --------------------------------------------------------------------
    def send(self, to, rid, cmd):
        self.waiting = rid
        self.reply = None
        self.port.send(self.pid, to, rid, cmd)


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
