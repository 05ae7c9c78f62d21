"""Simulated lock-service clients for tools/simulator/sim.py (``--machine lock``).

    python3 tools/simulator/sim.py --machine lock --clients 5 --steps 20000 --faults all

Every node runs the lock service (lib/raftapp/lock.py) under the session
layer. Each client has an exactly-once session (REGISTER through the log),
keeps one request in flight and retries it with the same seq after a
timeout, a lost proposal or a leader change, over the real client protocol
in authenticated datagrams on the faulty network (as simkv's clients do).
A client contends for two locks: it ACQUIREs with a random lease, and while
it believes it holds one it CHECKs (an operation fenced by its token),
RENEWs or RELEASEs it. Now and then a client restarts and forgets its
session, so sessions are evicted and some holders simply vanish.

Log time: each node's driver, while it is leader, proposes ADVANCE(n) in
process every _ADVANCE ticks (cid 0, fire and forget), as an application's
driver would; deposed leaders keep trying until they learn, and whatever
commits is the log's time.

The checker (lockcheck.py) reads the committed log with results, in order,
from whichever node applies an index first; every other replica's result at
that index must be the same bytes (a machine that read a local clock would
differ). Clients report every grant they were told about. Violations go to
the simulator's checker, so the run fails and shrinks like any other.
"""
import binascii

from raft.core import LEADER
from raft.errors import DecodeError
from raftapp import lock as L
from raftapp.session import OK, SESSION_EXPIRED, decode_result
from raftio import wire
from lockcheck import LockChecker
from simnode import SimClientPort

_IDLE = 0
_REG = 1
_OP = 2

_TIMEOUT = 30
_MAX_TRIES = 12
_START = 250      # per mille chance per step that an idle client starts an op
_RESTART = 2      # per mille chance per idle step that a client forgets its session
_ADVANCE = 5      # ticks between a leader's ADVANCE proposals
_NAMES = (b"a", b"b")
_WINDOW = 512     # indexes whose result crc is kept for the replica comparison


class _Client:
    def __init__(self, pid, target):
        self.pid = pid
        self.cid = 0
        self.seq = 0
        self.state = _IDLE
        self.target = target
        self.data = None
        self.op = 0
        self.name = None
        self.tries = 0
        self.node = 0
        self.rid = 0
        self.deadline = 0
        self.wait = 0
        self.held = {}   # name -> token the client believes it holds


class Workload:
    def __init__(self, sim, nclients, reads, rand, max_sessions=None):
        if nclients > 255:
            raise ValueError("simlock: at most 255 clients")
        self.sim = sim
        self.rand = rand
        self.max_sessions = max_sessions or nclients + 2
        ids = sim.ids
        self.clients = [_Client(p, ids[p % len(ids)]) for p in range(nclients)]
        self.port = SimClientPort(sim)
        self.next_rid = 0
        self.checker = LockChecker()
        self.last = 0                      # highest index fed to the checker
        self.crcs = [None] * _WINDOW       # (index, crc of result) per slot
        self.adv = {}                      # node id -> ticks as leader not yet proposed
        self.c = {"tries": 0, "registers": 0, "redirects": 0, "lost": 0, "busy": 0,
                  "timeouts": 0, "gave_up": 0, "restarts": 0, "expired": 0,
                  "advance_proposed": 0}

    def machine(self):
        return L.machine(self.max_sessions, 4, 8)

    # -- sim hooks -------------------------------------------------------------
    def on_apply(self, simnode, e):
        m = simnode.machine
        res = m.last_result
        i = e[0]
        crc = -1 if res is None else binascii.crc32(res)
        slot = self.crcs[i % _WINDOW]
        if i <= self.last:
            if slot is not None and slot[0] == i and slot[1] != crc:
                self.sim.checker.fail("lock: node %d's result at %d differs from another "
                                      "replica's" % (simnode.id, i))
            return
        if i != self.last + 1:
            self.sim.checker.fail("lock: index %d applied before %d" % (i, self.last + 1))
        self.last = i
        self.crcs[i % _WINDOW] = (i, crc)
        ck = self.checker
        nv = len(ck.violations)
        if e[3]:
            ck.entry(i, e[3], res, not m.duplicate)
        if len(ck.violations) > nv:
            self.sim.checker.fail("lock: " + ck.violations[-1])

    def step(self):
        sim = self.sim
        self._advance()
        now = sim.now
        rnd = self.rand
        for c in self.clients:
            if c.state == _IDLE:
                if c.cid and rnd.chance(_RESTART):
                    c.cid = 0
                    c.held = {}
                    self.c["restarts"] += 1
                if not c.cid:
                    self._start(c, _REG, b"\x01")
                elif rnd.chance(_START):
                    self._start_op(c)
                continue
            if c.node == 0:
                if now >= c.wait:
                    self._try(c)
            elif now >= c.deadline:
                self.c["timeouts"] += 1
                self._retry_later(c, 0, True)

    def _advance(self):
        """Each leader's driver: ADVANCE every _ADVANCE ticks it leads."""
        sim = self.sim
        adv = self.adv
        for i in sim.ids:
            n = sim.nodes[i]
            if not n.up or n.engine.core.role != LEADER:
                adv[i] = 0
                continue
            t = adv.get(i, 0) + 1
            if t >= _ADVANCE:
                if n.engine.propose(L.encode_advance(t), None):
                    self.c["advance_proposed"] += 1
                    t = 0
            adv[i] = t

    def deliver(self, pid, datagram):
        if not 0 <= pid < len(self.clients):
            return
        c = self.clients[pid]
        got = self.port.open(datagram)
        if got is None:
            return
        rid, code, leader, body = got
        if c.state == _IDLE or c.node == 0 or rid != c.rid:
            return
        if code == wire.OK:
            try:
                self._result(c, body)
            except DecodeError:
                self.sim.checker.fail("lock: client %d got a malformed OK %r" % (c.pid, bytes(body)))
                self._done(c)
        elif code == wire.NOT_LEADER:
            if leader and leader != c.target and leader in self.sim.nodes:
                self.c["redirects"] += 1
                c.target = leader
                c.node = 0
                self._try(c)
            else:
                self._retry_later(c, 1 + self.rand.below(3), True)
        elif code == wire.RETRY:
            self.c["lost"] += 1
            self._retry_later(c, 1 + self.rand.below(3), False)
        elif code == wire.BUSY:
            self.c["busy"] += 1
            self._retry_later(c, 2 + self.rand.below(5), False)
        else:
            self.sim.checker.fail("lock: client %d's command was refused as a bad request" % c.pid)
            self._done(c)

    def summarize(self, out, check_linear):
        ck = self.checker
        out["machine"] = "lock"
        out["clients"] = len(self.clients)
        out["log_time"] = ck.now
        for k in sorted(ck.n):
            out[k] = ck.n[k]
        for k in sorted(self.c):
            out[k] = self.c[k]
        dup = 0
        for i in self.sim.ids:
            d = self.sim.nodes[i].machine.kv.duplicates
            if d > dup:
                dup = d
        out["dup_served"] = dup
        out["lock_violations"] = list(ck.violations)

    # -- clients ---------------------------------------------------------------
    def _start(self, c, state, data):
        c.state = state
        c.data = data
        c.tries = 0
        c.node = 0
        c.wait = self.sim.now
        self._try(c)

    def _start_op(self, c):
        rnd = self.rand
        name = _NAMES[rnd.below(len(_NAMES))]
        c.name = name
        c.seq += 1
        tok = c.held.get(name)
        r = rnd.below(100)
        if tok is None:
            c.op = L.ACQUIRE
            data = L.encode_acquire(c.cid, c.seq, name, 5 + rnd.below(30))
        elif r < 50:
            c.op = L.CHECK
            data = L.encode_check(c.cid, c.seq, name, tok)
        elif r < 80:
            c.op = L.RENEW
            data = L.encode_renew(c.cid, c.seq, name, tok, 5 + rnd.below(30))
        else:
            c.op = L.RELEASE
            data = L.encode_release(c.cid, c.seq, name, tok)
        self._start(c, _OP, data)

    def _try(self, c):
        c.tries += 1
        self.c["tries"] += 1
        if c.state == _REG:
            self.c["registers"] += 1
        self.next_rid = (self.next_rid + 1) & 0xFFFFFFFF
        c.rid = self.next_rid
        self.port.send(c.pid, c.target, c.rid, c.data)
        c.node = c.target
        c.deadline = self.sim.now + _TIMEOUT

    def _retry_later(self, c, delay, other):
        c.node = 0
        c.wait = self.sim.now + delay
        if other:
            ids = [i for i in self.sim.ids if i != c.target]
            if ids:
                c.target = ids[self.rand.below(len(ids))]
        if c.tries >= _MAX_TRIES and c.state != _REG:
            # Gave up: whether it executed is unknown, so believe nothing.
            self.c["gave_up"] += 1
            c.held.pop(c.name, None)
            self._done(c)

    def _done(self, c):
        c.state = _IDLE
        c.node = 0

    def _result(self, c, body):
        if c.state == _REG:
            st, v = decode_result(body)
            if st != OK or v is None or len(v) != 4:
                raise DecodeError("not a REGISTER result")
            c.cid = int.from_bytes(v, "little")
            c.seq = 0
            self._done(c)
            return
        st, tok, _ = L.decode_grant(body)
        if st == SESSION_EXPIRED:
            self.c["expired"] += 1
            c.cid = 0
            c.held = {}
        elif st == OK and c.op == L.ACQUIRE:
            ck = self.checker
            nv = len(ck.violations)
            ck.client_grant(c.cid, c.name, tok)
            if len(ck.violations) > nv:
                self.sim.checker.fail("lock: " + ck.violations[-1])
            c.held[c.name] = tok
        elif st != OK or c.op == L.RELEASE:
            c.held.pop(c.name, None)
        self._done(c)
