"""Client <-> node payloads, carried in the same authenticated frames as Raft.

A frame's payload starts with a type byte. Raft messages use 1..13
(raft.msg); client payloads use 64 and up, so the node tells them apart by
the first byte alone and a Raft decoder never mistakes one for the other.
Little-endian, fixed headers:

    REQUEST   type=64 u8, rid u32, command...   (a raftkv.codec command)
    STATUS_Q  type=65 u8, rid u32
    RESPONSE  type=66 u8, rid u32, code u8, leader u16, result...
    STATUS_R  type=67 u8, rid u32, json...       (the node's status dict)
    ADMIN     type=68 u8, rid u32, op u8, node u16, ctx...   (operator commands)

ADMIN ops: A_TRANSFER (hand leadership to node; answered OK once started),
A_ADD_VOTER, A_ADD_LEARNER, A_REMOVE (membership; answered OK once the
change is applied, BUSY while another change is pending), A_JOINT (several
changes at once through a joint configuration: node is 0 and ctx is the
change as raft.confchange.encode_v2 writes it; answered OK once the entry
entering the joint configuration is applied). ctx is opaque to the wire (at
most ADMIN_MAX_CTX bytes). An admin request the leader
refuses is answered BAD_REQUEST with one reason byte (R_*) as its result,
so the operator learns why (already a voter, not a member, ...).

`rid` is the client's request id, echoed so a client matches answers to
requests and ignores late duplicates. Exactly-once is not the rid's job: the
raftkv command inside carries the client id and sequence number.

RESPONSE codes: OK (result holds the raftkv result bytes), NOT_LEADER
(leader holds the hint, 0 if unknown: try another node), RETRY (the request
may or may not have been applied, e.g. the entry was overwritten after a
leader change: send it again, same seq), BUSY (back-pressure, nothing
happened: retry later), BAD_REQUEST (malformed or too large: do not retry).

decode_* raise DecodeError and nothing else on bad bytes.
"""
import struct

from raft.errors import DecodeError

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

REQUEST = const(64)
STATUS_Q = const(65)
RESPONSE = const(66)
STATUS_R = const(67)
ADMIN = const(68)
FIRST_CLIENT_TYPE = const(64)

A_TRANSFER = const(1)
A_ADD_VOTER = const(2)
A_ADD_LEARNER = const(3)
A_REMOVE = const(4)
A_JOINT = const(5)
_MAX_ADMIN_OP = const(5)
# A joint change: 3 + 3 bytes per step + 1 + an address list.
ADMIN_MAX_CTX = const(96)
_ADMIN_HDR = "<BIBH"
ADMIN_HDR = const(8)

# Why an ADMIN request was refused: the result byte of its BAD_REQUEST.
R_ALREADY_VOTER = const(1)
R_ALREADY_LEARNER = const(2)
R_NOT_MEMBER = const(3)
R_LAST_VOTER = const(4)
R_NOT_VOTER = const(5)    # leadership only goes to a voter
REASONS = ("", "already a voter", "already a learner", "not a member",  # mpraft: client-side
           "the last voter", "not a voter")

OK = const(0)
NOT_LEADER = const(1)
RETRY = const(2)
BUSY = const(3)
BAD_REQUEST = const(4)
_MAX_CODE = const(4)
CODE_NAMES = ("ok", "not_leader", "retry", "busy", "bad_request")  # mpraft: client-side

_REQ_HDR = "<BI"
REQ_HDR = const(5)
_RESP_HDR = "<BIBH"
RESP_HDR = const(8)


def is_client_type(t):
    return t >= FIRST_CLIENT_TYPE


def encode_request_into(buf, off, rid, cmd, n=-1):  # mpraft: client-side
    """REQUEST carrying cmd[:n] (all of it if n < 0); returns the payload length."""
    if n < 0:
        n = len(cmd)
    struct.pack_into(_REQ_HDR, buf, off, REQUEST, rid)
    p = off + REQ_HDR
    if n == len(cmd):
        buf[p:p + n] = cmd
    else:
        buf[p:p + n] = memoryview(cmd)[:n]
    return REQ_HDR + n


def encode_admin_into(buf, off, rid, op, node, ctx=b""):  # mpraft: client-side
    """ADMIN op for node (ctx: opaque bytes); returns the payload length."""
    if not 1 <= op <= _MAX_ADMIN_OP or not 0 <= node <= 0xFFFF or len(ctx) > ADMIN_MAX_CTX:
        raise ValueError("wire: bad admin op %r node %r or ctx of %d bytes" % (op, node, len(ctx)))
    struct.pack_into(_ADMIN_HDR, buf, off, ADMIN, rid, op, node)
    p = off + ADMIN_HDR
    buf[p:p + len(ctx)] = ctx
    return ADMIN_HDR + len(ctx)


def decode_admin(buf, off, n):
    """(rid, op, node, ctx bytes) of an ADMIN payload."""
    if n < ADMIN_HDR or off + n > len(buf) or buf[off] != ADMIN:
        raise DecodeError("wire: not an admin request of at least %d bytes" % ADMIN_HDR)
    _, rid, op, node = struct.unpack_from(_ADMIN_HDR, buf, off)
    if not 1 <= op <= _MAX_ADMIN_OP or n - ADMIN_HDR > ADMIN_MAX_CTX:
        raise DecodeError("wire: admin op %d with %d ctx bytes" % (op, n - ADMIN_HDR))
    return rid, op, node, bytes(buf[off + ADMIN_HDR:off + n])


def encode_status_query_into(buf, off, rid):  # mpraft: client-side
    struct.pack_into(_REQ_HDR, buf, off, STATUS_Q, rid)
    return REQ_HDR


def encode_response_into(buf, off, rid, code, leader=0, result=b""):
    struct.pack_into(_RESP_HDR, buf, off, RESPONSE, rid, code, leader)
    p = off + RESP_HDR
    n = len(result)
    buf[p:p + n] = result
    return RESP_HDR + n


def encode_status_into(buf, off, rid, text):
    struct.pack_into(_REQ_HDR, buf, off, STATUS_R, rid)
    p = off + REQ_HDR
    n = len(text)
    buf[p:p + n] = text
    return REQ_HDR + n


def peek_type(buf, off, n):
    """Type byte of the payload, or 0 if it is empty."""
    if n < 1:
        return 0
    return buf[off]


def decode_request(buf, off, n):
    """(type, rid, command offset, command length) of a REQUEST or STATUS_Q."""
    if n < REQ_HDR or off + n > len(buf):
        raise DecodeError("wire: request of %d bytes is shorter than its header" % n)
    t, rid = struct.unpack_from(_REQ_HDR, buf, off)
    if t == STATUS_Q:
        if n != REQ_HDR:
            raise DecodeError("wire: status query with %d trailing bytes" % (n - REQ_HDR))
    elif t != REQUEST:
        raise DecodeError("wire: type %d is not a request" % t)
    elif n == REQ_HDR:
        raise DecodeError("wire: request without a command")
    return t, rid, off + REQ_HDR, n - REQ_HDR


def decode_reply(buf, off, n):  # mpraft: client-side
    """(type, rid, code, leader, body bytes) of a RESPONSE or STATUS_R.

    For STATUS_R, code is OK, leader 0 and body the JSON text.
    """
    if n < REQ_HDR or off + n > len(buf):
        raise DecodeError("wire: reply of %d bytes is shorter than its header" % n)
    t = buf[off]
    if t == RESPONSE:
        if n < RESP_HDR:
            raise DecodeError("wire: response of %d bytes is shorter than its header" % n)
        _, rid, code, leader = struct.unpack_from(_RESP_HDR, buf, off)
        if code > _MAX_CODE:
            raise DecodeError("wire: unknown response code %d" % code)
        return t, rid, code, leader, bytes(buf[off + RESP_HDR:off + n])
    if t == STATUS_R:
        rid = struct.unpack_from("<I", buf, off + 1)[0]
        return t, rid, OK, 0, bytes(buf[off + REQ_HDR:off + n])
    raise DecodeError("wire: type %d is not a reply" % t)
