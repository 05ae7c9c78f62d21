# mpraft: optional
"""A replicated counter: the smallest application machine (docs/apps.md).

Commands after the session header (raftapp.session: op:B cid:I seq:I)::

    ADD  op=2  n:i     add n (signed 32-bit); result OK with the new value
    GET  op=3          a read (ReadIndex, never logged); result OK with the value

The value is a signed 64-bit integer: OK with ``value:q``. An ADD that would
leave that range is refused with OVERFLOW and changes nothing.
Image in the session snapshot: ``value:q``.
"""
import struct

try:
    from raft.errors import DecodeError
    from raftapp.session import SessionMachine, decode_result, encode_result
except ImportError:
    # On a board the firmware is one merged module (tools/board/build.py):
    # this optional module, copied beside it, finds the session layer there.
    from mpraft import DecodeError, SessionMachine, decode_result, encode_result

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# The session layer's (raftapp.session), which a merged firmware folds away.
HEADER = const(9)
OK = const(0)

ADD = const(2)
GET = const(3)
OVERFLOW = const(8)
_MAX = 0x7FFFFFFFFFFFFFFF


class Counter:
    def __init__(self):
        self.value = 0

    def check(self, data):
        op = data[0]
        if op == ADD:
            if len(data) != HEADER + 4:
                raise DecodeError("counter: ADD is %d bytes, wants %d" % (len(data), HEADER + 4))
        elif op != GET or len(data) != HEADER:
            raise DecodeError("counter: unknown op %d or bad length" % op)
        return None

    def apply(self, data):
        if data[0] == GET:
            return self._result()
        v = self.value + struct.unpack_from("<i", data, HEADER)[0]
        if not -_MAX - 1 <= v <= _MAX:
            return encode_result(OVERFLOW)
        self.value = v
        return self._result()

    def _result(self):
        return encode_result(OK, struct.pack("<q", self.value))

    def is_read(self, data):
        self.check(data)
        return data[0] == GET

    def query(self, data):
        if data[0] != GET or len(data) != HEADER:
            raise DecodeError("counter: only GET reads")
        return self._result()

    def snapshot_size(self):
        return 8

    def snapshot_into(self, buf):
        struct.pack_into("<q", buf, 0, self.value)
        return 8

    def restore(self, data):
        if len(data) != 8:
            raise DecodeError("counter: image of %d bytes, wants 8" % len(data))
        self.value = struct.unpack_from("<q", data, 0)[0]


def machine(max_sessions=16):
    """The counter under exactly-once sessions: the engine's state machine."""
    return SessionMachine(Counter(), max_sessions)


# -- client side -------------------------------------------------------------

def _header_into(buf, op, cid, seq):
    """The session header (raftapp.session) of a command; returns HEADER."""
    if not 0 <= cid <= 0xFFFFFFFF or not 0 <= seq <= 0xFFFFFFFF:
        raise ValueError("counter: client id and seq must fit in u32")
    struct.pack_into("<BII", buf, 0, op, cid, seq)
    return HEADER


def encode_add(cid, seq, n):
    if not -0x80000000 <= n <= 0x7FFFFFFF:
        raise ValueError("counter: ADD takes a signed 32-bit n, got %d" % n)
    buf = bytearray(HEADER + 4)
    _header_into(buf, ADD, cid, seq)
    struct.pack_into("<i", buf, HEADER, n)
    return bytes(buf)


def encode_get(cid=0):
    buf = bytearray(HEADER)
    _header_into(buf, GET, cid, 0)
    return bytes(buf)


def decode_value(result):
    """The counter value in an OK result; DecodeError for anything else."""
    st, v = decode_result(result)
    if st != OK or v is None or len(v) != 8:
        raise DecodeError("counter: not a value result (status %d)" % st)
    return struct.unpack_from("<q", v, 0)[0]
