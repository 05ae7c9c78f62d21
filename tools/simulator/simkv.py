"""Simulated key-value clients for tools/simulator/sim.py (``--clients N``).

    python3 tools/simulator/sim.py --nodes 5 --clients 5 --steps 20000 --faults all --check-linear

Each client is one process with its own exactly-once session (Raft
dissertation 6.3): it REGISTERs through the log (client id = log index of
the register entry), numbers its writes 1, 2, 3..., keeps at most one
request in flight, and retries a write with the SAME seq after a timeout, a
lost proposal or a leader change, so a retry can never apply twice.

Clients speak the real client protocol (raftio/wire.py) in authenticated
datagrams (raftio/frame.py) over the simulator's network, which drops,
duplicates and delays them like any other datagram; the node's server and
engine decide every answer. So a write is ok/fail only when the node said
OK with the state machine's result, which the engine sends only once the
entry at the proposal's index applied WITH THE SAME TERM; RETRY (lost
proposal), NOT_LEADER (follow the hint), BUSY and timeouts make the client
try again, same seq. Reads go through the leader's ReadIndex (or its lease
with --reads lease); the answer is the node's.

* local reads (negative control): answered at once from the state machine
  of whatever node was asked, bypassing the node: stale reads are possible,
  and lincheck should catch them.
* SESSION_EXPIRED: the op is info if an earlier try (or a duplicate the
  network made) may have applied before the session was evicted (fail only
  if this was the only request and the network cannot duplicate); the
  client registers again and starts a new session at seq 1.
* Giving up after _MAX_TRIES, or a run ending with an op pending: info.

Every event goes to ``history`` in tools/history/lincheck.py's format; ``summarize``
checks it. Exactly-once is checked independently of lincheck: every
(client, seq) that a state machine executed (not a cached duplicate) must
have been executed at exactly one log index, and every acknowledged write
must be among them. All randomness comes from the sim's seeded Rand and all
iteration is over lists, so a run is identical on CPython and MicroPython.

Memory (MicroPython's 2 MB heap does not compact): the history is packed
12 bytes per event and the exactly-once ledger 5 bytes per write, both in
small fixed chunks, preallocated where the size is known. Runs of up to
_RESERVE_STEPS steps hold a 256 KB block from the start and free it just
before lincheck, so their verdict matches CPython's on the default heap.
Longer runs get linearizable null there (lincheck's search outgrows the
heap), never a crash from this module or a false verdict; the digest and
every other figure still match CPython's.
"""
import gc
import struct

from raft.errors import DecodeError
from raftio import wire
from raftkv import codec
from simnode import SimClientPort
from raftkv.codec import OK, NOT_FOUND, CAS_FAILED, SESSION_EXPIRED, STALE_SEQ

_IDLE = 0
_REG = 1     # registering a session
_WRITE = 2   # put / delete / cas in flight
_READ = 3    # get in flight

_TIMEOUT = 30      # steps one try may take before it is retried
_MAX_TRIES = 12    # tries of one op before the client gives up (info)
_START = 300       # per mille chance per step that an idle client starts an op
_RESTART = 3       # per mille chance per idle step that a client restarts
_NKEYS = 5
_RESERVE = 256 * 1024
_RESERVE_STEPS = 4000
try:
    import sys
    _MICROPYTHON = sys.implementation.name == "micropython"
except AttributeError:
    _MICROPYTHON = False

TYPES = ("invoke", "ok", "fail", "info")
_INVOKE = 0
_OK = 1
_FAIL = 2
_INFO = 3
FS = ("get", "put", "delete", "cas")
_GET = 0
_PUT = 1
_DELETE = 2
_CAS = 3

# Per (client, seq) fate, for the exactly-once check.
_S_OPEN = 0
_S_ACKED = 1   # the state machine's result came back: executed exactly once
_S_INFO = 2    # may or may not have executed
_S_FAILED = 3  # must never execute (SESSION_EXPIRED on its only proposal)

# A value is "c<pid>-<n>"; inside the workload it is the int pid << 20 | n,
# -1 for absent.
_NONE = -1


def vstr(code):
    if code < 0:
        return None
    return "c%d-%d" % (code >> 20, code & 0xFFFFF)


def _vint(code):
    return None if code < 0 else code


def _vcode(b):
    if b is None:
        return _NONE
    p, n = bytes(b[1:]).split(b"-")
    return int(p) << 20 | int(n)


_EV = "<BBBBii"    # type, f, process, key, a, b
_EV_LEN = 12
_CHUNK = 85        # events per chunk (1020 bytes: small blocks fit a fragmented heap)


class History:
    """Client events packed 12 bytes each into fixed-size chunks.

    A 20000-step run records ~27000 events: as dicts they would not fit
    MicroPython's default 2 MB heap, and one growing buffer would need ever
    larger contiguous blocks in a heap that does not compact. Fields: a is the
    put value, the cas old value or the value a get read; b the cas new value.
    """

    def __init__(self, keys, capacity=0):
        self.keys = keys
        # Preallocated while the heap is still empty (the workload is built
        # before the nodes): later, MicroPython's fragmented heap can refuse
        # even a 4 KB block with over a megabyte free.
        self.chunks = []
        try:
            for _ in range((capacity + _CHUNK - 1) // _CHUNK):
                self.chunks.append(bytearray(_CHUNK * _EV_LEN))
        except MemoryError:
            pass  # add() tries again as it goes
        self.n = 0
        # Set when a chunk could not be allocated: the history is cut short
        # and cannot be checked (linearizable null), but the run goes on.
        self.truncated = False

    def add(self, typ, f, pid, key, a=_NONE, b=_NONE):
        if self.truncated:
            return
        i = self.n % _CHUNK
        c = self.n // _CHUNK
        if c == len(self.chunks):
            try:
                self.chunks.append(bytearray(_CHUNK * _EV_LEN))
            except MemoryError:
                self.truncated = True
                return
        struct.pack_into(_EV, self.chunks[c], i * _EV_LEN, typ, f, pid, key, a, b)
        self.n += 1

    def __len__(self):
        return self.n

    def raw(self, i):
        return struct.unpack_from(_EV, self.chunks[i // _CHUNK], (i % _CHUNK) * _EV_LEN)

    def event(self, i, vs=vstr):
        """Event i as a lincheck event dict; values through vs (vstr: the
        readable "c3-17"; _vint: small ints that cost no heap on MicroPython)."""
        typ, f, pid, key, a, b = self.raw(i)
        ev = {"process": pid, "type": TYPES[typ], "f": FS[f], "key": self.keys[key]}
        if typ == _INVOKE:
            if f == _PUT:
                ev["value"] = vs(a)
            elif f == _CAS:
                ev["value"] = [vs(a), vs(b)]
        elif typ == _OK and f == _GET:
            ev["value"] = vs(a)
        return ev

    def events(self):
        return [self.event(i) for i in range(self.n)]

    def items(self, key=None, vs=vstr):
        """(line, event) pairs, lines numbered from 1 over the whole history,
        made one at a time (lincheck pairs them in one pass)."""
        for i in range(self.n):
            if key is None or self.raw(i)[3] == key:
                yield (i + 1, self.event(i, vs))

    def dump(self, path):
        """Write the history as JSON lines for tools/history/lincheck.py."""
        import json
        with open(path, "w") as f:
            for i in range(self.n):
                f.write(json.dumps(self.event(i)))
                f.write("\n")


_LREC = "<IB"      # log index where executed (0: never), fate
_LREC_LEN = 5
_LCHUNK = 64       # seqs per ledger chunk


class Ledger:
    """One session's writes, seq 1..n: where each executed and its fate.
    Small fixed chunks rather than lists that double, for the same
    fragmentation reason as History."""

    def __init__(self):
        self.n = 0
        self.chunks = []

    def issue(self):
        """Open the next seq (zeroed); returns it."""
        if self.n % _LCHUNK == 0:
            self.chunks.append(bytearray(_LCHUNK * _LREC_LEN))
        self.n += 1
        return self.n

    def _at(self, seq):
        i = seq - 1
        return self.chunks[i // _LCHUNK], (i % _LCHUNK) * _LREC_LEN

    def get(self, seq):
        """(index, fate) of seq."""
        buf, off = self._at(seq)
        return struct.unpack_from(_LREC, buf, off)

    def set(self, seq, index=-1, fate=-1):
        buf, off = self._at(seq)
        old = struct.unpack_from(_LREC, buf, off)
        struct.pack_into(_LREC, buf, off, old[0] if index < 0 else index,
                         old[1] if fate < 0 else fate)


def _drain(stack):
    while stack:
        yield stack.pop()


def check_history(hist, nkeys):
    """lincheck each key alone (P-compositionality), collecting garbage in
    between so a small heap holds one key's ops at a time. Returns
    (linearizable True/False/None, first failing key, line where its
    shortest failing prefix ends, invoke lines of the ops of that key that
    lincheck could not order (its ops_unorderable), for the timeline)."""
    import lincheck
    if hist.truncated:
        return None, None, None
    verdict = True
    bad_key = None
    bad_line = None
    bad_ops = []
    for k in range(nkeys):
        gc.collect()
        items = None
        try:
            # Made whole first and handed over one by one (popped), so
            # lincheck's long-lived op lists are not interleaved with event
            # dicts, and those are garbage before the search starts: on
            # MicroPython's non-compacting heap that leaves room for it.
            items = list(hist.items(k, _vint))
            items.reverse()
            res = lincheck.check_items(_drain(items))
        except MemoryError:
            res = {"linearizable": None}
        items = None
        lin = res["linearizable"]
        if lin is False:
            line = res.get("prefix_end_line")
            if line is None:
                line = 0
            if bad_key is None or line < bad_line:
                bad_key = hist.keys[k]
                bad_line = line
                bad_ops = [o["invoke"] for o in res.get("ops_unorderable", ())]
            verdict = False
        elif lin is None and verdict is True:
            verdict = None
    return verdict, bad_key, bad_line, bad_ops


class Client:
    def __init__(self, pid, target):
        self.pid = pid
        self.cid = 0        # session id; 0 = must register first
        self.seq = 0        # seq of the last write issued in this session
        self.state = _IDLE
        self.target = target
        self.f = _GET       # current op: f, key index, value codes a, b
        self.key = 0
        self.a = _NONE
        self.b = _NONE
        self.data = None    # encoded command, reused by every retry
        self.tries = 0      # requests sent for this op
        self.redirects = 0  # NOT_LEADER hints followed in a row
        self.deadline = 0
        self.wait = 0       # no new try before this step (back-off)
        # The try in flight: node id (0: none) and its request id (a
        # reply with another one answers an older try, or is a duplicate).
        self.node = 0
        self.rid = 0
        self.counter = 0    # for unique values
        self.known = [_NONE] * _NKEYS  # last value seen per key (cas guesses)


class Workload:
    def __init__(self, sim, nclients, reads, rand, max_sessions=None):
        if nclients > 255:
            raise ValueError("simkv: at most 255 clients")
        self.sim = sim
        self.reads = reads
        self.rand = rand
        # Small enough that orphan sessions (left by restarted clients) push
        # out idle live ones now and then, so SESSION_EXPIRED is exercised.
        self.max_sessions = max_sessions or nclients + 2
        ids = sim.ids
        self.clients = [Client(p, ids[p % len(ids)]) for p in range(nclients)]
        self.keys = ["k%d" % i for i in range(_NKEYS)]
        # About 1.35 events per step with 5 clients; more grow as needed.
        steps = sim.opts.get("steps", 0) if hasattr(sim, "opts") else 0
        self.history = History(self.keys, min(3 * steps // 2, 60000))
        # MicroPython: a contiguous block held while the heap is still empty
        # and released just before lincheck runs, whose lists the heap the
        # simulator fragments could not otherwise fit.
        # Only short runs: past a few thousand steps lincheck's own search
        # outgrows a 2 MB heap anyway, and the simulator needs the room.
        self._reserve = None
        if _MICROPYTHON and steps <= _RESERVE_STEPS:
            try:
                self._reserve = bytearray(_RESERVE)
            except MemoryError:
                pass
        self.next_rid = 0
        # Every client's end of the wire (one is enough: a client is a pid).
        self.port = SimClientPort(sim)
        # cid -> Ledger: per seq, the log index where a state machine
        # executed (cid, seq) (0: never) and what the client was told (_S_*).
        self.sessions = {}
        self.eo_errors = []
        # History lines (invokes) of the ops lincheck could not order.
        self.unorderable = []
        self.c = {"tries": 0, "retries": 0, "redirects": 0, "lost": 0, "gave_up": 0,
                  "registers": 0, "expired": 0, "stale_seq": 0, "busy": 0,
                  "timeouts": 0, "restarts": 0, "stale_replies": 0, "bad_request": 0}

    # -- sim hooks -----------------------------------------------------------
    def step(self):
        now = self.sim.now
        rnd = self.rand
        for c in self.clients:
            if c.state == _IDLE:
                if c.cid != 0 and rnd.chance(_RESTART):
                    # The client process restarts and forgets its session:
                    # the orphan lingers until evicted.
                    c.cid = 0
                    self.c["restarts"] += 1
                if c.cid == 0:
                    self._start_register(c)
                elif rnd.chance(_START):
                    self._start_op(c)
                continue
            if c.node == 0:
                if now >= c.wait:
                    self._try(c)
            elif now >= c.deadline:
                self.c["timeouts"] += 1
                self._retry_later(c, 0, True)

    def on_apply(self, simnode, e):
        """A node applied e: the exactly-once ledger learns what executed."""
        ex = simnode.machine.executed
        if ex is not None:
            self._executed(ex[0], ex[1], e[0])

    def deliver(self, pid, datagram):
        """A datagram for client pid arrived."""
        if not 0 <= pid < len(self.clients):
            return
        c = self.clients[pid]
        got = self.port.open(datagram)
        if got is None:
            return
        rid, code, leader, body = got
        if c.state == _IDLE or c.node == 0 or rid != c.rid:
            self.c["stale_replies"] += 1
            return
        if code == wire.OK:
            try:
                if c.state == _READ:
                    st, val = codec.decode_result(body)
                    v = _vcode(val) if st == OK else _NONE
                    c.known[c.key] = v
                    self._close(c, _OK, v)
                else:
                    self._result(c, body)
            except DecodeError:
                # No state machine result looks like this: the node broke
                # the protocol. Flagged (exactly_once false), never a crash.
                self._eo_error("client %d: node %d answered OK with %r"
                               % (c.pid, c.node, bytes(body)))
                self._retry_later(c, 1, True)
        elif code == wire.NOT_LEADER:
            if leader and leader != c.target and leader in self.sim.nodes and c.redirects < 3:
                self.c["redirects"] += 1
                c.redirects += 1
                c.target = leader
                c.node = 0
                self._try(c)
            else:
                self._retry_later(c, 1 + self.rand.below(3), True)
        elif code == wire.RETRY:
            # Our entry was lost to another leader's (or a read round
            # expired): the same seq again, so it cannot apply twice.
            self.c["lost"] += 1
            self._retry_later(c, 1 + self.rand.below(3), False)
        elif code == wire.BUSY:
            self.c["busy"] += 1
            self._retry_later(c, 2 + self.rand.below(5), False)
        else:
            # BAD_REQUEST: these clients send only well-formed commands.
            self.c["bad_request"] += 1
            self._close(c, _INFO)

    def summarize(self, out, check_linear):
        for c in self.clients:
            if c.state == _WRITE or c.state == _READ:
                self._close(c, _INFO)
        h = self.history
        counts = [0] * 16
        for i in range(len(h)):
            r = h.raw(i)
            if r[0] != _INVOKE:
                counts[r[1] * 4 + r[0]] += 1
        out["clients"] = len(self.clients)
        out["reads"] = self.reads
        out["ops"] = len(h) // 2
        if h.truncated:
            out["history_truncated"] = True
        for f in range(4):
            for t in range(1, 4):
                out["%s_%s" % (FS[f], TYPES[t])] = counts[f * 4 + t]
        for k in sorted(self.c):
            out[k] = self.c[k]
        eo = self.check_exactly_once()
        out["exactly_once"] = eo[0]
        out["acked_writes"] = eo[1]
        out["executed_writes"] = eo[2]
        if self.eo_errors:
            out["exactly_once_errors"] = list(self.eo_errors)
        # Retries answered from the session cache (the most any replica saw).
        dup = 0
        for i in self.sim.ids:
            kv = self.sim.nodes[i].machine.kv
            if kv.duplicates > dup:
                dup = kv.duplicates
        out["dup_served"] = dup
        if check_linear:
            self._reserve = None
            lin, key, line, self.unorderable = check_history(h, len(self.keys))
            out["linearizable"] = lin
            if lin is False:
                out["lincheck_key"] = key
                out["lincheck_line"] = line

    # -- exactly-once bookkeeping ---------------------------------------------
    def _eo_error(self, what):
        if len(self.eo_errors) < 5:
            self.eo_errors.append(what)

    def _executed(self, cid, seq, index):
        rec = self.sessions.get(cid)
        if rec is None or not 1 <= seq <= rec.n:
            self._eo_error("client %d seq %d executed at %d but never issued"
                           % (cid, seq, index))
            return
        at = rec.get(seq)[0]
        if at == 0:
            rec.set(seq, index)
        elif at != index:
            self._eo_error("client %d seq %d executed at %d and at %d" % (cid, seq, at, index))

    def _fate(self, c, fate):
        rec = self.sessions.get(c.cid)
        if rec is not None and 1 <= c.seq <= rec.n:
            rec.set(c.seq, -1, fate)

    def check_exactly_once(self):
        """(ok, acknowledged, executed): ok when no (client, seq) executed at
        two indexes, every acknowledged write executed, and none that failed
        or was still open executed."""
        ok = not self.eo_errors
        acked = executed = 0
        for cid in sorted(self.sessions):
            rec = self.sessions[cid]
            for seq in range(1, rec.n + 1):
                at, f = rec.get(seq)
                if at:
                    executed += 1
                if f == _S_ACKED:
                    acked += 1
                    if not at:
                        ok = False
                        self._eo_error("client %d seq %d acknowledged, never executed"
                                       % (cid, seq))
                elif f != _S_INFO and at:
                    ok = False
                    self._eo_error("client %d seq %d executed but reported %s"
                                   % (cid, seq, "failed" if f == _S_FAILED else "open"))
        return ok, acked, executed

    # -- ops -----------------------------------------------------------------
    def _start_register(self, c):
        c.state = _REG
        c.data = codec.encode_register()
        c.tries = 0
        c.node = 0
        c.wait = self.sim.now
        self._try(c)

    def _start_op(self, c):
        rnd = self.rand
        r = rnd.below(100)
        key = rnd.below(_NKEYS)
        c.key = key
        c.counter += 1
        val = c.pid << 20 | c.counter
        kb = self.keys[key].encode()
        c.a = c.b = _NONE
        if r < 40:
            c.f = _GET
            c.state = _READ
            c.data = codec.encode_get(c.cid, 0, kb)
        else:
            c.seq = self.sessions[c.cid].issue()
            c.state = _WRITE
            if r < 65:
                c.f = _PUT
                c.a = val
                c.data = codec.encode_put(c.cid, c.seq, kb, vstr(val).encode())
            elif r < 85:
                c.f = _CAS
                # Guess the current value from what this client saw last:
                # often right, so both outcomes are common.
                old = c.known[key]
                if rnd.chance(200):
                    old = _NONE
                c.a = old
                c.b = val
                c.data = codec.encode_cas(c.cid, c.seq, kb,
                                          None if old < 0 else vstr(old).encode(),
                                          vstr(val).encode())
            else:
                c.f = _DELETE
                c.data = codec.encode_delete(c.cid, c.seq, kb)
        self.history.add(_INVOKE, c.f, c.pid, key, c.a, c.b)
        c.tries = 0
        c.node = 0
        c.wait = self.sim.now
        self._try(c)

    def _pick_other(self, c):
        others = [i for i in self.sim.ids if i != c.target]
        if others:
            c.target = others[self.rand.below(len(others))]

    def _retry_later(self, c, delay, other):
        """The try in flight is over without a result: try again (same seq)."""
        c.node = 0
        c.redirects = 0
        c.wait = self.sim.now + delay
        if other:
            self._pick_other(c)
        if c.tries >= _MAX_TRIES and c.state != _REG:
            self.c["gave_up"] += 1
            self._close(c, _INFO)

    def _try(self, c):
        """Send one try of the current op to c.target."""
        sim = self.sim
        c.tries += 1
        self.c["tries"] += 1
        if c.tries > 1:
            self.c["retries"] += 1
        if c.state == _READ and self.reads == "local":
            n = sim.nodes[c.target]
            if not n.up:
                self._retry_later(c, 1 + self.rand.below(3), True)
                return
            c.node = n.id
            v = _vcode(n.machine.kv.get_local(self.keys[c.key].encode()))
            c.known[c.key] = v
            self._close(c, _OK, v)
            return
        if c.state == _REG:
            self.c["registers"] += 1
        self.next_rid = (self.next_rid + 1) & 0xFFFFFFFF
        c.rid = self.next_rid
        self.port.send(c.pid, c.target, c.rid, c.data)
        c.node = c.target
        c.deadline = sim.now + _TIMEOUT

    def _result(self, c, result):
        st, val = codec.decode_result(result)
        if c.state == _REG:
            cid = codec.decode_client_id(result)
            c.cid = cid
            c.seq = 0
            c.state = _IDLE
            c.node = 0
            self.sessions[cid] = Ledger()
            return
        if st == SESSION_EXPIRED:
            # An earlier try, or a copy the network made of this one, may
            # have executed before the eviction.
            self.c["expired"] += 1
            self._close(c, _INFO if c.tries > 1 or self.sim.net.dup else _FAIL)
            c.cid = 0
            return
        if st == STALE_SEQ:  # cannot happen with one op in flight: stay honest
            self.c["stale_seq"] += 1
            self._close(c, _INFO)
            return
        f = c.f
        if f == _CAS:
            if st == OK:
                c.known[c.key] = c.b
                self._close(c, _OK)
            else:
                if st == CAS_FAILED:
                    c.known[c.key] = _vcode(val)
                self._close(c, _FAIL, _NONE, _S_ACKED)
        elif st == OK or (f == _DELETE and st == NOT_FOUND):
            c.known[c.key] = c.a  # put: the value; delete: _NONE
            self._close(c, _OK)
        else:
            self._close(c, _FAIL, _NONE, _S_ACKED)

    def _close(self, c, typ, value=_NONE, fate=-1):
        if c.state == _WRITE:
            if fate < 0:
                fate = (_S_ACKED if typ == _OK else _S_INFO if typ == _INFO
                        else _S_FAILED)
            self._fate(c, fate)
        self.history.add(typ, c.f, c.pid, c.key, value)
        c.state = _IDLE
        c.node = 0
        c.redirects = 0
