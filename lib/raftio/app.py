# mpraft: optional
"""A node for code on the same board: the in-process API (docs/apps.md).
An optional module (build --with-optional): the dedicated firmware leaves it out.

    node = AppNode(node_cfg, board, storage, machine=counter.machine())   # raftapp.counter, under sessions
    c = node.propose(cmd)          # a Call (raftio/call.py)
    node.wait(c)                   # blocking use: serve until it completes
    await node.submit(cmd)         # asyncio use, with raftio/aio.serve(node)

Every call has a timeout (2 s unless given). A follower answers NOT_LEADER
with the leader's id; forward=True sends the call to that leader over the
client protocol instead, from this node's own authenticated socket.
"""
from raft.errors import DecodeError
from raftio.call import Call, Calls
from raftio.frame import DROP_MALFORMED
from raftio.wire import RESPONSE
from raftio.node import Node

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_CALL_TIMEOUT_MS = const(2000)

# raftapp.session's REGISTER command: opens a session whose id is its index.
REGISTER = b"\x01"


class AppNode(Node):
    """A Node (raftio/node.py) whose own code proposes and reads."""

    def __init__(self, node_cfg, board, storage, seed=None, max_keys=None, snapshot_keep=None,
                 machine=None, call_timeout_ms=_CALL_TIMEOUT_MS):
        Node.__init__(self, node_cfg, board, storage, seed, max_keys, snapshot_keep, machine)
        self.calls = calls = Calls(self.engine, self.transport, call_timeout_ms)
        server = self.server
        # The engine answers a Call in place, a datagram client as before.
        to_client = self.engine.reply

        def reply(token, code, leader, result):
            if token.__class__ is Call:
                token.complete(code, leader, result)
            else:
                to_client(token, code, leader, result)
        self.engine.reply = reply
        # Answers to calls forwarded to the leader arrive as RESPONSE
        # datagrams, which a plain node's server drops as malformed.
        on_client = server._on_client

        def on_client_or_response(buf, off, n, addr):
            if buf[off] == RESPONSE:
                if not calls.on_response(buf, off, n):
                    server.counters.slots[DROP_MALFORMED] += 1
                return
            on_client(buf, off, n, addr)
        server._on_client = on_client_or_response

    def run_once(self):
        self.server.run_once()
        self.calls.expire()

    def propose(self, cmd, timeout_ms=None, forward=False):
        """Replicate cmd through the log; a Call completing with the machine's
        result (reads go through ReadIndex, as from a client)."""
        c = self.calls.submit(cmd, None, timeout_ms, forward)
        self.engine.drive()
        return c

    def read(self, query, timeout_ms=None, forward=False):
        """A linearizable read of the machine (ReadIndex; lease reads when
        the config says so): a Call completing with machine.query(query)."""
        c = self.calls.submit(query, True, timeout_ms, forward)
        self.engine.drive()
        return c

    def submit(self, cmd, timeout_ms=None, forward=False):
        """propose() under asyncio: `result = await node.submit(cmd)` while
        raftio/aio.serve(node) runs as a task (a Call is awaitable)."""
        return self.propose(cmd, timeout_ms, forward)

    def wait(self, call):
        """Serve until call completes (bounded by its timeout); its value()."""
        while not call.done():
            self.run_once()
        return call.value()


class Session:
    """This board's own client session (raftapp.session, exactly-once): a
    client id and the next sequence number. Open one with the result of
    proposing REGISTER:

        s = Session(await node.submit(REGISTER, forward=True))
        cmd = counter.encode_add(s.cid, s.next(), 1)

    Resend a command that ended in RETRY or TIMEOUT with the same sequence
    number (aio.submit(retries=...) does): the machine applies it once."""

    def __init__(self, result):
        # OK|0x80, u16 length 4, u32 client id (raftapp.session).
        if len(result) != 7 or result[0] != 0x80 or result[1] != 4 or result[2]:
            raise DecodeError("session: %r is no REGISTER result" % (result,))
        self.cid = int.from_bytes(result[3:7], "little")
        self.seq = 0

    def next(self):
        self.seq += 1
        return self.seq

