"""Client <-> node payloads, carried in the same authenticated frames as Raft.

A frame's payload starts with a type byte. Raft messages use 1..13
(raft.msg); client payloads use 64 and up, so the node tells them apart by
the first byte alone and a Raft decoder never mistakes one for the other.
Little-endian, fixed headers:

    REQUEST   type=64 u8, rid u32, command...   (a raftkv.codec command)
    STATUS_Q  type=65 u8, rid u32
    RESPONSE  type=66 u8, rid u32, code u8, leader u16, result...
    STATUS_R  type=67 u8, rid u32, json...       (the node's status dict)

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
FIRST_CLIENT_TYPE = const(64)

OK = const(0)
NOT_LEADER = const(1)
RETRY = const(2)
BUSY = const(3)
BAD_REQUEST = const(4)
_MAX_CODE = const(4)
CODE_NAMES = ("ok", "not_leader", "retry", "busy", "bad_request")

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
