"""The Raft message codec (raft/msg.py): round trips and hostile bytes.

Every message type round-trips through encode/decode; truncated, bit-flipped
and random byte strings raise DecodeError and nothing else; whatever does
decode re-encodes to the very same bytes (one encoding per message).
Seeded, so a failure names the case that reproduces it.
"""
from raft import msg as M
from raft.errors import DecodeError
from raftnet import Rand

_FIELDS = ("type", "flags", "to", "frm", "term", "log_term", "index", "commit", "hint",
           "hint_term", "ctx")


def _rand_msg(rnd, t):
    big = 0x7FFFFFFF
    m = M.Message(t, 1 + rnd.below(0xFFFF), 1 + rnd.below(0xFFFF),
                  rnd.below(big), rnd.below(big), rnd.below(big - 100), rnd.below(big),
                  rnd.below(big), rnd.below(big), rnd.below(0xFFFFFFFF), flags=rnd.below(8))
    if t == M.APP:
        n = rnd.below(5)
        ents = []
        for k in range(n):
            d = bytes(rnd.below(256) for _ in range(rnd.below(40)))
            ents.append((m.index + 1 + k, rnd.below(big), rnd.below(2), d))
        m.entries = ents
    elif t == M.SNAP:
        m.data = bytes(rnd.below(256) for _ in range(rnd.below(200)))
    return m


def _same(a, b):
    for f in _FIELDS:
        if getattr(a, f) != getattr(b, f):
            return False
    return list(a.entries) == list(b.entries) and bytes(a.data) == bytes(b.data)


def _decode_or_none(b, case):
    try:
        m = M.decode(b)
    except DecodeError:
        return None
    except Exception as e:
        raise AssertionError("case %r: %r raised %r" % (case, bytes(b), e))
    # Canonical: what decodes re-encodes to the same bytes.
    assert M.encode(m) == bytes(b), case
    return m


def test_every_type_round_trips():
    rnd = Rand(1)
    for t in range(1, 14):
        for k in range(30):
            m = _rand_msg(rnd, t)
            b = M.encode(m)
            assert len(b) == M.encoded_size(m)
            m2 = M.decode(b)
            assert _same(m, m2), (t, k, m, m2)
            # decode_into reuses the record and clears old entries/data.
            M.decode_into(m2, b, len(b))
            assert _same(m, m2)
    # Offsets and lengths inside a bigger buffer.
    m = _rand_msg(rnd, M.APP)
    buf = bytearray(600)
    n = M.encode_into(m, buf, 17)
    assert _same(M.decode_into(M.Message(), buf, n, 17), m)


def test_decode_into_reused_record_after_app():
    m = M.Message(M.APP, 2, 1, 3, entries=[(1, 3, 0, b"a")])
    rec = M.decode(M.encode(m))
    M.decode_into(rec, M.encode(M.Message(M.HEARTBEAT, 2, 1, 3)), M.HEADER_SIZE)
    assert rec.type == M.HEARTBEAT and rec.entries == [] and rec.data == b""


def test_truncated_raise_decode_error():
    rnd = Rand(2)
    for k in range(300):
        m = _rand_msg(rnd, 1 + rnd.below(13))
        b = M.encode(m)
        for cut in range(0, len(b), 1 + len(b) // 12):
            assert _decode_or_none(b[:cut], ("trunc", k, cut)) is None
        # And trailing garbage.
        assert _decode_or_none(b + b"\x00", ("trail", k)) is None


def test_bit_flips_raise_only_decode_error():
    rnd = Rand(3)
    n = 0
    for k in range(3000):
        m = _rand_msg(rnd, 1 + rnd.below(13))
        b = bytearray(M.encode(m))
        for _ in range(1 + rnd.below(3)):
            p = rnd.below(len(b))
            b[p] ^= 1 << rnd.below(8)
        if _decode_or_none(b, ("flip", k)) is None:
            n += 1
    # Many flips hit checked fields (type, flags, lengths, kinds, ranges).
    assert n > 300, n


def test_random_bytes_raise_only_decode_error():
    rnd = Rand(4)
    ok = 0
    for k in range(3000):
        ln = rnd.below(80)
        b = bytes(rnd.below(256) for _ in range(ln))
        if _decode_or_none(b, ("rand", k)) is not None:
            ok += 1
    # Random headers almost never form a valid message.
    assert ok < 100, ok


def test_field_ranges_rejected():
    m = M.Message(M.HEARTBEAT, 2, 1, 5)
    b = bytearray(M.encode(m))
    for off, val in ((0, 0), (0, 14), (0, 255), (1, 8)):
        c = bytearray(b)
        c[off] = val
        assert _decode_or_none(c, ("field", off, val)) is None
    # A term above 31 bits.
    c = bytearray(b)
    c[9] = 0x80
    assert _decode_or_none(c, "term") is None
