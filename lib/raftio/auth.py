"""HMAC-SHA256 (RFC 2104) over hashlib.sha256, the same bytes on MicroPython and CPython.

MicroPython has no `hmac` module and its sha256 objects offer only `update()`
and `digest()` (no `copy()`, no `hexdigest()`, and `digest()` finalises the
object). So the padded keys are computed once per key, and each MAC costs two
fresh sha256 objects: H(K^opad || H(K^ipad || data)).

Where `copy()` exists (CPython) the states after the key blocks are cached and
copied instead, which saves two compression rounds per MAC; the result is
identical.

Allocation per MAC on MicroPython (measured, see host_tests/portable/node/test_frame.py):
two sha256 objects, two 32-byte digests and one memoryview slice. It cannot
reach zero in Python code because `hashlib.sha256()` and `digest()` allocate.
Nothing is proportional to the data length: the data is hashed in place.
"""
import hashlib

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

TAG_LEN = const(16)
_BLOCK = const(64)


class Hmac:
    """HMAC-SHA256 with one key, tags truncated to TAG_LEN (RFC 4231 section 4.6 style)."""

    def __init__(self, key):  # mpraft: boot
        key = bytes(key)
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        ipad = bytearray(_BLOCK)
        opad = bytearray(_BLOCK)
        for i in range(_BLOCK):
            k = key[i] if i < len(key) else 0
            ipad[i] = k ^ 0x36
            opad[i] = k ^ 0x5C
        # Invariant: _ipad/_opad are the key XOR pads, never mutated after here.
        self._ipad = bytes(ipad)
        self._opad = bytes(opad)
        inner = hashlib.sha256(self._ipad)
        if hasattr(inner, "copy"):
            self._inner = inner
            self._outer = hashlib.sha256(self._opad)
        else:
            self._inner = None
            self._outer = None
        # One memoryview per buffer the caller keeps reusing (the transports'
        # preallocated rx/tx), so a MAC allocates one slice, not two objects.
        self._buf = None
        self._mv = None
        self._buf_len = -1

    def _view(self, buf, n):
        if n == len(buf):
            return buf
        if self._inner is not None:
            # CPython: a fresh view is released on return, so the caller's
            # bytearray stays resizable (a cached view would pin it).
            return memoryview(buf)[:n]
        if buf is not self._buf or len(buf) != self._buf_len:
            self._buf = buf
            self._buf_len = len(buf)
            self._mv = memoryview(buf)
        return self._mv[:n]

    def digest(self, buf, n):
        """Full 32-byte HMAC-SHA256 of buf[:n]."""
        if n < 0 or n > len(buf):
            _bad_length(n, len(buf))
        data = self._view(buf, n)
        if self._inner is not None:
            return self._digest_copied(data)
        h = hashlib.sha256(self._ipad)
        h.update(data)
        inner = h.digest()
        h = hashlib.sha256(self._opad)
        h.update(inner)
        return h.digest()

    def _digest_copied(self, data):
        # CPython: start from the cached states after the key blocks.
        h = self._inner.copy()
        h.update(data)
        o = self._outer.copy()
        o.update(h.digest())
        return o.digest()

    def mac(self, buf, n):  # mpraft: host-only
        """The TAG_LEN-byte truncated tag of buf[:n], as bytes."""
        return self.digest(buf, n)[:TAG_LEN]

    def mac_into(self, buf, n, out, off):
        """Write the tag of buf[:n] to out[off:off + TAG_LEN]; out may be buf."""
        if off < 0 or off + TAG_LEN > len(out):
            _bad_tag(off, len(out))
        # A byte loop rather than out[a:b] = d[:16]: the slice of d would allocate.
        _copy_tag(self.digest(buf, n), out, off)

    def verify(self, buf, n, tag_offset):
        """True iff buf[tag_offset:tag_offset + TAG_LEN] is the tag of buf[:n].

        The comparison touches every tag byte whatever the first mismatch, so
        its time does not reveal how many leading bytes were right.
        """
        if tag_offset < 0 or tag_offset + TAG_LEN > len(buf) or n < 0 or n > len(buf):
            return False
        return _tag_equal(self.digest(buf, n), buf, tag_offset)


# Out of line so digest, mac_into and verify keep their frames within
# MicroPython's 11 words on the C stack: past that every call allocates its
# frame on the heap (docs/profile.md).
def _copy_tag(d, out, off):
    for i in range(TAG_LEN):
        out[off + i] = d[i]


def _tag_equal(d, buf, off):
    acc = 0
    for i in range(TAG_LEN):
        acc |= d[i] ^ buf[off + i]
    return acc == 0


def _bad_length(n, size):
    raise ValueError("auth: length %d outside buffer of %d" % (n, size))


def _bad_tag(off, size):
    raise ValueError("auth: tag at %d does not fit in %d bytes" % (off, size))
