"""KVStateMachine snapshot/restore and digest: deterministic, corrupt input refused."""
import binascii
import struct

from raft.errors import DecodeError, OverLimit
from raftkv import codec
from raftkv.kv import KVStateMachine

# Snapshot of _history(): the same bytes on CPython and MicroPython. A change
# here is a snapshot format change: bump the magic's version byte
# (raftapp/session.py; "RSM\x01" since the session layer became generic,
# "RSM\x02" since the snapshot carries the cluster's limits: 87 -> 104 bytes).
_GOLDEN_SNAPSHOT_LEN = 104
_GOLDEN_DIGEST = "c8f7450d936663d3"


def _history():
    cmds = [codec.encode_register(), codec.encode_register()]
    a, b = 1, 2
    cmds += [
        codec.encode_put(a, 1, b"zeta", b"26"),
        codec.encode_put(a, 2, b"alpha", b"1"),
        codec.encode_put(b, 1, b"mid", b"13"),
        codec.encode_cas(b, 2, b"alpha", b"1", b"one"),
        codec.encode_put(a, 3, b"", b"empty key"),
        codec.encode_delete(b, 3, b"mid"),
        codec.encode_get(a, 4, b"alpha"),
    ]
    return cmds


def _run(sm, cmds, start=1):
    out = []
    for i, c in enumerate(cmds):
        out.append(sm.apply(start + i, c))
    return out


def _filled():
    sm = KVStateMachine()
    _run(sm, _history())
    return sm


def test_snapshot_restore_round_trip_same_digest_and_bytes():
    sm = _filled()
    snap = sm.snapshot()
    assert len(snap) == sm.snapshot_size() == _GOLDEN_SNAPSHOT_LEN
    other = KVStateMachine()
    other.restore(snap)
    assert other.digest() == sm.digest() == _GOLDEN_DIGEST
    assert other.snapshot() == snap
    assert other.applied_index == sm.applied_index == len(_history())
    assert other.get_local(b"alpha") == b"one" and other.get_local(b"") == b"empty key"
    assert other.get_local(b"mid") is None


def test_snapshot_is_independent_of_insertion_order():
    x = KVStateMachine()
    y = KVStateMachine()
    c = codec.decode_client_id(x.apply(1, codec.encode_register()))
    y.apply(1, codec.encode_register())
    keys = [b"k%d" % i for i in range(30)]
    for i, k in enumerate(keys):
        x.apply(2 + i, codec.encode_put(c, 1 + i, k, k))
    # same final content, same last seq and activity, different insertion order
    rev = list(reversed(keys))
    for i, k in enumerate(rev):
        y.apply(2 + i, codec.encode_put(c, 1 + i, k, k))
    assert x.snapshot() == y.snapshot() and x.digest() == y.digest()


def test_restored_machine_behaves_identically_including_cached_results():
    sm = _filled()
    other = KVStateMachine()
    other.restore(sm.snapshot())
    n = sm.applied_index
    a, b = 1, 2
    follow = [
        codec.encode_get(a, 4, b"alpha"),  # duplicate of a cached GET result
        codec.encode_delete(b, 3, b"mid"),  # duplicate: cached OK, not NOT_FOUND
        codec.encode_put(a, 3, b"alpha", b"x"),  # stale
        codec.encode_put(a, 5, b"new", b"v"),
        codec.encode_register(),
        codec.encode_put(99, 1, b"q", b"q"),  # unknown session
    ]
    r1 = _run(sm, follow, n + 1)
    r2 = _run(other, follow, n + 1)
    assert r1 == r2
    assert codec.decode_result(r1[0]) == (codec.OK, b"one")
    assert codec.decode_result(r1[1]) == (codec.OK, None)
    assert codec.decode_result(r1[2])[0] == codec.STALE_SEQ
    assert sm.digest() == other.digest()


def test_snapshot_into_buffer():
    sm = _filled()
    buf = bytearray(sm.snapshot_size() + 10)
    n = sm.snapshot_into(buf)
    assert bytes(buf[:n]) == sm.snapshot()
    try:
        sm.snapshot_into(bytearray(5))
    except ValueError:
        pass
    else:
        assert False


class _Stream:
    def __init__(self):
        self.parts = []

    def write(self, b):
        self.parts.append(bytes(b))  # the writer reuses its scratch buffer
        return len(b)


def test_snapshot_write_streams_the_same_bytes():
    sm = _filled()
    out = _Stream()
    n = sm.snapshot_write(out)
    assert b"".join(out.parts) == sm.snapshot() and n == sm.snapshot_size()
    assert len(out.parts) > 3  # record by record, not one big buffer


def _assert_refused(sm, data):
    before = sm.snapshot()
    try:
        sm.restore(data)
    except DecodeError:
        assert sm.snapshot() == before
        return
    assert False, "restore accepted %r" % (data,)


def test_corrupt_snapshot_raises_and_keeps_old_state():
    sm = _filled()
    snap = sm.snapshot()
    target = KVStateMachine()
    _run(target, [codec.encode_register(), codec.encode_put(1, 1, b"mine", b"1")])
    for cut in range(0, len(snap), 7):
        _assert_refused(target, snap[:cut])
    for i in range(len(snap)):
        flipped = bytearray(snap)
        flipped[i] ^= 0x41
        _assert_refused(target, bytes(flipped))
    _assert_refused(target, snap + b"\x00")
    _assert_refused(target, b"")
    assert target.get_local(b"mine") == b"1" and target.applied_index == 2


def _assert_over_limit(sm, data, why):
    before = sm.snapshot()
    try:
        sm.restore(data)
    except OverLimit as e:
        assert e.args == why, e.args
        assert sm.snapshot() == before
        return
    assert False, "restore accepted %r" % (data,)


def test_snapshot_beyond_local_capacity_is_over_limit_and_its_limits_are_adopted():
    sm = _filled()
    # 3 keys into a node that holds 2: not corrupt, over this node's limit.
    small = KVStateMachine(max_keys=2)
    _assert_over_limit(small, sm.snapshot(), ("snapshot", 3, "keys", 2))
    assert small.limits() == (64, 64, 256, 2)  # (sessions, key, value, keys)
    # The limits are the cluster's, carried in the snapshot: a node set up
    # with other ones adopts them when it can hold the content.
    tiny = KVStateMachine(max_key=3, max_value=2, max_keys=5, max_sessions=9)
    tiny.restore(sm.snapshot())
    assert tiny.limits() == sm.limits() == (64, 64, 256, 256)
    assert tiny.digest() == sm.digest()
    # A snapshot from before limits ("RSM\x01", no limits record) restores
    # under this node's own limits, and one beyond them is over the limit.
    old = _v1(sm.snapshot())
    v1 = KVStateMachine()
    v1.restore(old)
    assert v1.get_local(b"alpha") == b"one" and v1.limits() == (64, 64, 256, 256)
    _assert_over_limit(KVStateMachine(max_keys=2), old, ("snapshot", 3, "keys", 2))
    _assert_over_limit(KVStateMachine(max_sessions=1), old,
                       ("snapshot", 2, "sessions", 1))


def _v1(snap):
    """The same state as a "RSM\x01" snapshot: no max_sessions, no limits record."""
    k = snap[16]
    b = bytearray(b"RSM\x01" + snap[4:12] + snap[17 + 4 * k:-4] + b"\x00\x00\x00\x00")
    return _recrc(b)


def test_empty_machine_snapshot():
    sm = KVStateMachine()
    other = KVStateMachine()
    _run(other, _history())
    other.restore(sm.snapshot())
    assert other.applied_index == 0 and len(other) == 0 and other.session_count() == 0
    assert other.digest() == sm.digest()
    assert len(sm.digest()) == 16


def _recrc(snap):
    end = len(snap) - 4
    struct.pack_into("<I", snap, end, binascii.crc32(bytes(snap[:end])) & 0xFFFFFFFF)
    return bytes(snap)


def test_structurally_bad_snapshot_with_valid_crc_is_refused():
    sm = _filled()
    snap = sm.snapshot()
    target = _filled()
    # header: sessions count 2 at offset 8; the store's image (keys count 3
    # first) ends just before the crc
    k = len(snap) - 4 - sm.app.snapshot_size()
    for off, val in ((k, 4), (k, 2), (8, 3), (8, 1), (k, 10 ** 6)):
        bad = bytearray(snap)
        struct.pack_into("<I", bad, off, val)
        _assert_refused(target, _recrc(bad))
    bad = bytearray(snap)
    bad[3] = 3  # future format version
    _assert_refused(target, _recrc(bad))
    # extra bytes inside the checksum
    _assert_refused(target, _recrc(bytearray(snap[:-4] + b"\x00\x00\x00\x00\x00")))
    # duplicate key: two machines' key records spliced
    dup = KVStateMachine()
    _run(dup, [codec.encode_register(), codec.encode_put(1, 1, b"k", b"1")])
    s = bytearray(dup.snapshot())
    k = len(s) - 4 - dup.app.snapshot_size()  # keys count, then the records
    rec = bytes(s[k + 4:k + 4 + 5])  # klen, vlen, "k", "1"
    s = s[:k + 4 + 5] + rec + s[k + 4 + 5:]
    struct.pack_into("<I", s, k, 2)
    _assert_refused(target, _recrc(bytearray(s)))
    # a cached result that is not a valid result
    s = bytearray(sm.snapshot())
    k = len(s) - 4 - sm.app.snapshot_size()
    assert s[k - 1] == 0  # session 2's cached result is the 1-byte OK, just before the store
    s[k - 1] = 0xFF  # a value flag without the value's length
    _assert_refused(target, _recrc(s))
