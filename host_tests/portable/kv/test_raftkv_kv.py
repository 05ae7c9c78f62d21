"""KVStateMachine: operations, limits, exactly-once sessions (dissertation 6.3)."""
from raft.errors import ConfigError
from raftkv import codec
from raftkv.codec import (OK, NOT_FOUND, CAS_FAILED, SESSION_EXPIRED, STALE_SEQ,
                          TOO_LARGE, MALFORMED, FULL)
from raftkv.kv import KVStateMachine


class _Log:
    """Appends commands at increasing indexes, like committed Raft entries."""

    def __init__(self, sm):
        self.sm = sm
        self.index = 0

    def apply(self, data):
        self.index += 1
        return codec.decode_result(self.sm.apply(self.index, data))

    def register(self):
        self.index += 1
        return codec.decode_client_id(self.sm.apply(self.index, codec.encode_register()))


def _new(**kw):
    sm = KVStateMachine(**kw)
    return sm, _Log(sm)


def test_put_get_delete():
    sm, log = _new()
    c = log.register()
    assert c == 1  # client id is the REGISTER entry's index
    assert log.apply(codec.encode_get(c, 1, b"a")) == (NOT_FOUND, None)
    assert log.apply(codec.encode_put(c, 2, b"a", b"1")) == (OK, None)
    assert log.apply(codec.encode_get(c, 3, b"a")) == (OK, b"1")
    assert sm.get_local(b"a") == b"1"
    assert sm.get_local(bytearray(b"a")) == b"1"
    assert log.apply(codec.encode_put(c, 4, b"a", b"")) == (OK, None)
    assert sm.get_local(b"a") == b""
    assert log.apply(codec.encode_delete(c, 5, b"a")) == (OK, None)
    assert sm.get_local(b"a") is None
    assert log.apply(codec.encode_delete(c, 6, b"a")) == (NOT_FOUND, None)
    assert sm.applied_index == log.index == 7


def test_cas():
    sm, log = _new()
    c = log.register()
    assert log.apply(codec.encode_cas(c, 1, b"k", b"x", b"1")) == (CAS_FAILED, None)
    assert sm.get_local(b"k") is None
    assert log.apply(codec.encode_cas(c, 2, b"k", None, b"1")) == (OK, None)
    assert log.apply(codec.encode_cas(c, 3, b"k", None, b"2")) == (CAS_FAILED, b"1")
    assert log.apply(codec.encode_cas(c, 4, b"k", b"0", b"2")) == (CAS_FAILED, b"1")
    assert log.apply(codec.encode_cas(c, 5, b"k", b"1", b"2")) == (OK, None)
    assert sm.get_local(b"k") == b"2"


def test_oversize_is_too_large_and_changes_nothing():
    sm, log = _new(max_key=4, max_value=8)
    c = log.register()
    d0 = sm.digest()
    for cmd in (codec.encode_put(c, 1, b"12345", b"v"),
                codec.encode_put(c, 1, b"k", b"123456789"),
                codec.encode_cas(c, 1, b"k", b"123456789", b"v"),
                codec.encode_cas(c, 1, b"k", None, b"123456789"),
                codec.encode_get(c, 1, b"12345")):
        assert log.apply(cmd) == (TOO_LARGE, None)
    assert sm.too_large == 5
    # only applied_index moved; the session may reuse seq 1
    assert log.apply(codec.encode_put(c, 1, b"k", b"12345678")) == (OK, None)
    sm2, log2 = _new(max_key=4, max_value=8)
    log2.register()
    sm2.skip(log.index - 1)
    assert sm2.apply(log.index, codec.encode_put(c, 1, b"k", b"12345678")) == b"\x00"
    assert sm2.digest() == sm.digest() != d0


def test_max_keys_full_is_cached_and_bounded():
    sm, log = _new(max_keys=2)
    c = log.register()
    assert log.apply(codec.encode_put(c, 1, b"a", b"1")) == (OK, None)
    assert log.apply(codec.encode_put(c, 2, b"b", b"1")) == (OK, None)
    full = codec.encode_put(c, 3, b"c", b"1")
    assert log.apply(full) == (FULL, None)
    assert log.apply(codec.encode_cas(c, 4, b"c", None, b"1")) == (FULL, None)
    assert log.apply(codec.encode_put(c, 5, b"a", b"2")) == (OK, None)  # overwrite ok
    assert len(sm) == 2 and sm.get_local(b"c") is None
    assert log.apply(codec.encode_delete(c, 6, b"b")) == (OK, None)
    assert log.apply(codec.encode_put(c, 7, b"c", b"1")) == (OK, None)


def test_malformed_commands_give_malformed_and_never_raise():
    sm, log = _new()
    c = log.register()
    log.apply(codec.encode_put(c, 1, b"a", b"1"))
    good = codec.encode_put(c, 2, b"key", b"value")
    bad = [b"", b"\x00", b"\xff" * 30, good + b"x"]
    for cut in range(1, len(good)):
        bad.append(good[:cut])
    state = 12345
    for _ in range(200):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        n = state % 48
        b = bytearray(n)
        for i in range(n):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            b[i] = (state >> 16) & 0xFF
        if n:
            b[0] = 2 + b[0] % 4  # valid op so the body parser gets exercised
        bad.append(bytes(b))
    malformed = 0
    for data in bad:
        r = log.apply(data)  # must not raise
        if r[0] == MALFORMED:
            malformed += 1
    assert malformed == sm.malformed >= len(good) + 3
    # random bodies that happen to decode are from unknown clients or stale
    assert sm.get_local(b"a") == b"1" and len(sm) == 1


def test_exactly_once_on_retry():
    sm, log = _new()
    c = log.register()
    log.apply(codec.encode_put(c, 1, b"n", b"0"))
    inc = codec.encode_cas(c, 2, b"n", b"0", b"1")
    assert log.apply(inc) == (OK, None)
    d1 = sm.digest()
    # the same entry bytes committed again at a later index: one effect
    assert log.apply(inc) == (OK, None)
    assert log.apply(inc) == (OK, None)
    assert sm.get_local(b"n") == b"1" and sm.duplicates == 2
    get = codec.encode_get(c, 3, b"n")
    assert log.apply(get) == (OK, b"1")
    log2_put = codec.encode_put(c, 4, b"n", b"9")
    assert log.apply(log2_put) == (OK, None)
    # a retried GET after the value changed would be stale, not re-read
    assert log.apply(get) == (STALE_SEQ, None)
    assert log.apply(log2_put) == (OK, None)
    assert sm.get_local(b"n") == b"9"
    assert d1 != sm.digest()


def test_stale_seq_and_seq_zero():
    sm, log = _new()
    c = log.register()
    assert log.apply(codec.encode_put(c, 0, b"a", b"1")) == (STALE_SEQ, None)
    assert log.apply(codec.encode_put(c, 5, b"a", b"1")) == (OK, None)
    assert log.apply(codec.encode_put(c, 4, b"a", b"2")) == (STALE_SEQ, None)
    assert log.apply(codec.encode_put(c, 9, b"a", b"3")) == (OK, None)  # gaps allowed
    assert sm.get_local(b"a") == b"3"


def test_unknown_session_is_expired_and_applies_nothing():
    sm, log = _new()
    d0 = sm.digest()
    assert log.apply(codec.encode_put(42, 1, b"a", b"1")) == (SESSION_EXPIRED, None)
    assert sm.get_local(b"a") is None
    sm2 = KVStateMachine()
    sm2.skip(log.index)
    assert sm.digest() == sm2.digest() and d0 != sm.digest()


def test_sessions_are_independent():
    sm, log = _new()
    a = log.register()
    b = log.register()
    assert a != b
    assert log.apply(codec.encode_put(a, 1, b"k", b"a")) == (OK, None)
    assert log.apply(codec.encode_put(b, 1, b"k", b"b")) == (OK, None)
    assert sm.get_local(b"k") == b"b"


def test_eviction_oldest_activity_then_lowest_id():
    sm, log = _new(max_sessions=3)
    a = log.register()  # 1
    b = log.register()  # 2
    c = log.register()  # 3
    log.apply(codec.encode_put(a, 1, b"x", b"1"))  # a active at 4
    d = log.register()  # evicts b (activity 2)
    assert sm.session_count() == 3 and sm.evictions == 1
    assert log.apply(codec.encode_put(b, 1, b"y", b"1")) == (SESSION_EXPIRED, None)
    assert sm.get_local(b"y") is None
    e = log.register()  # evicts c (activity 3)
    assert log.apply(codec.encode_get(c, 1, b"x")) == (SESSION_EXPIRED, None)
    assert log.apply(codec.encode_get(a, 2, b"x")) == (OK, b"1")
    assert log.apply(codec.encode_get(d, 1, b"x")) == (OK, b"1")
    assert log.apply(codec.encode_get(e, 1, b"x")) == (OK, b"1")
    # a duplicate retry also counts as activity
    assert log.apply(codec.encode_get(d, 1, b"x")) == (OK, b"1")
    f = log.register()  # oldest now: a (activity 12)... then e, d
    assert log.apply(codec.encode_get(a, 3, b"x")) == (SESSION_EXPIRED, None)
    assert log.apply(codec.encode_get(f, 1, b"x")) == (OK, b"1")


def test_eviction_tie_breaks_on_lowest_id():
    sm = KVStateMachine(max_sessions=2)
    # two sessions with equal activity can only arise via restore; build one
    sm.apply(1, codec.encode_register())
    sm.apply(2, codec.encode_register())
    snap = bytearray(sm.snapshot())
    # the session table follows the 17-byte header and the store's three
    # limits (raftapp/session.py): set both activities to 2 and re-crc
    import binascii
    import struct
    end = len(snap) - 4
    rec1 = 17 + 4 * 3
    struct.pack_into("<I", snap, rec1 + 8, 2)
    struct.pack_into("<I", snap, end, binascii.crc32(bytes(snap[:end])) & 0xFFFFFFFF)
    sm.restore(bytes(snap))
    sm.apply(3, codec.encode_register())
    assert codec.decode_result(sm.apply(4, codec.encode_get(1, 1, b"k")))[0] == SESSION_EXPIRED
    assert codec.decode_result(sm.apply(5, codec.encode_get(2, 1, b"k")))[0] == NOT_FOUND


def test_replayed_index_is_ignored_and_counted():
    sm, log = _new()
    c = log.register()
    log.apply(codec.encode_put(c, 1, b"a", b"1"))
    assert sm.apply(2, codec.encode_put(c, 2, b"a", b"2")) is None
    assert sm.apply(1, codec.encode_register()) is None
    assert sm.stale_applies == 2 and sm.get_local(b"a") == b"1"
    sm.skip(10)
    assert sm.applied_index == 10
    sm.skip(3)
    assert sm.applied_index == 10


def test_bad_config_raises_config_error():
    for kw in ({"max_key": 0}, {"max_key": 256}, {"max_value": -1},
               {"max_value": 70000}, {"max_keys": 0}, {"max_sessions": 0}):
        try:
            KVStateMachine(**kw)
        except ConfigError:
            continue
        assert False, kw


def test_stats():
    sm, log = _new()
    c = log.register()
    log.apply(b"\x00")
    log.apply(codec.encode_put(c, 1, b"a", b"1"))
    st = sm.stats()
    assert st["keys"] == 1 and st["sessions"] == 1 and st["malformed"] == 1
    assert st["applied"] == 3


def test_stored_bytes_do_not_alias_the_callers_buffer():
    sm, log = _new()
    c = log.register()
    buf = bytearray(codec.max_command_len(64, 256))
    n = codec.encode_put_into(buf, c, 1, b"key", b"value")
    assert sm.apply(2, memoryview(buf)[:n]) == b"\x00"
    codec.encode_put_into(buf, c, 2, b"KEY", b"VALUE")  # the runtime reuses it
    assert sm.get_local(b"key") == b"value" and sm.get_local(b"KEY") is None
