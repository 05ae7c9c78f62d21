"""Wire format of key-value commands (Raft entry data) and their results.

All integers are little-endian. Lengths are checked before every
``unpack_from``, so decoding bad bytes raises ``DecodeError`` and nothing else.

Commands (the bytes proposed to Raft)::

    REGISTER  op:B                                              1 byte
    PUT       op:B cid:I seq:I klen:B vlen:H        key value   12 + k + v
    GET       op:B cid:I seq:I klen:B               key         10 + k
    DELETE    op:B cid:I seq:I klen:B               key         10 + k
    CAS       op:B cid:I seq:I klen:B flags:B olen:H nlen:H key old new
                                                                15 + k + o + n

CAS flags bit 0 set means ``old`` is given; clear means "the key must be
absent" (and ``olen`` must then be 0). Unknown ops, unknown flag bits, lengths
that disagree with the buffer, and trailing bytes are all malformed: decoding is
strict so a command has exactly one encoding.

Results (returned by ``KVStateMachine.apply``)::

    status:B                       no value
    status|0x80:B vlen:H value     with a value (may be empty)

The wire limits are physical (key <= 255, value <= 65535 bytes); the board's
``max_key``/``max_value`` are enforced by the state machine (TOO_LARGE).
"""
import struct

from raft.errors import DecodeError

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# Ops. 0 is never valid, so a zeroed buffer decodes as malformed.
REGISTER = const(1)
PUT = const(2)
GET = const(3)
DELETE = const(4)
CAS = const(5)

# Result status codes.
OK = const(0)
NOT_FOUND = const(1)
CAS_FAILED = const(2)
SESSION_EXPIRED = const(3)
STALE_SEQ = const(4)
TOO_LARGE = const(5)
MALFORMED = const(6)
FULL = const(7)  # max_keys reached: a new key cannot be added
_MAX_STATUS = const(7)
_HAS_VALUE = const(0x80)

_CAS_OLD = const(1)  # CAS flags bit: expected old value present

WIRE_MAX_KEY = const(255)
WIRE_MAX_VALUE = const(65535)

_HDR = "<BIIB"  # op, client id, seq, key length
_HDR_LEN = const(10)
_PUT_LEN = const(12)
_CAS_LEN = const(15)
_U32 = const(0xFFFFFFFF)

_NAMES = ("OK", "NOT_FOUND", "CAS_FAILED", "SESSION_EXPIRED", "STALE_SEQ",  # mpraft: client-side
          "TOO_LARGE", "MALFORMED", "FULL")


def status_name(status):  # mpraft: client-side
    if 0 <= status <= _MAX_STATUS:
        return _NAMES[status]
    return "STATUS_%d" % status


def max_command_len(max_key, max_value):  # mpraft: host-only
    """Largest command for these limits (a CAS with both values): size a buffer."""
    return _CAS_LEN + max_key + 2 * max_value


def max_result_len(max_value):  # mpraft: host-only
    return 3 + max_value


def _check(cid, seq, key, value, limit_name):  # mpraft: client-side
    if not 0 <= cid <= _U32 or not 0 <= seq <= _U32:
        raise ValueError("raftkv: client id and seq must fit in u32")
    if len(key) > WIRE_MAX_KEY:
        raise ValueError("raftkv: key of %d bytes exceeds the wire limit %d"
                         % (len(key), WIRE_MAX_KEY))
    if value is not None and len(value) > WIRE_MAX_VALUE:
        raise ValueError("raftkv: %s of %d bytes exceeds the wire limit %d"
                         % (limit_name, len(value), WIRE_MAX_VALUE))


def _put_bytes(buf, off, data):  # mpraft: client-side
    n = len(data)
    buf[off:off + n] = data
    return off + n


# -- commands: encode into a caller's buffer, return the length -------------
# Each raises ValueError if buf is too small or a field exceeds its wire limit
# (a caller bug, not bad input from the network).

def encode_register_into(buf, off=0):  # mpraft: client-side
    struct.pack_into("<B", buf, off, REGISTER)
    return 1


def encode_put_into(buf, cid, seq, key, value, off=0):  # mpraft: client-side
    _check(cid, seq, key, value, "value")
    struct.pack_into("<BIIBH", buf, off, PUT, cid, seq, len(key), len(value))
    end = _put_bytes(buf, off + _PUT_LEN, key)
    return _put_bytes(buf, end, value) - off


def _encode_keyed_into(buf, op, cid, seq, key, off):  # mpraft: client-side
    _check(cid, seq, key, None, "")
    struct.pack_into(_HDR, buf, off, op, cid, seq, len(key))
    return _put_bytes(buf, off + _HDR_LEN, key) - off


def encode_get_into(buf, cid, seq, key, off=0):  # mpraft: client-side
    return _encode_keyed_into(buf, GET, cid, seq, key, off)


def encode_delete_into(buf, cid, seq, key, off=0):  # mpraft: client-side
    return _encode_keyed_into(buf, DELETE, cid, seq, key, off)


def encode_cas_into(buf, cid, seq, key, old, new, off=0):  # mpraft: client-side
    """CAS: set key to ``new`` if its value is ``old`` (None: key absent)."""
    _check(cid, seq, key, new, "new value")
    _check(cid, seq, key, old, "old value")
    flags = 0 if old is None else _CAS_OLD
    olen = 0 if old is None else len(old)
    struct.pack_into("<BIIBBHH", buf, off, CAS, cid, seq, len(key), flags,
                     olen, len(new))
    end = _put_bytes(buf, off + _CAS_LEN, key)
    if old is not None:
        end = _put_bytes(buf, end, old)
    return _put_bytes(buf, end, new) - off


# -- commands: convenience versions returning bytes --------------------------

def encode_register():  # mpraft: client-side
    return bytes((REGISTER,))


def encode_put(cid, seq, key, value):  # mpraft: client-side
    buf = bytearray(_PUT_LEN + len(key) + len(value))
    encode_put_into(buf, cid, seq, key, value)
    return bytes(buf)


def encode_get(cid, seq, key):  # mpraft: client-side
    buf = bytearray(_HDR_LEN + len(key))
    encode_get_into(buf, cid, seq, key)
    return bytes(buf)


def encode_delete(cid, seq, key):  # mpraft: client-side
    buf = bytearray(_HDR_LEN + len(key))
    encode_delete_into(buf, cid, seq, key)
    return bytes(buf)


def encode_cas(cid, seq, key, old, new):  # mpraft: client-side
    buf = bytearray(_CAS_LEN + len(key) + (0 if old is None else len(old)) + len(new))
    encode_cas_into(buf, cid, seq, key, old, new)
    return bytes(buf)


def decode_command(buf, off=0, n=None):
    """Decode one command occupying exactly buf[off:off+n] (n defaults to the rest).

    Returns ``(op, cid, seq, key, value, old)``: bytes or None for the last
    three (PUT: value; CAS: new value in ``value``, expected value in ``old``,
    None meaning absent). REGISTER gives cid = seq = 0. Raises DecodeError.
    """
    total = len(buf)
    if n is None:
        n = total - off
    if off < 0 or n < 0 or off + n > total:
        raise DecodeError("raftkv: command region out of range")
    if n < 1:
        raise DecodeError("raftkv: empty command")
    end = off + n
    op = buf[off]
    if op == REGISTER:
        if n != 1:
            raise DecodeError("raftkv: REGISTER has %d trailing bytes" % (n - 1))
        return (REGISTER, 0, 0, None, None, None)
    if op < PUT or op > CAS:
        raise DecodeError("raftkv: unknown op %d" % op)
    if n < _HDR_LEN:
        raise DecodeError("raftkv: command truncated in header")
    _, cid, seq, klen = struct.unpack_from(_HDR, buf, off)
    value = old = None
    if op == PUT:
        if n < _PUT_LEN:
            raise DecodeError("raftkv: PUT truncated in header")
        vlen = struct.unpack_from("<H", buf, off + _HDR_LEN)[0]
        p = off + _PUT_LEN
        olen = -1
    elif op == CAS:
        if n < _CAS_LEN:
            raise DecodeError("raftkv: CAS truncated in header")
        flags, olen, vlen = struct.unpack_from("<BHH", buf, off + _HDR_LEN)
        if flags & ~_CAS_OLD:
            raise DecodeError("raftkv: CAS has unknown flags 0x%02x" % flags)
        if not flags & _CAS_OLD:
            if olen:
                raise DecodeError("raftkv: CAS without old value has olen %d" % olen)
            olen = -1
        p = off + _CAS_LEN
    else:
        vlen = -1
        olen = -1
        p = off + _HDR_LEN
    want = p + klen + (olen if olen > 0 else 0) + (vlen if vlen > 0 else 0)
    if want != end:
        raise DecodeError("raftkv: command length %d, fields say %d" % (n, want - off))
    key = bytes(buf[p:p + klen])
    p += klen
    if olen >= 0:
        old = bytes(buf[p:p + olen])
        p += olen
    if vlen >= 0:
        value = bytes(buf[p:p + vlen])
    return (op, cid, seq, key, value, old)


# -- results -----------------------------------------------------------------

# One result encoder for every application (raftapp.session), re-exported.
from raftapp.session import encode_result, encode_result_into  # noqa: E402


def decode_result(buf, off=0, n=None):  # mpraft: client-side
    """Decode a result occupying exactly buf[off:off+n]: ``(status, value or None)``."""
    total = len(buf)
    if n is None:
        n = total - off
    if off < 0 or n < 1 or off + n > total:
        raise DecodeError("raftkv: result region empty or out of range")
    b = buf[off]
    status = b & ~_HAS_VALUE
    if status > _MAX_STATUS:
        raise DecodeError("raftkv: unknown result status %d" % status)
    if not b & _HAS_VALUE:
        if n != 1:
            raise DecodeError("raftkv: result has %d trailing bytes" % (n - 1))
        return (status, None)
    if n < 3:
        raise DecodeError("raftkv: result truncated")
    vlen = struct.unpack_from("<H", buf, off + 1)[0]
    if 3 + vlen != n:
        raise DecodeError("raftkv: result length %d, fields say %d" % (n, 3 + vlen))
    return (status, bytes(buf[off + 3:off + n]))


def encode_client_id(cid):  # mpraft: host-only
    """The value of a REGISTER result: the new client id as u32."""
    return struct.pack("<I", cid)


def decode_client_id(result):  # mpraft: client-side
    """Client id from a REGISTER result; raises DecodeError if it is not one."""
    status, value = decode_result(result)
    if status != OK or value is None or len(value) != 4:
        raise DecodeError("raftkv: not a REGISTER result (status %s)"
                          % status_name(status))
    return struct.unpack_from("<I", value, 0)[0]
