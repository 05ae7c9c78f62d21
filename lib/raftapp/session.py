"""Exactly-once client sessions for any replicated state machine.

``SessionMachine(app, max_sessions)`` is the engine's state machine
(docs/engine.md) around an application machine (docs/apps.md): the session
table, result cache, snapshot framing and apply order live here once, and the
application only executes commands. Raft dissertation 6.3.

Commands (little-endian)::

    REGISTER  op=1:B                     opens a session; its id is the entry's index
    any other op:B cid:I seq:I payload   op 2..255 belong to the application

op 0 is never valid, so a zeroed buffer is malformed. cid 0 means "no
session": the command executes every time it is applied and nothing is
cached (for in-process proposers that never retry, such as a leader's clock).

Order of checks in ``apply`` (a rejection changes nothing but
``applied_index`` and counters):

1. index <= applied_index: a replay after a restore: counted, returns None.
2. bytes that are no command (``app.check`` raises DecodeError): MALFORMED.
3. REGISTER: open a session; when ``max_sessions`` are open, evict the least
   recently active one (ties: lowest id), which depends only on the log.
4. ``app.check`` returned an error result (TOO_LARGE, ...): that result, not
   cached, so the client may reuse the seq.
5. cid 0: ``app.apply``, uncached.
6. no session for cid: SESSION_EXPIRED.
7. seq == last seq: the cached result, not applied again; seq < last: STALE_SEQ.
8. otherwise ``app.apply``; the result is cached as the session's last.

A client keeps at most one command in flight per session: only the latest
result is remembered.

Results: ``status:B`` or ``status|0x80:B vlen:H value``. Statuses 0..127;
this layer answers OK, SESSION_EXPIRED, STALE_SEQ, MALFORMED (and carries
the application's TOO_LARGE); applications use the others (docs/apps.md).

Snapshot (deterministic byte for byte)::

    "RSM\\x02" applied:I nsessions:I max_sessions:I nlim:B nlim x lim:I
    nsessions x cid:I last_seq:I activity:I rlen:H result   (ascending cid;
                                                  rlen 0 = no result yet)
    the application's image (app.snapshot_into)
    crc32:I over everything before it

The limits (max_sessions, then the application's ``limits()``, e.g. the KV
store's max_key, max_value, max_keys) shape the replicated state: FULL and
eviction depend on them, so the whole cluster applies with one set, agreed
in the cluster file (README, "Cluster limits"). The snapshot carries them:
``restore`` adopts the snapshot's limits, and refuses (OverLimit, the old
state kept) content beyond this node's capacity (``cap_sessions``, the
app's ``cap_keys``: a board forced into a cluster whose limits its memory
cannot hold). A "RSM\\x01" snapshot (before limits) restores under ours.
"""
import binascii
import hashlib
import struct

from raft.errors import ConfigError, DecodeError, OverLimit

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

REGISTER = const(1)
HEADER = const(9)  # op:B cid:I seq:I before every payload

OK = const(0)
SESSION_EXPIRED = const(3)
STALE_SEQ = const(4)
TOO_LARGE = const(5)
MALFORMED = const(6)
_HAS_VALUE = const(0x80)

_MAGIC = b"RSM\x02"
_MAGIC_V1 = b"RSM\x01"  # before limits: restores under this node's limits
_SNAP_HDR = "<4sIIIB"
_SNAP_HDR_LEN = const(17)
_SES_REC = "<IIIH"
_SES_REC_LEN = const(14)

# Session record fields (a list, mutated in place).
_SEQ = const(0)  # last applied seq; 0 = none yet. Invariant: 0 iff _RES is None
_ACT = const(1)  # log index of the last command seen from this client
_RES = const(2)  # result of the command at _SEQ

# Constant results: bytes literals cost no heap at run time.
_R_SESSION_EXPIRED = b"\x03"
_R_STALE_SEQ = b"\x04"
_R_MALFORMED = b"\x06"


def encode_result_into(buf, status, value=None, off=0):
    if value is None:
        buf[off] = status
        return 1
    n = len(value)
    if n > 0xFFFF:
        raise ValueError("raftapp: result value exceeds 65535 bytes")
    struct.pack_into("<BH", buf, off, status | _HAS_VALUE, n)
    buf[off + 3:off + 3 + n] = value
    return 3 + n


def encode_result(status, value=None):
    buf = bytearray(1 if value is None else 3 + len(value))
    encode_result_into(buf, status, value)
    return bytes(buf)


def decode_result(buf, off=0, n=None):
    """(status, value or None) of a result occupying exactly buf[off:off+n]."""
    total = len(buf)
    if n is None:
        n = total - off
    if off < 0 or n < 1 or off + n > total:
        raise DecodeError("raftapp: result region empty or out of range")
    b = buf[off]
    if not b & _HAS_VALUE:
        if n != 1:
            raise DecodeError("raftapp: result has %d trailing bytes" % (n - 1))
        return (b, None)
    if n < 3:
        raise DecodeError("raftapp: result truncated")
    vlen = struct.unpack_from("<H", buf, off + 1)[0]
    if 3 + vlen != n:
        raise DecodeError("raftapp: result length %d, fields say %d" % (n, 3 + vlen))
    return (b & ~_HAS_VALUE, bytes(buf[off + 3:off + n]))


class SessionMachine:
    def __init__(self, app, max_sessions=64):  # mpraft: boot
        if max_sessions < 1:
            raise ConfigError("raftapp: max_sessions must be >= 1")
        self.app = app
        # Replicated (cluster-wide); a restored snapshot's replace them.
        self.max_sessions = max_sessions
        # This node's capacity (<= max_sessions): a board forced into a
        # cluster whose limits it cannot hold stops short of it (OverLimit).
        self.cap_sessions = max_sessions
        # cid -> [last_seq, activity, result]. Invariant: len <= max_sessions.
        self._sessions = {}
        # Invariant: every entry with index <= applied_index is reflected.
        self.applied_index = 0
        # Counters (not replicated state, not in the snapshot).
        self.malformed = 0
        self.refused = 0
        self.stale_applies = 0
        self.duplicates = 0
        self.evictions = 0

    # -- apply -------------------------------------------------------------
    def apply(self, index, data):
        """Apply the committed entry at ``index``; return the result bytes."""
        if index <= self.applied_index:
            self.stale_applies += 1
            return None
        # OverLimit (from here or app.check) leaves everything unchanged,
        # applied_index included: the entry is applied again on a retry.
        n = len(data)
        if n == 1 and data[0] == REGISTER:
            ns = len(self._sessions)
            if self.cap_sessions <= ns < self.max_sessions:
                raise OverLimit("log", ns + 1, "sessions", self.cap_sessions)
            self.applied_index = index
            return self._register(index)
        app = self.app
        try:
            if n < HEADER or data[0] <= REGISTER:
                raise DecodeError("raftapp: not a command")
            err = app.check(data)
        except DecodeError:
            self.applied_index = index
            self.malformed += 1
            return _R_MALFORMED
        self.applied_index = index
        if err is not None:
            self.refused += 1
            return err
        cid, seq = struct.unpack_from("<II", data, 1)
        if not cid:
            return app.apply(data)
        s = self._sessions.get(cid)
        if s is None:
            return _R_SESSION_EXPIRED
        s[_ACT] = index
        last = s[_SEQ]
        if seq == last and last:
            self.duplicates += 1
            return s[_RES]
        if seq <= last:
            return _R_STALE_SEQ
        res = app.apply(data)
        s[_SEQ] = seq
        s[_RES] = res
        return res

    def skip(self, index):
        """An entry that is no command (leader no-op, membership change) applied."""
        if index > self.applied_index:
            self.applied_index = index

    def _register(self, index):
        sessions = self._sessions
        if len(sessions) >= self.max_sessions:
            # Least recently active, ties by lowest id: depends only on the log.
            victim = None
            vact = 0
            for cid in sessions:
                act = sessions[cid][_ACT]
                if victim is None or act < vact or (act == vact and cid < victim):
                    victim = cid
                    vact = act
            del sessions[victim]
            self.evictions += 1
        sessions[index] = [0, index, None]
        return encode_result(OK, struct.pack("<I", index))

    # -- reads -------------------------------------------------------------
    def is_read(self, data):
        """True if the command only reads (ReadIndex, never logged); raises
        DecodeError for bytes that are no command."""
        if len(data) == 1 and data[0] == REGISTER:
            return False
        if len(data) < HEADER or data[0] <= REGISTER:
            raise DecodeError("raftapp: not a command")
        return self.app.is_read(data)

    def query(self, data):
        """The result of a read command; linearizable once the read index is applied."""
        if len(data) < HEADER:
            raise DecodeError("raftapp: not a command")
        return self.app.query(data)

    def session_count(self):  # mpraft: host-only
        return len(self._sessions)

    def stats(self):
        return {"applied": self.applied_index, "sessions": len(self._sessions),
                "malformed": self.malformed, "refused": self.refused,
                "stale_applies": self.stale_applies, "duplicates": self.duplicates,
                "evictions": self.evictions}

    # -- snapshot ----------------------------------------------------------
    def _app_limits(self):
        f = getattr(self.app, "limits", None)
        return f() if f else ()

    def limits(self):
        """The replicated limits: (max_sessions,) + the application's."""
        return (self.max_sessions,) + self._app_limits()

    def snapshot_size(self):
        n = _SNAP_HDR_LEN + 4 * len(self._app_limits()) + 4 + self.app.snapshot_size()
        sessions = self._sessions
        for cid in sessions:
            r = sessions[cid][_RES]
            n += _SES_REC_LEN + (0 if r is None else len(r))
        return n

    def snapshot_into(self, buf):
        """Write the snapshot into buf (at least snapshot_size() bytes); return its length."""
        need = self.snapshot_size()
        if len(buf) < need:
            raise ValueError("raftapp: snapshot needs %d bytes, buffer has %d"
                             % (need, len(buf)))
        sessions = self._sessions
        lims = self._app_limits()
        struct.pack_into(_SNAP_HDR, buf, 0, _MAGIC, self.applied_index, len(sessions),
                         self.max_sessions, len(lims))
        p = _SNAP_HDR_LEN
        for v in lims:
            struct.pack_into("<I", buf, p, v)
            p += 4
        for cid in sorted(sessions):
            rec = sessions[cid]
            r = rec[_RES]
            rl = 0 if r is None else len(r)
            struct.pack_into(_SES_REC, buf, p, cid, rec[_SEQ], rec[_ACT], rl)
            p += _SES_REC_LEN
            if rl:
                buf[p:p + rl] = r
                p += rl
        mv = memoryview(buf)
        p += self.app.snapshot_into(mv[p:need - 4])
        struct.pack_into("<I", buf, p, binascii.crc32(mv[:p]) & 0xFFFFFFFF)
        return p + 4

    def snapshot(self):
        buf = bytearray(self.snapshot_size())
        self.snapshot_into(buf)
        return bytes(buf)

    def snapshot_write(self, stream):  # mpraft: host-only
        """Stream the snapshot to stream.write part by part; return its length."""
        snap = memoryview(self.snapshot())
        p = _SNAP_HDR_LEN + 4 * len(self._app_limits())
        parts = [0, p]
        for _ in range(len(self._sessions)):
            p += _SES_REC_LEN + struct.unpack_from("<H", snap, p + 12)[0]
            parts.append(p)
        parts += [len(snap) - 4, len(snap)]
        for i in range(len(parts) - 1):
            stream.write(snap[parts[i]:parts[i + 1]])
        return len(snap)

    def digest(self):
        """16 hex digits of sha256 over the snapshot."""
        return binascii.hexlify(hashlib.sha256(self.snapshot()).digest()[:8]).decode()

    def restore(self, data):
        """Replace the state with a snapshot. DecodeError leaves the old state."""
        n = len(data)
        if n < _SNAP_HDR_LEN + 4:
            raise DecodeError("raftapp: snapshot of %d bytes is truncated" % n)
        mv = memoryview(data)
        end = n - 4
        if binascii.crc32(mv[:end]) & 0xFFFFFFFF != struct.unpack_from("<I", data, end)[0]:
            raise DecodeError("raftapp: snapshot checksum mismatch")
        magic = bytes(mv[:4])
        lims = None
        if magic == _MAGIC_V1:
            applied, nses = struct.unpack_from("<II", data, 4)
            maxs = self.max_sessions
            p = 12
        elif magic == _MAGIC:
            _, applied, nses, maxs, k = struct.unpack_from(_SNAP_HDR, data, 0)
            p = _SNAP_HDR_LEN + 4 * k
            if p > end or not 0 < maxs >= nses:
                raise DecodeError("raftapp: snapshot limits")
            lims = struct.unpack_from("<%dI" % k, data, _SNAP_HDR_LEN)
        else:
            raise DecodeError("raftapp: snapshot has bad magic/version %r" % (magic,))
        if nses > self.cap_sessions:
            raise OverLimit("snapshot", nses, "sessions", self.cap_sessions)
        sessions = {}
        prev = 0
        for _ in range(nses):
            if p + _SES_REC_LEN > end:
                raise DecodeError("raftapp: snapshot truncated in session record")
            cid, seq, act, rl = struct.unpack_from(_SES_REC, data, p)
            p += _SES_REC_LEN
            if cid <= prev or act < cid or act > applied or p + rl > end:
                raise DecodeError("raftapp: snapshot session %d is inconsistent" % cid)
            if (seq == 0) != (rl == 0):
                raise DecodeError("raftapp: snapshot session %d result is inconsistent" % cid)
            res = None
            if rl:
                res = bytes(mv[p:p + rl])
                decode_result(res)  # raises DecodeError if not a result
                p += rl
            sessions[cid] = [seq, act, res]
            prev = cid
        # Raises DecodeError or OverLimit, keeping its state; adopts lims.
        self.app.restore(mv[p:end], lims) if lims else self.app.restore(mv[p:end])
        self._sessions = sessions
        self.applied_index = applied
        self.max_sessions = maxs
