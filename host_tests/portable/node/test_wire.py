"""Client wire codec (raftio/wire.py): round trips, and bad bytes give DecodeError only."""
from raft import msg as M
from raft.errors import DecodeError
from raftio import wire
from raftkv import codec


def _raises(fn, *args):
    try:
        fn(*args)
    except DecodeError:
        return True
    return False


def test_types_cannot_be_raft_messages():
    for t in (wire.REQUEST, wire.STATUS_Q, wire.RESPONSE, wire.STATUS_R):
        assert wire.is_client_type(t)
        assert t > M.TIMEOUT_NOW
        buf = bytearray(64)
        buf[0] = t
        assert _raises(M.decode_into, M.Message(), buf, 64, 0)
    for t in range(1, M.TIMEOUT_NOW + 1):
        assert not wire.is_client_type(t)


def test_request_round_trip():
    cmd = codec.encode_put(7, 3, b"key", b"value")
    buf = bytearray(200)
    n = wire.encode_request_into(buf, 5, 0x7FFFFFF0, cmd)
    assert n == wire.REQ_HDR + len(cmd)
    t, rid, p, cn = wire.decode_request(buf, 5, n)
    assert (t, rid) == (wire.REQUEST, 0x7FFFFFF0)
    assert bytes(buf[p:p + cn]) == cmd
    assert codec.decode_command(buf, p, cn)[:3] == (codec.PUT, 7, 3)


def test_request_prefix_of_command():
    cmd = bytearray(100)
    k = codec.encode_get_into(cmd, 1, 0, b"abc")
    buf = bytearray(200)
    n = wire.encode_request_into(buf, 0, 9, cmd, k)
    t, rid, p, cn = wire.decode_request(buf, 0, n)
    assert cn == k and codec.decode_command(buf, p, cn)[3] == b"abc"


def test_status_query_round_trip():
    buf = bytearray(16)
    n = wire.encode_status_query_into(buf, 0, 42)
    assert wire.decode_request(buf, 0, n)[:2] == (wire.STATUS_Q, 42)
    buf[n] = 1
    assert _raises(wire.decode_request, buf, 0, n + 1)


def test_response_round_trip():
    buf = bytearray(100)
    res = codec.encode_result(codec.OK, b"v")
    n = wire.encode_response_into(buf, 3, 77, wire.OK, 0, res)
    assert wire.decode_reply(buf, 3, n) == (wire.RESPONSE, 77, wire.OK, 0, res)
    n = wire.encode_response_into(buf, 0, 78, wire.NOT_LEADER, 4)
    assert wire.decode_reply(buf, 0, n) == (wire.RESPONSE, 78, wire.NOT_LEADER, 4, b"")


def test_status_reply_round_trip():
    buf = bytearray(100)
    n = wire.encode_status_into(buf, 0, 5, b'{"id": 1}')
    assert wire.decode_reply(buf, 0, n) == (wire.STATUS_R, 5, wire.OK, 0, b'{"id": 1}')


def test_bad_bytes_raise_decode_error_only():
    buf = bytearray(64)
    for n in range(0, wire.RESP_HDR):
        assert _raises(wire.decode_request, buf, 0, n) or n >= wire.REQ_HDR
    assert _raises(wire.decode_request, buf, 0, 70)  # past the buffer
    buf[0] = wire.REQUEST
    assert _raises(wire.decode_request, buf, 0, wire.REQ_HDR)  # no command
    buf[0] = wire.RESPONSE
    assert _raises(wire.decode_request, buf, 0, 10)  # a reply is not a request
    assert _raises(wire.decode_reply, buf, 0, 6)  # shorter than a response header
    buf[5] = 99
    assert _raises(wire.decode_reply, buf, 0, 10)  # unknown code
    buf[0] = wire.REQUEST
    assert _raises(wire.decode_reply, buf, 0, 10)  # a request is not a reply


def test_fuzz_decoders():
    # Deterministic pseudo-random bytes: every outcome is a value or DecodeError.
    s = 12345
    buf = bytearray(40)
    for _ in range(3000):
        for i in range(40):
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            buf[i] = (s >> 16) & 0xFF
        buf[0] = 64 + (buf[0] & 3)
        n = buf[1] % 41
        for fn in (wire.decode_request, wire.decode_reply):
            try:
                fn(buf, 0, n)
            except DecodeError:
                pass
