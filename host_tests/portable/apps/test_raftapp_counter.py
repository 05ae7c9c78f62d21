"""raftapp.counter: the smallest application machine, under sessions."""
from raft.errors import DecodeError
from raftapp import counter as C
from raftapp.session import MALFORMED, OK, decode_result


def _run(sm, cmds, start=1):
    return [sm.apply(start + i, c) for i, c in enumerate(cmds)]


def test_add_and_get_through_a_session():
    sm = C.machine()
    res = _run(sm, [b"\x01", C.encode_add(1, 1, 5), C.encode_add(1, 2, -7),
                    C.encode_add(1, 2, -7), C.encode_get()])
    assert [C.decode_value(r) for r in res[1:]] == [5, -2, -2, -2]
    assert sm.app.value == -2 and sm.duplicates == 1
    assert sm.is_read(C.encode_get()) and not sm.is_read(C.encode_add(1, 3, 1))
    assert C.decode_value(sm.query(C.encode_get())) == -2


def test_overflow_is_refused_and_changes_nothing():
    sm = C.machine()
    big = 0x7FFFFFFF
    sm.app.value = 0x7FFFFFFFFFFFFFFF - big
    r = sm.apply(1, C.encode_add(0, 0, big))
    assert C.decode_value(r) == 0x7FFFFFFFFFFFFFFF
    assert decode_result(sm.apply(2, C.encode_add(0, 0, 1))) == (C.OVERFLOW, None)
    assert sm.app.value == 0x7FFFFFFFFFFFFFFF


def test_bad_commands_are_malformed():
    sm = C.machine()
    for i, bad in enumerate((C.encode_add(0, 0, 1)[:-1], C.encode_get() + b"x",
                             b"\x09" + C.encode_get()[1:])):
        assert decode_result(sm.apply(1 + i, bad)) == (MALFORMED, None)
        try:
            sm.is_read(bad)
        except DecodeError:
            continue
        assert False
    assert sm.app.value == 0


def test_snapshot_round_trip_and_refusal():
    sm = C.machine()
    _run(sm, [b"\x01", C.encode_add(1, 1, 41), C.encode_add(0, 0, 1)])
    other = C.machine()
    other.restore(sm.snapshot())
    assert other.app.value == 42 and other.snapshot() == sm.snapshot()
    assert C.decode_value(other.apply(4, C.encode_add(1, 1, 41))) == 41  # cached result
    try:
        C.Counter().restore(b"\x00" * 7)
    except DecodeError:
        pass
    else:
        assert False


def test_client_encoders():
    assert C.encode_get() == b"\x03" + b"\x00" * 8
    assert len(C.encode_add(1, 2, -1)) == 13
    for bad in ((C.encode_add, (-1, 1, 1)), (C.encode_add, (1, 1, 1 << 31))):
        try:
            bad[0](*bad[1])
        except ValueError:
            continue
        assert False, bad
    try:
        C.decode_value(b"\x09")
    except DecodeError:
        pass
    else:
        assert False
    assert OK == 0
