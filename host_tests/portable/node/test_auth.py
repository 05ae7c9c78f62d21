"""HMAC-SHA256 against RFC 4231 and (on CPython) the hmac module. Runs on both interpreters."""
import binascii

from raftio.auth import Hmac, TAG_LEN

# RFC 4231 section 4: (key, data, full HMAC-SHA256 hex). Case 5 is the
# truncated-to-128-bits case, checked against our TAG_LEN tag below.
_RFC4231 = (
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than "
     b"block-size data. The key needs to be hashed before being used by the "
     b"HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
)
_RFC4231_CASE5 = (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b")


def _hex(b):
    return binascii.hexlify(b).decode()


def _lcg_bytes(seed, n):
    out = bytearray(n)
    x = seed & 0x7FFFFFFF
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return out


def test_rfc4231_vectors():
    for key, data, want in _RFC4231:
        h = Hmac(key)
        assert _hex(h.digest(data, len(data))) == want, key
        assert _hex(h.mac(data, len(data))) == want[:2 * TAG_LEN]


def test_rfc4231_truncated_case5():
    key, data, want = _RFC4231_CASE5
    assert _hex(Hmac(key).mac(data, len(data))) == want


def test_prefix_of_longer_buffer():
    # n < len(buf): only buf[:n] is authenticated, in bytes, bytearray and memoryview.
    key, data, want = _RFC4231[1]
    h = Hmac(key)
    for buf in (data + b"trailing junk", bytearray(data + b"xyz"), memoryview(bytearray(data + b"!"))):
        assert _hex(h.digest(buf, len(data))) == want
    # The same buffer object twice in a row (the cached view on MicroPython).
    buf = bytearray(data + b"\x00" * 10)
    assert _hex(h.digest(buf, len(data))) == want
    assert _hex(h.digest(buf, len(data))) == want


def test_mac_into_and_verify():
    h = Hmac(b"cluster secret")
    buf = _lcg_bytes(7, 100 + TAG_LEN)
    h.mac_into(buf, 100, buf, 100)
    assert bytes(buf[100:]) == h.mac(buf, 100)
    assert h.verify(buf, 100, 100)
    for i in range(100 + TAG_LEN):
        buf[i] ^= 0x01
        assert not h.verify(buf, 100, 100), i
        buf[i] ^= 0x01
    assert h.verify(buf, 100, 100)
    assert not Hmac(b"other secret").verify(buf, 100, 100)


def test_verify_bad_offsets_are_false_not_errors():
    h = Hmac(b"k")
    buf = bytearray(40)
    assert not h.verify(buf, 30, 30)  # tag would run past the end
    assert not h.verify(buf, 41, 0)
    assert not h.verify(buf, -1, 0)
    assert not h.verify(buf, 10, -1)


def test_bad_lengths_raise_value_error():
    h = Hmac(b"k")
    for n in (-1, 11):
        try:
            h.digest(bytearray(10), n)
        except ValueError:
            pass
        else:
            assert False, n


def test_against_cpython_hmac():
    try:
        import hashlib
        import hmac
    except ImportError:
        return  # MicroPython: the RFC vectors above are the reference
    for klen in (0, 1, 31, 32, 63, 64, 65, 100, 200):
        key = bytes(_lcg_bytes(klen + 1, klen))
        h = Hmac(key)
        for dlen in (0, 1, 55, 56, 63, 64, 65, 1000, 1400):
            data = bytes(_lcg_bytes(dlen * 3 + klen, dlen))
            want = hmac.new(key, data, hashlib.sha256).digest()
            assert h.digest(data, dlen) == want, (klen, dlen)
            assert h.mac(bytearray(data) + b"pad", dlen) == want[:TAG_LEN]


def test_same_tags_as_recorded_on_other_interpreter():
    # Recorded once with CPython's hmac module; MicroPython must agree.
    key = bytes(_lcg_bytes(99, 32))
    data = _lcg_bytes(5, 1000)
    assert _hex(Hmac(key).mac(data, 1000)) == _RECORDED_1000


_RECORDED_1000 = "ca3ce1d8ae311be50a41398c05cfffbb"
