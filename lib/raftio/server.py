"""The datagram server: turns what arrives on a transport into engine calls.

One Server per node, around an Engine (raftio/engine.py) and a datagram
transport: the UDP socket on a board (raftio/udp.py), the simulated network
in the simulator. Every datagram is authenticated by the transport; then
by its type byte it is
  - a Raft message from a listed peer: decoded and stepped;
  - a client request (raftio/wire.py): a read (machine.is_read) goes to the
    engine's next ReadIndex round, anything else is proposed; the answer
    leaves when the engine calls back (reply below);
  - an admin request: leadership transfer or membership change (raftio/admin.py,
    imported on first use);
  - a status query: answered at once with the engine's status as JSON.
Answers go back as datagrams to (address, request id) tokens (raftio/app.py
adds in-process calls and the responses to calls it forwarded).
Anything that does not decode is a counted drop, never an exception.

Each turn of run_once:
  1. tick the core if a tick is due (engine.tick), which says how long we
     may wait: until the next tick, or not at all while work is pending;
  2. wait on the transport that long for a datagram, then drain every
     waiting one (bounded): all proposals of one turn share one Ready, one
     storage append and one append message per peer;
  3. drive the Ready contract (engine.drive).
"""
import json

from raft import msg as M
from raft.errors import DecodeError
from raftio import wire
from raftio.frame import DROP_MALFORMED, DROP_STALE_TERM, DROP_UNKNOWN_PEER, MAX_PAYLOAD

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_MAX_DRAIN = const(512)   # datagrams handled per turn before the core gets a turn


class Server:
    """Serves one engine over one transport; see the module docstring.

    status: a function returning the status dict to answer queries with
    (default engine.status; the board adds heap figures).
    """

    def __init__(self, engine, transport, status=None):  # mpraft: boot
        self.engine = engine
        self.transport = transport
        self.machine = engine.machine
        self.counters = transport.counters
        self.status = status if status is not None else engine.status
        engine.reply = self._reply
        self._rx_msg = M.Message()
        self._resp = bytearray(MAX_PAYLOAD)

    def run_once(self):
        eng = self.engine
        if self.transport.poll(eng.tick()):
            self.drain()
        eng.drive()

    def drain(self):
        """Handle every waiting datagram (bounded); the caller then drives."""
        t = self.transport
        k = 0
        while k < _MAX_DRAIN:
            got = t.recv()
            if got is None:
                break
            self.on_datagram(got[0], got[1], got[2], got[3])
            k += 1

    # -- input ----------------------------------------------------------------
    def on_datagram(self, buf, off, n, addr):
        typ = wire.peek_type(buf, off, n)
        if typ == wire.ADMIN:
            self._on_admin(buf, off, n, addr)
            return
        if wire.is_client_type(typ):
            self._on_client(buf, off, n, addr)
            return
        frm = self.transport.last_peer
        if frm == 0:
            # Raft messages only from a listed peer address.
            self.counters.slots[DROP_UNKNOWN_PEER] += 1
            return
        m = self._rx_msg
        try:
            M.decode_into(m, buf, n, off)
        except DecodeError:
            self.counters.slots[DROP_MALFORMED] += 1
            return
        eng = self.engine
        if m.frm != frm or m.to != eng.id:
            self.counters.slots[DROP_MALFORMED] += 1
            return
        if m.term < eng.core.term and m.term != 0:
            # The core still answers it (so a stale leader steps down) but
            # otherwise ignores it; counted so status shows the churn.
            self.counters.slots[DROP_STALE_TERM] += 1
        eng.step(m)

    def _on_client(self, buf, off, n, addr):
        try:
            typ, rid, p, cn = wire.decode_request(buf, off, n)
        except DecodeError:
            self.counters.slots[DROP_MALFORMED] += 1
            return
        if typ == wire.STATUS_Q:
            text = json.dumps(self.status()).encode()
            if len(text) > MAX_PAYLOAD - wire.REQ_HDR:
                text = b"{}"
            ln = wire.encode_status_into(self._resp, 0, rid, text)
            self.transport.send_payload_to(addr, self._resp, ln)
            return
        cmd = bytes(buf[p:p + cn])
        eng = self.engine
        try:
            read = self.machine.is_read(cmd)
        except DecodeError:
            eng.stats["bad_request"] += 1
            self._reply((addr, rid), wire.BAD_REQUEST, 0, b"")
            return
        if read:
            eng.read(cmd, (addr, rid))
        else:
            eng.propose(cmd, (addr, rid))

    def _on_admin(self, buf, off, n, addr):
        from raftio.admin import on_admin
        on_admin(self, buf, off, n, addr)

    def _reply(self, token, code, leader, result):
        ln = wire.encode_response_into(self._resp, 0, token[1], code, leader, result)
        self.transport.send_payload_to(token[0], self._resp, ln)
