"""raftkv command and result codec: round trips, strictness, DecodeError only."""
from raft.errors import DecodeError
from raftkv import codec
from raftkv.codec import (CAS, DELETE, GET, PUT, REGISTER, OK, NOT_FOUND,
                          CAS_FAILED, SESSION_EXPIRED, STALE_SEQ, TOO_LARGE,
                          MALFORMED, FULL)


def _lcg(seed):
    # Deterministic bytes on both interpreters (no `random` dependency).
    state = [seed & 0x7FFFFFFF]

    def nxt(n):
        out = bytearray(n)
        for i in range(n):
            state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
            out[i] = (state[0] >> 16) & 0xFF
        return bytes(out)
    return nxt


def _raises_decode(fn, *args):
    try:
        fn(*args)
    except DecodeError:
        return True
    return False


def _all_commands():
    return [
        (codec.encode_register(), (REGISTER, 0, 0, None, None, None)),
        (codec.encode_put(7, 1, b"k", b"v"), (PUT, 7, 1, b"k", b"v", None)),
        (codec.encode_put(0xFFFFFFFF, 0xFFFFFFFF, b"", b""),
         (PUT, 0xFFFFFFFF, 0xFFFFFFFF, b"", b"", None)),
        (codec.encode_get(9, 2, b"key"), (GET, 9, 2, b"key", None, None)),
        (codec.encode_delete(9, 3, b"key"), (DELETE, 9, 3, b"key", None, None)),
        (codec.encode_cas(9, 4, b"k", b"old", b"new"), (CAS, 9, 4, b"k", b"new", b"old")),
        (codec.encode_cas(9, 5, b"k", None, b"new"), (CAS, 9, 5, b"k", b"new", None)),
        (codec.encode_cas(9, 6, b"k", b"", b""), (CAS, 9, 6, b"k", b"", b"")),
    ]


def test_command_round_trip_every_op():
    for data, want in _all_commands():
        assert codec.decode_command(data) == want, (data, want)


def test_command_sizes_are_compact():
    assert len(codec.encode_register()) == 1
    assert len(codec.encode_put(1, 1, b"ab", b"cde")) == 12 + 5
    assert len(codec.encode_get(1, 1, b"ab")) == 10 + 2
    assert len(codec.encode_cas(1, 1, b"k", b"o", b"nn")) == 15 + 4
    assert codec.max_command_len(64, 256) == 15 + 64 + 512


def test_encode_into_preallocated_buffer_with_offset():
    buf = bytearray(codec.max_command_len(64, 256) + 5)
    n = codec.encode_put_into(buf, 3, 4, b"key", b"value", 5)
    assert bytes(buf[5:5 + n]) == codec.encode_put(3, 4, b"key", b"value")
    assert codec.decode_command(buf, 5, n) == (PUT, 3, 4, b"key", b"value", None)
    n = codec.encode_cas_into(buf, 3, 5, b"key", None, b"z")
    assert bytes(buf[:n]) == codec.encode_cas(3, 5, b"key", None, b"z")
    n = codec.encode_delete_into(buf, 3, 6, b"key")
    assert bytes(buf[:n]) == codec.encode_delete(3, 6, b"key")
    n = codec.encode_get_into(buf, 3, 7, b"key")
    assert bytes(buf[:n]) == codec.encode_get(3, 7, b"key")
    # memoryview input decodes the same
    assert codec.decode_command(memoryview(buf), 0, n) == (GET, 3, 7, b"key", None, None)
    assert codec.encode_register_into(buf, 2) == 1 and buf[2] == REGISTER


def test_encode_rejects_fields_beyond_wire_limits():
    for fn, args in ((codec.encode_put, (1, 1, b"k" * 256, b"")),
                     (codec.encode_put, (1, 1, b"k", b"v" * 65536)),
                     (codec.encode_get, (-1, 1, b"k")),
                     (codec.encode_delete, (1, 1 << 32, b"k"))):
        try:
            fn(*args)
        except ValueError:
            continue
        assert False, "no ValueError for %r" % (fn,)


def test_every_truncation_raises_decode_error():
    for data, _ in _all_commands():
        for cut in range(len(data)):
            assert _raises_decode(codec.decode_command, data[:cut]), (data, cut)


def test_trailing_bytes_and_bad_fields_raise_decode_error():
    for data, _ in _all_commands():
        assert _raises_decode(codec.decode_command, data + b"\x00")
    assert _raises_decode(codec.decode_command, b"\x00")  # op 0
    assert _raises_decode(codec.decode_command, b"\x09" + b"\x00" * 20)  # unknown op
    cas = bytearray(codec.encode_cas(1, 1, b"k", b"o", b"n"))
    cas[10] = 0x03  # unknown flag bit
    assert _raises_decode(codec.decode_command, cas)
    cas = bytearray(codec.encode_cas(1, 1, b"k", None, b"n"))
    cas[11] = 1  # olen set while "old absent"
    assert _raises_decode(codec.decode_command, bytes(cas) + b"x")
    assert _raises_decode(codec.decode_command, b"abc", 2, 5)  # region past end
    assert _raises_decode(codec.decode_command, b"abc", -1, 1)


def test_random_bytes_only_ever_raise_decode_error():
    rnd = _lcg(1)
    for i in range(400):
        n = rnd(1)[0] % 40
        data = rnd(n)
        if n and i % 2:
            data = bytes((2 + data[0] % 4,)) + data[1:]  # valid op, random body
        try:
            codec.decode_command(data)
        except DecodeError:
            pass
        try:
            codec.decode_result(data)
        except DecodeError:
            pass


def test_result_round_trip_every_status():
    for st in (OK, NOT_FOUND, CAS_FAILED, SESSION_EXPIRED, STALE_SEQ, TOO_LARGE,
               MALFORMED, FULL):
        assert codec.decode_result(codec.encode_result(st)) == (st, None)
        assert codec.decode_result(codec.encode_result(st, b"val")) == (st, b"val")
        assert codec.decode_result(codec.encode_result(st, b"")) == (st, b"")
        assert codec.status_name(st) != ""
    buf = bytearray(codec.max_result_len(256) + 4)
    n = codec.encode_result_into(buf, OK, b"xyz", 4)
    assert codec.decode_result(buf, 4, n) == (OK, b"xyz")


def test_bad_results_raise_decode_error():
    assert _raises_decode(codec.decode_result, b"")
    assert _raises_decode(codec.decode_result, b"\x08")  # unknown status
    assert _raises_decode(codec.decode_result, b"\x00\x00")  # trailing
    assert _raises_decode(codec.decode_result, b"\x80\x05\x00ab")  # short value
    assert _raises_decode(codec.decode_result, b"\x80\x01")  # truncated length


def test_client_id_result():
    r = codec.encode_result(OK, codec.encode_client_id(123456))
    assert codec.decode_client_id(r) == 123456
    assert _raises_decode(codec.decode_client_id, codec.encode_result(NOT_FOUND))
    assert _raises_decode(codec.decode_client_id, codec.encode_result(OK, b"abc"))
