"""UDP transport on CPython, loopback only (127.0.0.1, ephemeral ports). Also the clock shim."""
import errno
import random
import socket
import time

import pytest

from raftio import clock
from raftio.frame import HEADER, MAX_DATAGRAM, MAX_PAYLOAD, Framer
from raftio.udp import UdpEndpoint, UdpTransport

KEY = b"test cluster key"
CLUSTER = 42
LOOP = "127.0.0.1"


def _pair(**kw):
    a = UdpTransport(1, {}, CLUSTER, KEY, LOOP, 0, **kw)
    b = UdpTransport(2, {}, CLUSTER, KEY, LOOP, 0)
    a.set_peer(2, LOOP, b.local_port())
    b.set_peer(1, LOOP, a.local_port())
    return a, b


def _recv_wait(t, timeout_ms=1000):
    """The next frame t delivers, or None after timeout_ms (bounded)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        if t.poll(50):
            got = t.recv()
            if got is not None:
                return got
    return None


def _raw_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOOP, 0))
    return s


def test_exchange_both_ways():
    a, b = _pair()
    try:
        assert a.recv() is None and not a.poll(0)  # EAGAIN is not an error
        for i in range(50):
            payload = bytes([i]) * (i * 27 % MAX_PAYLOAD)
            assert a.send_payload(2, payload, len(payload))
            buf, off, n, addr = _recv_wait(b)
            assert off == HEADER and bytes(buf[off:off + n]) == payload
            assert b.last_peer == 1 and addr == (LOOP, a.local_port())

            def writer(tx, off, i=i):
                tx[off:off + 3] = b"ack"
                tx[off + 3] = i
                return 4
            assert b.send(1, writer)
            buf, off, n, _ = _recv_wait(a)
            assert bytes(buf[off:off + n]) == b"ack" + bytes([i]) and a.last_peer == 2
        assert a.sent == b.sent == b.received == a.received == 50
        assert a.counters.total() == 0 and b.counters.total() == 0
    finally:
        a.close()
        b.close()


def test_send_payload_prefix_of_larger_buffer():
    a, b = _pair()
    try:
        data = bytearray(b"0123456789")
        assert a.send_payload(2, data, 4)
        buf, off, n, _ = _recv_wait(b)
        assert bytes(buf[off:off + n]) == b"0123"
        with pytest.raises(ValueError):
            a.send_payload(2, data, 11)
        with pytest.raises(ValueError):
            a.send_payload(2, bytes(MAX_PAYLOAD + 1), MAX_PAYLOAD + 1)
    finally:
        a.close()
        b.close()


def _junk(rng, good_frame, other_cluster_frame, other_key_frame):
    """One datagram that must be dropped: random, mutated, truncated, oversized or foreign."""
    kind = rng.randrange(7)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, MAX_DATAGRAM + 1)))
    if kind == 1:  # flip 1..8 bits of a good frame
        d = bytearray(good_frame)
        for _ in range(rng.randrange(1, 9)):
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
        if d == good_frame:
            d[0] ^= 1
        return bytes(d)
    if kind == 2:
        return good_frame[:rng.randrange(len(good_frame))]
    if kind == 3:  # oversized, with a valid header
        return good_frame[:HEADER] + bytes(rng.randrange(MAX_DATAGRAM - HEADER + 1, 2000))
    if kind == 4:
        return other_cluster_frame
    if kind == 5:
        return other_key_frame
    return good_frame + bytes([rng.randrange(256)])  # trailing byte


def _frame(cluster, key, payload):
    buf = bytearray(MAX_DATAGRAM)
    buf[HEADER:HEADER + len(payload)] = payload
    n = Framer(cluster, key).seal(buf, len(payload))
    return bytes(buf[:n])


def test_thousand_bad_datagrams_all_dropped_and_counted():
    rng = random.Random(1234)
    t = UdpTransport(1, {}, CLUSTER, KEY, LOOP, 0)
    attacker = _raw_socket()  # a listed peer sending garbage: exercises the framer
    t.set_peer(3, LOOP, attacker.getsockname()[1])
    dest = (LOOP, t.local_port())
    good = _frame(CLUSTER, KEY, b"vote request term 9")
    other_cluster = _frame(CLUSTER + 1, KEY, b"vote request term 9")
    other_key = _frame(CLUSTER, b"wrong key", b"vote request term 9")
    delivered = 0
    try:
        for i in range(1000):
            attacker.sendto(_junk(rng, good, other_cluster, other_key), dest)
            # Drain as we go: 1000 datagrams at once could overflow the socket
            # buffer and be lost by the kernel, uncounted.
            deadline = time.monotonic() + 2
            while t.counters.total() + delivered < i + 1 and time.monotonic() < deadline:
                if t.poll(50) and t.recv() is not None:
                    delivered += 1
        c = t.counters.as_dict()
        assert delivered == 0
        assert c["malformed"] + c["bad_mac"] + c["wrong_cluster"] == 1000, c
        assert c["malformed"] > 0 and c["bad_mac"] > 0 and c["wrong_cluster"] > 0, c
        assert c["unknown_peer"] == 0 and t.received == 0
        # Still healthy afterwards.
        attacker.sendto(good, dest)
        buf, off, n, _ = _recv_wait(t)
        assert bytes(buf[off:off + n]) == b"vote request term 9" and t.last_peer == 3
    finally:
        attacker.close()
        t.close()


def test_unknown_sender_counted_before_mac():
    a, b = _pair()
    stranger = _raw_socket()
    try:
        good = _frame(CLUSTER, KEY, b"hello")
        stranger.sendto(good, (LOOP, b.local_port()))
        assert _recv_wait(b, 300) is None
        assert b.counters.unknown_peer == 1 and b.counters.bad_mac == 0
    finally:
        stranger.close()
        a.close()
        b.close()


def test_allow_unknown_delivers_authenticated_client_frames():
    server = UdpTransport(1, {}, CLUSTER, KEY, LOOP, 0, allow_unknown=True)
    client = UdpEndpoint(CLUSTER, KEY)  # port 0
    try:
        dest = ("127.0.0.1", server.local_port())
        assert client.send_payload_to(dest, b"get k", 5)
        buf, off, n, addr = _recv_wait(server)
        assert bytes(buf[off:off + n]) == b"get k" and server.last_peer == 0
        assert server.send_payload_to(addr, b"v", 1)  # reply to whoever asked
        buf, off, n, _ = _recv_wait(client)
        assert bytes(buf[off:off + n]) == b"v"
        # Still authenticated: a forged frame from the client is dropped.
        raw = _raw_socket()
        raw.sendto(_frame(CLUSTER, b"nope", b"x"), dest)
        assert _recv_wait(server, 300) is None and server.counters.bad_mac == 1
        raw.close()
    finally:
        client.close()
        server.close()


class _FailingSocket:
    """Wraps a socket; sendto raises the given errno (link down, EPERM, ...)."""

    def __init__(self, sock, code):
        self._s = sock
        self._code = code

    def sendto(self, data, addr):
        raise OSError(self._code, "injected")

    def __getattr__(self, name):
        return getattr(self._s, name)


def test_send_errors_counted_never_raised():
    a, b = _pair()
    try:
        assert not a.send_payload(9, b"x", 1)  # no such peer
        real = a._sock
        for code in (errno.ENETUNREACH, errno.EPERM, errno.ECONNREFUSED):
            a._sock = _FailingSocket(real, code)
            assert not a.send_payload(2, b"x", 1)
        a._sock = real
        assert a.counters.send_errors == 4 and a.sent == 0
        assert a.send_payload(2, b"x", 1) and a.sent == 1
    finally:
        a.close()
        b.close()


def test_peer_table():
    t = UdpTransport(1, {2: (LOOP, 40002), 3: (LOOP, 40003)}, CLUSTER, KEY, LOOP, 0)
    try:
        assert t.peers() == [2, 3]
        t.set_peer(3, LOOP, 40004)
        t.remove_peer(2)
        assert t.peers() == [3]
        assert t._peer_of == {(LOOP, 40004): 3}
        with pytest.raises(ValueError):
            t.set_peer(0, LOOP, 1)
    finally:
        t.close()
    with pytest.raises(ValueError):
        UdpTransport(1, {2: (LOOP, 1)}, CLUSTER, KEY)  # no own address


def test_bind_from_peer_table():
    probe = _raw_socket()
    port = probe.getsockname()[1]
    probe.close()
    t = UdpTransport(1, {1: (LOOP, port)}, CLUSTER, KEY)
    try:
        assert t.local_port() == port
    finally:
        t.close()


def test_clock_shim_wraps_like_micropython():
    period, half = 1 << 30, 1 << 29
    assert clock.ticks_diff(5, period - 5) == 10
    assert clock.ticks_diff(period - 5, 5) == -10
    assert clock.ticks_add(period - 1, 2) == 1
    assert clock.ticks_add(3, -5) == period - 2
    assert clock.ticks_diff(clock.ticks_add(123, half - 1), 123) == half - 1
    with pytest.raises(ValueError):
        clock.ticks_add(0, half)
    t0 = clock.ticks_ms()
    assert 0 <= t0 < period
    clock.sleep_ms(20)
    clock.sleep_ms(0)
    clock.sleep_ms(-1)
    assert 15 <= clock.ticks_diff(clock.ticks_ms(), t0) < 2000
