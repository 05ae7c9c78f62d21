# mpraft: optional
"""A lock service with leases and fencing tokens (docs/apps.md).

Time is the log's: ``now`` is a count of ticks that only ADVANCE entries
move, so every replica decides expiry at the same log index and no replica
reads a clock. The leader's driver proposes ADVANCE(n) every n ticks (cid 0,
no session); while there is no leader time stands still, so a lease can
outlive real time but never expires early on one replica and late on
another. A holder is a session (its client id). Every grant gets the next
fencing token, from one counter for all locks, kept in the snapshot: a
resource that remembers the highest token it has seen refuses a paused
holder whose lease already went to someone else (or asks CHECK through the
log).

Commands after the session header (raftapp.session: op:B cid:I seq:I)::

    ACQUIRE  op=2  lease:I nlen:B name           OK token:I expiry:I, or
                                                 HELD token:I expiry:I (the holder's)
    RENEW    op=3  token:I lease:I nlen:B name   OK token:I expiry:I, or NOT_HOLDER
    RELEASE  op=4  token:I nlen:B name           OK, or NOT_HOLDER
    CHECK    op=5  token:I nlen:B name           OK token:I expiry:I while that grant
                                                 is live, else NOT_HOLDER
    QUERY    op=6  nlen:B name                   a read: OK holder:I token:I expiry:I
                                                 now:I (holder 0: free)
    ADVANCE  op=7  ticks:H                       OK now:I

A grant is live while now < expiry. ACQUIRE by the live holder extends its
lease (same token). RENEW, RELEASE and CHECK need the holder's session and
the grant's token, and a live lease: an expired lease is not renewed, even if
nobody took the lock. A lease of 0 or a zero ADVANCE is malformed; a lease
over MAX_LEASE or a name over max_name is TOO_LARGE; a new lock when
max_locks live ones exist is FULL (expired ones are dropped first).

Image in the session snapshot::

    now:I fence:I nlocks:I
    nlocks x nlen:B holder:I token:I expiry:I name     (ascending name)
"""
import struct

try:
    from raft.errors import ConfigError, DecodeError
    from raftapp.session import SessionMachine, decode_result, encode_result
except ImportError:
    # On a board the firmware is one merged module (tools/board/build.py):
    # this optional module, copied beside it, finds the session layer there.
    from mpraft import ConfigError, DecodeError, SessionMachine, decode_result, encode_result

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# The session layer's (raftapp.session), which a merged firmware folds away.
HEADER = const(9)
OK = const(0)

ACQUIRE = const(2)
RENEW = const(3)
RELEASE = const(4)
CHECK = const(5)
QUERY = const(6)
ADVANCE = const(7)

FULL = const(7)
HELD = const(8)
NOT_HOLDER = const(9)

MAX_LEASE = const(0x1000000)
_MAX_NOW = 0xFFFFFFFF - 0x1000000  # now + any lease stays a u32

# Lock record fields (a list, mutated in place).
_HOLDER = const(0)
_TOKEN = const(1)
_EXP = const(2)

_REC = "<BIII"
_REC_LEN = const(13)

_R_OK = b"\x00"
_R_TOO_LARGE = b"\x05"
_R_FULL = b"\x07"
_R_NOT_HOLDER = b"\x09"
_R_NO_SESSION = b"\x03"


def _decode(data):
    """(op, token, lease, name) of a lock command; raises DecodeError."""
    n = len(data)
    op = data[0]
    if op == ADVANCE:
        if n != HEADER + 2:
            raise DecodeError("lock: ADVANCE is %d bytes" % n)
        t = struct.unpack_from("<H", data, HEADER)[0]
        if not t:
            raise DecodeError("lock: ADVANCE of 0 ticks")
        return (op, 0, t, None)
    token = lease = 0
    p = HEADER
    if op == ACQUIRE:
        fields = "<I"
    elif op == RENEW:
        fields = "<II"
    elif op == RELEASE or op == CHECK:
        fields = "<I"
    elif op == QUERY:
        fields = None
    else:
        raise DecodeError("lock: unknown op %d" % op)
    if fields is not None:
        w = struct.calcsize(fields)
        if n < p + w:
            raise DecodeError("lock: command truncated")
        v = struct.unpack_from(fields, data, p)
        p += w
        if op == ACQUIRE:
            lease = v[0]
        elif op == RENEW:
            token, lease = v
        else:
            token = v[0]
    if n < p + 1 or n != p + 1 + data[p]:
        raise DecodeError("lock: command length %d disagrees with its name" % n)
    if (op == ACQUIRE or op == RENEW) and not lease:
        raise DecodeError("lock: lease of 0 ticks")
    return (op, token, lease, bytes(data[p + 1:n]))


class LockTable:
    """The application machine of the lock service."""

    def __init__(self, max_locks=16, max_name=32):
        if max_locks < 1 or not 0 < max_name <= 255:
            raise ConfigError("lock: max_locks must be >= 1 and max_name 1..255")
        self.max_locks = max_locks
        self.max_name = max_name
        self.now = 0      # log time in ticks. Invariant: moves only by ADVANCE
        self.fence = 0    # the last token granted. Invariant: never decreases
        self.locks = {}   # name -> [holder, token, expiry]; len <= max_locks
        self._cmd = None
        self._dec = None

    def check(self, data):
        dec = _decode(data)
        self._cmd = data
        self._dec = dec
        op = dec[0]
        if op != ADVANCE and op != QUERY and not struct.unpack_from("<I", data, 1)[0]:
            return _R_NO_SESSION  # a holder is a session
        if dec[2] > MAX_LEASE or (dec[3] is not None and len(dec[3]) > self.max_name):
            return _R_TOO_LARGE
        return None

    def _free(self, rec):
        return rec[_EXP] <= self.now

    def _grant(self, rec):
        return encode_result(OK, struct.pack("<II", rec[_TOKEN], rec[_EXP]))

    def apply(self, data):
        dec = self._dec if self._cmd is data else _decode(data)
        self._cmd = self._dec = None
        op, token, lease, name = dec
        now = self.now
        if op == ADVANCE:
            if now + lease > _MAX_NOW:
                return _R_TOO_LARGE
            self.now = now + lease
            return encode_result(OK, struct.pack("<I", self.now))
        if op == QUERY:
            return self._query(name)
        cid = struct.unpack_from("<I", data, 1)[0]
        locks = self.locks
        rec = locks.get(name)
        if op == ACQUIRE:
            if rec is not None and not self._free(rec):
                if rec[_HOLDER] != cid:
                    return encode_result(HELD, struct.pack("<II", rec[_TOKEN], rec[_EXP]))
                rec[_EXP] = now + lease
                return self._grant(rec)
            if rec is None and len(locks) >= self.max_locks:
                for k in sorted(locks):
                    if self._free(locks[k]):
                        del locks[k]
                if len(locks) >= self.max_locks:
                    return _R_FULL
            self.fence += 1
            rec = [cid, self.fence, now + lease]
            locks[name] = rec
            return self._grant(rec)
        if (rec is None or rec[_HOLDER] != cid or rec[_TOKEN] != token
                or self._free(rec)):
            return _R_NOT_HOLDER
        if op == RENEW:
            rec[_EXP] = now + lease
        elif op == RELEASE:
            del locks[name]
            return _R_OK
        return self._grant(rec)

    def _query(self, name):
        rec = self.locks.get(name)
        if rec is None or self._free(rec):
            v = struct.pack("<IIII", 0, 0, 0, self.now)
        else:
            v = struct.pack("<IIII", rec[_HOLDER], rec[_TOKEN], rec[_EXP], self.now)
        return encode_result(OK, v)

    def is_read(self, data):
        return _decode(data)[0] == QUERY

    def query(self, data):
        op, _, _, name = _decode(data)
        if op != QUERY:
            raise DecodeError("lock: only QUERY reads")
        return self._query(name)

    def snapshot_size(self):
        n = 12
        for k in self.locks:
            n += _REC_LEN + len(k)
        return n

    def snapshot_into(self, buf):
        locks = self.locks
        struct.pack_into("<III", buf, 0, self.now, self.fence, len(locks))
        p = 12
        for k in sorted(locks):
            r = locks[k]
            struct.pack_into(_REC, buf, p, len(k), r[_HOLDER], r[_TOKEN], r[_EXP])
            p += _REC_LEN
            buf[p:p + len(k)] = k
            p += len(k)
        return p

    def restore(self, data):
        end = len(data)
        if end < 12:
            raise DecodeError("lock: snapshot image truncated")
        now, fence, n = struct.unpack_from("<III", data, 0)
        if n > self.max_locks or now > _MAX_NOW:
            raise DecodeError("lock: snapshot has %d locks at time %d" % (n, now))
        p = 12
        locks = {}
        prev = None
        for _ in range(n):
            if p + _REC_LEN > end:
                raise DecodeError("lock: snapshot truncated in a lock record")
            nl, holder, token, exp = struct.unpack_from(_REC, data, p)
            p += _REC_LEN
            if (nl > self.max_name or p + nl > end or not holder or not 0 < token <= fence
                    or exp > now + MAX_LEASE):
                raise DecodeError("lock: snapshot lock record is inconsistent")
            k = bytes(data[p:p + nl])
            p += nl
            if prev is not None and k <= prev:
                raise DecodeError("lock: snapshot names not strictly ascending")
            locks[k] = [holder, token, exp]
            prev = k
        if p != end:
            raise DecodeError("lock: snapshot has %d trailing bytes" % (end - p))
        self.now = now
        self.fence = fence
        self.locks = locks


def machine(max_sessions=16, max_locks=16, max_name=32):
    """The lock table under exactly-once sessions: the engine's state machine."""
    return SessionMachine(LockTable(max_locks, max_name), max_sessions)


# -- client side -------------------------------------------------------------

def _header_into(buf, op, cid, seq):
    """The session header (raftapp.session) of a command; returns HEADER."""
    if not 0 <= cid <= 0xFFFFFFFF or not 0 <= seq <= 0xFFFFFFFF:
        raise ValueError("lock: client id and seq must fit in u32")
    struct.pack_into("<BII", buf, 0, op, cid, seq)
    return HEADER


def _encode(op, cid, seq, fields, vals, name):
    w = struct.calcsize(fields) if fields else 0
    buf = bytearray(HEADER + w + (0 if name is None else 1 + len(name)))
    _header_into(buf, op, cid, seq)
    if fields:
        struct.pack_into(fields, buf, HEADER, *vals)
    if name is not None:
        if len(name) > 255:
            raise ValueError("lock: a name is at most 255 bytes")
        buf[HEADER + w] = len(name)
        buf[HEADER + w + 1:] = name
    return bytes(buf)


def encode_acquire(cid, seq, name, lease):
    return _encode(ACQUIRE, cid, seq, "<I", (lease,), name)


def encode_renew(cid, seq, name, token, lease):
    return _encode(RENEW, cid, seq, "<II", (token, lease), name)


def encode_release(cid, seq, name, token):
    return _encode(RELEASE, cid, seq, "<I", (token,), name)


def encode_check(cid, seq, name, token):
    return _encode(CHECK, cid, seq, "<I", (token,), name)


def encode_query(name):
    return _encode(QUERY, 0, 0, None, (), name)


def encode_advance(ticks):
    return _encode(ADVANCE, 0, 0, "<H", (ticks,), None)


def decode_grant(result):
    """(status, token, expiry) of an ACQUIRE/RENEW/CHECK result (0, 0 without a grant)."""
    st, v = decode_result(result)
    if v is not None and len(v) == 8:
        t, e = struct.unpack("<II", v)
        return (st, t, e)
    return (st, 0, 0)


def decode_query(result):
    """(holder, token, expiry, now) of a QUERY result; DecodeError otherwise."""
    st, v = decode_result(result)
    if st != OK or v is None or len(v) != 16:
        raise DecodeError("lock: not a QUERY result (status %d)" % st)
    return struct.unpack("<IIII", v)
