"""Raft messages and their compact binary codec.

One message is one datagram payload (the transport adds the frame header and
MAC). Fixed header, little-endian:

    type u8, flags u8, to u16, from u16, term u32, log_term u32, index u32,
    commit u32, hint u32, hint_term u32, ctx u32, n u16

then, for APP, n entries of (term u32, kind u8, len u16, data); entry k has
index ``index + 1 + k``. For SNAP the n bytes after the header are one chunk
of the snapshot blob. Field use by type:

    APP        index/log_term: the entry before the batch; commit: leader commit
    APP_RESP   index: last index stored (or the rejected index); REJECT flag;
               hint/hint_term: the follower's fast-backtracking conflict hint
    VOTE(_RESP), PREVOTE(_RESP)  index/log_term: candidate's last entry
    HEARTBEAT(_RESP)   commit; ctx: read-index round; hint: leader tick (lease)
    SNAP       index/log_term: snapshot position; hint: chunk offset;
               ctx: total blob size; DONE flag on the last chunk
    SNAP_RESP  hint: next offset wanted; REJECT flag: restart from hint
    READ_INDEX(_RESP)  ctx: caller's request id; index: the read index
    TIMEOUT_NOW  leadership transfer: campaign now, ignoring the lease

commit in every type but APP and HEARTBEAT (which carry the leader's
commit index) is the sender's incarnation, 0 if unbound: responses and
vote requests from an incarnation the configuration does not bind to the
sender count for nothing (docs/incarnation.md).

decode_into raises DecodeError and nothing else on bad bytes.

Allocation contract (checked under micropython.heap_lock() by
host_tests/mp_only/test_codec_heaplock.py):

- encode_into writes any message except a decoded, not yet materialized APP
  into a preallocated buffer without allocating.
- decode_into of any type but SNAP fills a reused Message without allocating:
  it validates the header and every APP entry header and bound, and records
  where the entries are (in buf) instead of building them. A SNAP chunk is
  copied out (one bytes object).
- Reading ``m.entries`` of a decoded APP materializes the entries then (one
  list, and a tuple and a bytes per entry) and caches them on m until the
  next decode_into. The core reads them only for an append that passes the
  log-matching check, so rejected and stale appends cost no heap. Until read,
  the entries live in buf: read them before buf is reused (the node steps
  each message before it receives the next datagram).

On a 32-bit board small ints hold 31 bits (signed), so a u32 field of 2**30
or more costs a heap int when decoded. term and index are validated below
2**31 and stay far below 2**30 in practice; hint (leader tick) and ctx
(read round, request id) reach 2**30 only after a very long uptime, and then
only cost a few bytes per message, not correctness.
"""
import struct

from raft.errors import DecodeError

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

APP = const(1)
APP_RESP = const(2)
VOTE = const(3)
VOTE_RESP = const(4)
PREVOTE = const(5)
PREVOTE_RESP = const(6)
HEARTBEAT = const(7)
HEARTBEAT_RESP = const(8)
SNAP = const(9)
SNAP_RESP = const(10)
READ_INDEX = const(11)
READ_INDEX_RESP = const(12)
TIMEOUT_NOW = const(13)
_MAX_TYPE = const(13)

TYPE_NAMES = (  # mpraft: host-only
    "?", "APP", "APP_RESP", "VOTE", "VOTE_RESP", "PREVOTE", "PREVOTE_RESP", "HEARTBEAT",
    "HEARTBEAT_RESP", "SNAP", "SNAP_RESP", "READ_INDEX", "READ_INDEX_RESP", "TIMEOUT_NOW")

FLAG_REJECT = const(1)
FLAG_DONE = const(2)
# A vote request from a leadership transfer: voters ignore their lease.
FLAG_FORCE = const(4)

_HDR = "<BBHHIIIIIIIH"
HEADER_SIZE = const(36)
_ENT = "<IBH"
ENTRY_OVERHEAD = const(7)
_MAX_U32 = const(0xFFFFFFFF)


class Message:
    """One Raft message. Instances are reused by decoders; the core copies
    what it keeps (entries are immutable tuples)."""

    # Every attribute is set in __init__: MicroPython keeps instance
    # attributes in a per-instance map, and adding a new one to a reused
    # record would grow that map (an allocation) inside decode_into.
    __slots__ = ("type", "flags", "to", "frm", "term", "log_term", "index", "commit",
                 "hint", "hint_term", "ctx", "data", "_ents", "_raw", "_eoff")

    def __init__(self, type=0, to=0, frm=0, term=0, log_term=0, index=0, commit=0,
                 hint=0, hint_term=0, ctx=0, flags=0, entries=None, data=b""):
        self.type = type
        self.flags = flags
        self.to = to
        self.frm = frm
        self.term = term
        self.log_term = log_term
        self.index = index
        self.commit = commit
        self.hint = hint
        self.hint_term = hint_term
        self.ctx = ctx
        # Invariant: _ents is the entry list, or None right after a
        # decode_into; then, for an APP, _raw is that decode's buffer and the
        # validated entries start at _eoff (their count is the header's last
        # u16, just before). _raw is None whenever _ents is a list.
        self._ents = entries if entries is not None else []
        self._raw = None
        self._eoff = 0
        self.data = data

    @property
    def entries(self):
        """(index, term, kind, data) tuples; built on first read after a decode."""
        ents = self._ents
        if ents is None:
            ents = self._ents = _materialize(self)
            self._raw = None
        return ents

    @entries.setter
    def entries(self, ents):
        self._ents = ents
        self._raw = None

    @property
    def reject(self):  # mpraft: host-only
        return bool(self.flags & FLAG_REJECT)

    def __repr__(self):  # mpraft: host-only
        name = TYPE_NAMES[self.type] if 0 <= self.type <= _MAX_TYPE else str(self.type)
        s = "%s %d->%d t%d lt%d i%d c%d" % (name, self.frm, self.to, self.term,
                                             self.log_term, self.index, self.commit)
        if self.flags & FLAG_REJECT:
            s += " reject(hint=%d,%d)" % (self.hint, self.hint_term)
        ents = self.entries
        if ents:
            s += " ents=%d..%d" % (ents[0][0], ents[-1][0])
        return s


def _materialize(m):
    # decode_into validated every entry header and bound. This runs only
    # where the caller accepts allocation, so struct is fine (and faster on
    # CPython).
    out = []
    if m.type != APP:
        return out
    b = m._raw
    p = m._eoff
    first = m.index + 1
    unpack = struct.unpack_from
    for k in range(b[p - 2] | b[p - 1] << 8):
        et, kind, ln = unpack(_ENT, b, p)
        p += ENTRY_OVERHEAD
        out.append((first + k, et, kind, bytes(b[p:p + ln])))
        p += ln
    return out


def encoded_size(m):  # mpraft: host-only
    n = HEADER_SIZE
    if m.type == APP:
        ents = m._ents
        for e in (ents if ents is not None else m.entries):
            n += ENTRY_OVERHEAD + len(e[3])
    elif m.type == SNAP:
        n += len(m.data)
    return n


def encode_into(m, buf, off=0):
    """Write m into buf at off; returns the number of bytes written."""
    t = m.type
    if t == APP:
        ents = m._ents
        if ents is None:
            ents = m.entries  # a decoded APP: built here (allocates)
        n = len(ents)
    elif t == SNAP:
        n = len(m.data)
    else:
        n = 0
    struct.pack_into(_HDR, buf, off, t, m.flags, m.to, m.frm, m.term, m.log_term,
                     m.index, m.commit, m.hint, m.hint_term, m.ctx, n)
    p = off + HEADER_SIZE
    if t == APP:
        for e in ents:
            d = e[3]
            ln = len(d)
            struct.pack_into(_ENT, buf, p, e[1], e[2], ln)
            p += ENTRY_OVERHEAD
            # Slice assignment allocates no slice object on MicroPython 1.29
            # (measured); older ports would allocate one per entry here.
            buf[p:p + ln] = d
            p += ln
    elif t == SNAP:
        buf[p:p + n] = m.data
        p += n
    return p - off


def encode(m):  # mpraft: host-only
    buf = bytearray(encoded_size(m))
    encode_into(m, buf, 0)
    return bytes(buf)


def decode_into(m, buf, n, off=0):
    """Fill the reused Message m from buf[off:off+n]; returns m.

    Raises DecodeError only, and then leaves m as it was. Reads the header
    byte by byte: struct.unpack_from would allocate a tuple.
    """
    if n < HEADER_SIZE or off < 0 or off + n > len(buf):
        raise DecodeError("message too short")
    b = buf
    o = off
    t = b[o]
    if t < 1 or t > _MAX_TYPE:
        raise DecodeError("unknown message type %d" % t)
    flags = b[o + 1]
    # term and index must fit 31 bits: test the top byte before building the
    # int, so an out-of-range value never becomes a heap int on a board.
    if flags > 7 or b[o + 9] > 0x7F or b[o + 17] > 0x7F:
        raise DecodeError("field out of range")
    index = b[o + 14] | b[o + 15] << 8 | b[o + 16] << 16 | b[o + 17] << 24
    cnt = b[o + 34] | b[o + 35] << 8
    p = o + HEADER_SIZE
    end = o + n
    if t == APP:
        if index + cnt > 0x7FFFFFFF:
            raise DecodeError("entry index out of range")
        # One header check per entry; an entry whose data runs past the end
        # fails the next entry's header check or the final p != end.
        for _ in range(cnt):
            q = p + ENTRY_OVERHEAD
            if q > end:
                raise DecodeError("truncated entry")
            if b[p + 4] > 1:
                raise DecodeError("bad entry kind")
            p = q + (b[p + 5] | b[p + 6] << 8)
    elif t == SNAP:
        if p + cnt > end:
            raise DecodeError("truncated snapshot chunk")
        p += cnt
    elif cnt:
        raise DecodeError("unexpected payload")
    if p != end:
        raise DecodeError("trailing bytes" if p < end else "truncated entry data")
    # Valid: only now overwrite the record.
    m.type = t
    m.flags = flags
    m.to = b[o + 2] | b[o + 3] << 8
    m.frm = b[o + 4] | b[o + 5] << 8
    m.term = b[o + 6] | b[o + 7] << 8 | b[o + 8] << 16 | b[o + 9] << 24
    m.log_term = b[o + 10] | b[o + 11] << 8 | b[o + 12] << 16 | b[o + 13] << 24
    m.index = index
    m.commit = b[o + 18] | b[o + 19] << 8 | b[o + 20] << 16 | b[o + 21] << 24
    m.hint = b[o + 22] | b[o + 23] << 8 | b[o + 24] << 16 | b[o + 25] << 24
    m.hint_term = b[o + 26] | b[o + 27] << 8 | b[o + 28] << 16 | b[o + 29] << 24
    m.ctx = b[o + 30] | b[o + 31] << 8 | b[o + 32] << 16 | b[o + 33] << 24
    # Entries stay in buf until read (see the Message invariant); whatever a
    # previous decode materialized is dropped here, never mixed in.
    m._ents = None
    m._raw = b if t == APP else None
    m._eoff = o + HEADER_SIZE
    if t == SNAP:
        m.data = bytes(b[o + HEADER_SIZE:end])
    else:
        m.data = b""
    return m


def decode(buf, n=-1):  # mpraft: host-only
    if n < 0:
        n = len(buf)
    return decode_into(Message(), buf, n, 0)
