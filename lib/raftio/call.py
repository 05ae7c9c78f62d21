# mpraft: optional
"""In-process calls: code on the node's own board proposing and reading.

A Call is the handle `Node.propose(cmd)` and `Node.read(query)` return. It
completes exactly once, with the state machine's result or an error:

  OK           value() is the machine's result bytes;
  NOT_LEADER   this node does not lead; leader is the one it knows (0: none).
               forward=True sends the call to that leader instead;
  BUSY         back-pressure: nothing happened, retry later;
  RETRY        dropped: the entry was lost in a leader change or applied
               inside a snapshot; it may or may not have taken effect (a
               command with a session sequence number is safe to resend);
  BAD_REQUEST  malformed or too large for the machine: do not retry;
  TIMEOUT      no answer within the call's timeout: the outcome is unknown,
               as for RETRY. Never on the wire.

The engine answers a Call the way it answers a datagram client: it is the
token of the proposal or read (Server._reply sends tuples as datagrams and
completes anything else). Forwarded calls travel as ordinary client
REQUESTs over the node's own authenticated socket; the leader's RESPONSE
completes them. Calls holds the outstanding ones, bounded, and times them
out on the node's clock.
"""
from raft.errors import DecodeError
from raft.roles import LEADER
from raftio import wire

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

TIMEOUT = const(5)
_MAX_CALLS = const(64)   # outstanding in-process calls per node
_RID_BASE = const(0x40000000)   # forwarded request ids: apart from any client's

_MESSAGES = ("ok", "not leader", "dropped: lost in a leader change, may or may not have applied",
             "busy: back-pressure, nothing happened; retry later",
             "bad request: malformed or too large", "timed out: outcome unknown")


class CallError(Exception):
    """A call that did not succeed: code (raftio.wire / call.TIMEOUT), leader."""

    def __init__(self, code, leader=0):
        self.code = code
        self.leader = leader
        if code == wire.NOT_LEADER:
            msg = "not leader (leader is node %d)" % leader if leader else \
                "not leader (no leader known)"
        elif 0 <= code < len(_MESSAGES):
            msg = _MESSAGES[code]
        else:
            msg = "failed with code %d" % code
        super().__init__(msg)


class Call:
    """One in-process request; see the module docstring."""
    __slots__ = ("code", "leader", "result", "deadline", "cmd", "forward", "rid", "on_done")

    def __init__(self, cmd, deadline, forward):
        # -1 until complete; then a wire code or TIMEOUT, never changed again.
        self.code = -1
        self.leader = 0
        self.result = None
        self.deadline = deadline
        self.cmd = cmd
        self.forward = forward
        self.rid = 0
        # Called once with the call when it completes (asyncio wakes a task).
        self.on_done = None

    def done(self):
        return self.code >= 0

    def ok(self):
        return self.code == wire.OK

    def complete(self, code, leader, result):
        if self.code >= 0:
            return   # timed out earlier, or answered twice: the first answer stands
        self.code = code
        self.leader = leader
        self.result = result
        self.cmd = None
        cb = self.on_done
        if cb is not None:
            self.on_done = None
            cb(self)

    def error(self):
        """None while pending or on success, else the CallError."""
        if self.code <= 0:
            return None
        return CallError(self.code, self.leader)

    def value(self):
        """The result bytes; raises CallError on failure, ValueError if pending."""
        if self.code < 0:
            raise ValueError("call: still pending")
        if self.code != wire.OK:
            raise CallError(self.code, self.leader)
        return self.result

    def __await__(self):
        """`await call` (raftio/aio.py): park the task until the call
        completes, then its value(). The node must be served by aio.serve."""
        if self.code < 0:
            try:
                import asyncio
            except ImportError:
                import uasyncio as asyncio
            ev = asyncio.Event()
            self.on_done = lambda c: ev.set()
            w = ev.wait()
            # CPython's coroutines await through __await__; MicroPython's are generators.
            yield from (w.__await__() if hasattr(w, "__await__") else w)
        return self.value()

    # MicroPython's await takes an iterator.
    __iter__ = __await__

    def __repr__(self):
        if self.code < 0:
            return "<Call pending>"
        if self.code == wire.OK:
            return "<Call ok %r>" % (self.result,)
        return "<Call %s>" % (CallError(self.code, self.leader),)


class Calls:
    """A node's outstanding in-process calls: submission, forwarding to the
    leader, and timeouts. Invariant: len(pending) <= _MAX_CALLS."""

    def __init__(self, engine, transport, default_timeout_ms):
        self.engine = engine
        self.transport = transport
        self.clock = engine.clock
        self.default_timeout_ms = default_timeout_ms
        self.pending = []
        # rid -> Call: forwarded calls waiting for the leader's RESPONSE.
        self._fwd = {}
        self._rid = 0
        self._fwd_call = None
        self.stats = {"calls": 0, "forwarded": 0, "timeouts": 0}

    def submit(self, cmd, read, timeout_ms, forward):
        if timeout_ms is None:
            timeout_ms = self.default_timeout_ms
        if timeout_ms <= 0:
            raise ValueError("call: timeout_ms must be > 0, got %r" % (timeout_ms,))
        clk = self.clock
        c = Call(cmd, clk.ticks_add(clk.ticks_ms(), timeout_ms), forward)
        self.stats["calls"] += 1
        if len(self.pending) >= _MAX_CALLS:
            c.complete(wire.BUSY, 0, None)
            return c
        self.pending.append(c)
        self._start(c, read)
        return c

    def _start(self, c, read):
        eng = self.engine
        r = eng.core
        if c.forward and r.role != LEADER and r.lead:
            self._forward(c, r.lead)
            return
        try:
            if read is None:
                read = eng.machine.is_read(c.cmd)
        except DecodeError:
            c.complete(wire.BAD_REQUEST, 0, None)
            return
        if read:
            eng.read(c.cmd, c)
        else:
            eng.propose(c.cmd, c)

    def _forward(self, c, lead):
        self._rid = (self._rid + 1) & 0x3FFFFFFF
        c.rid = rid = _RID_BASE | self._rid
        c.leader = lead
        self._fwd[rid] = c
        self._fwd_call = c
        self.stats["forwarded"] += 1
        if not self.transport.send(lead, self._write_request):
            del self._fwd[rid]
            c.complete(wire.NOT_LEADER, lead, None)
        self._fwd_call = None

    def _write_request(self, tx, off):
        c = self._fwd_call
        return wire.encode_request_into(tx, off, c.rid, c.cmd)

    def on_response(self, buf, off, n):
        """A RESPONSE datagram: completes the forwarded call it answers, if
        any (a late or unknown one is ignored: the call already timed out).
        False only for bytes that are no reply (the server counts a drop)."""
        try:
            t, rid, code, leader, body = wire.decode_reply(buf, off, n)
        except DecodeError:
            return False
        c = self._fwd.pop(rid, None)
        if c is None or t != wire.RESPONSE:
            return True   # late (the call timed out) or not ours: nothing to do
        if code == wire.NOT_LEADER and leader and leader != c.leader and leader != self.engine.id:
            # The leader moved on: follow its hint once, within the deadline.
            self._forward(c, leader)
            return True
        c.complete(code, leader, body)
        return True

    def expire(self):
        """Complete timed-out calls with TIMEOUT and forget finished ones."""
        p = self.pending
        if not p:
            return
        clk = self.clock
        now = clk.ticks_ms()
        keep = []
        for c in p:
            if c.code < 0 and clk.ticks_diff(now, c.deadline) >= 0:
                self.stats["timeouts"] += 1
                if c.rid:
                    self._fwd.pop(c.rid, None)
                c.complete(TIMEOUT, c.leader, None)
            if c.code < 0:
                keep.append(c)
        self.pending = keep

