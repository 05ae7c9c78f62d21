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

decode_into raises DecodeError and nothing else on bad bytes.
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

TYPE_NAMES = ("?", "APP", "APP_RESP", "VOTE", "VOTE_RESP", "PREVOTE", "PREVOTE_RESP",
              "HEARTBEAT", "HEARTBEAT_RESP", "SNAP", "SNAP_RESP", "READ_INDEX",
              "READ_INDEX_RESP", "TIMEOUT_NOW")

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

    __slots__ = ("type", "flags", "to", "frm", "term", "log_term", "index", "commit",
                 "hint", "hint_term", "ctx", "entries", "data")

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
        self.entries = entries if entries is not None else []
        self.data = data

    @property
    def reject(self):
        return bool(self.flags & FLAG_REJECT)

    def __repr__(self):
        name = TYPE_NAMES[self.type] if 0 <= self.type <= _MAX_TYPE else str(self.type)
        s = "%s %d->%d t%d lt%d i%d c%d" % (name, self.frm, self.to, self.term,
                                             self.log_term, self.index, self.commit)
        if self.flags & FLAG_REJECT:
            s += " reject(hint=%d,%d)" % (self.hint, self.hint_term)
        if self.entries:
            s += " ents=%d..%d" % (self.entries[0][0], self.entries[-1][0])
        return s


def encoded_size(m):
    n = HEADER_SIZE
    if m.type == APP:
        for e in m.entries:
            n += ENTRY_OVERHEAD + len(e[3])
    elif m.type == SNAP:
        n += len(m.data)
    return n


def encode_into(m, buf, off=0):
    """Write m into buf at off; returns the number of bytes written."""
    if m.type == APP:
        n = len(m.entries)
    elif m.type == SNAP:
        n = len(m.data)
    else:
        n = 0
    struct.pack_into(_HDR, buf, off, m.type, m.flags, m.to, m.frm, m.term, m.log_term,
                     m.index, m.commit, m.hint, m.hint_term, m.ctx, n)
    p = off + HEADER_SIZE
    if m.type == APP:
        for e in m.entries:
            d = e[3]
            ln = len(d)
            struct.pack_into(_ENT, buf, p, e[1], e[2], ln)
            p += ENTRY_OVERHEAD
            buf[p:p + ln] = d
            p += ln
    elif m.type == SNAP:
        buf[p:p + n] = m.data
        p += n
    return p - off


def encode(m):
    buf = bytearray(encoded_size(m))
    encode_into(m, buf, 0)
    return bytes(buf)


def decode_into(m, buf, n, off=0):
    """Fill the reused Message m from buf[off:off+n]. Raises DecodeError only."""
    if n < HEADER_SIZE or off + n > len(buf):
        raise DecodeError("message too short")
    try:
        (t, flags, to, frm, term, log_term, index, commit, hint, hint_term, ctx,
         cnt) = struct.unpack_from(_HDR, buf, off)
    except Exception:
        raise DecodeError("bad header")
    if t < 1 or t > _MAX_TYPE:
        raise DecodeError("unknown message type %d" % t)
    if flags > 7 or term > 0x7FFFFFFF or index > 0x7FFFFFFF:
        raise DecodeError("field out of range")
    m.type = t
    m.flags = flags
    m.to = to
    m.frm = frm
    m.term = term
    m.log_term = log_term
    m.index = index
    m.commit = commit
    m.hint = hint
    m.hint_term = hint_term
    m.ctx = ctx
    ents = m.entries
    del ents[:]
    m.data = b""
    p = off + HEADER_SIZE
    end = off + n
    if t == APP:
        if index + cnt > 0x7FFFFFFF:
            raise DecodeError("entry index out of range")
        k = 0
        while k < cnt:
            if p + ENTRY_OVERHEAD > end:
                raise DecodeError("truncated entry header")
            et, kind, ln = struct.unpack_from(_ENT, buf, p)
            p += ENTRY_OVERHEAD
            if p + ln > end:
                raise DecodeError("truncated entry data")
            if kind > 1:
                raise DecodeError("bad entry kind")
            ents.append((index + 1 + k, et, kind, bytes(buf[p:p + ln])))
            p += ln
            k += 1
    elif t == SNAP:
        if p + cnt > end:
            raise DecodeError("truncated snapshot chunk")
        m.data = bytes(buf[p:p + cnt])
        p += cnt
    elif cnt:
        raise DecodeError("unexpected payload")
    if p != end:
        raise DecodeError("trailing bytes")
    return m


def decode(buf, n=-1):
    if n < 0:
        n = len(buf)
    return decode_into(Message(), buf, n, 0)
