"""raftio.udp's per-peer back-off after ENOMEM (esp32's sendto to a peer that
does not answer ARP). pytest and MicroPython (mptest)."""
from raftio.frame import SEND_BACKOFF, SEND_ERROR
from raftio.udp import UdpTransport

KEY = b"k" * 32


class _Sock:
    """Stands in for the socket's sendto: fails with `errno` while set."""

    def __init__(self, real):
        self.real = real
        self.errno = 0
        self.calls = 0

    def sendto(self, data, addr):
        self.calls += 1
        if self.errno:
            raise OSError(self.errno)


def _transport():
    t = UdpTransport(1, {1: ("127.0.0.1", 0), 2: ("127.0.0.1", 9), 3: ("127.0.0.1", 10)}, 7, KEY,
                     bind_host="127.0.0.1", bind_port=0)
    s = _Sock(t._sock)
    t._sock = s
    return t, s


def _close(t, s):
    t._sock = s.real
    t.close()


def _w(buf, off):
    buf[off] = 1
    return 1


def test_enomem_backs_off_per_peer_doubling_and_counts_skips():
    t, s = _transport()
    try:
        s.errno = 12
        attempts = []
        for k in range(200):
            before = s.calls
            t.send(2, _w)
            if s.calls > before:
                attempts.append(k)
        # Skips between attempts: 1, 2, 4, 8, 16, then 32 at most.
        gaps = [attempts[i + 1] - attempts[i] - 1 for i in range(len(attempts) - 1)]
        assert gaps[:7] == [1, 2, 4, 8, 16, 32, 32], gaps
        sl = t.counters.slots
        assert sl[SEND_ERROR] == len(attempts)
        assert sl[SEND_BACKOFF] == 200 - len(attempts)
        # Another peer is not held back by peer 2's trouble.
        s.errno = 0
        before = s.calls
        assert t.send(3, _w) is True and s.calls == before + 1
    finally:
        _close(t, s)


def test_other_errors_do_not_back_off_and_success_ends_it():
    t, s = _transport()
    try:
        s.errno = 113  # EHOSTUNREACH (Wi-Fi down): not an ARP queue, retry freely
        for _ in range(10):
            t.send(2, _w)
        assert s.calls == 10 and t.counters.slots[SEND_BACKOFF] == 0
        s.errno = 12
        t.send(2, _w)      # ENOMEM: hold 1
        t.send(2, _w)      # skipped
        s.errno = 0
        assert t.send(2, _w) is True
        assert t.send(2, _w) is True   # no hold left after a success
        assert t.counters.slots[SEND_BACKOFF] == 1
    finally:
        _close(t, s)


def test_a_datagram_from_the_peer_ends_its_back_off():
    t, s = _transport()
    try:
        s.errno = 12
        for _ in range(20):
            t.send(2, _w)
        assert 2 in t._hold
        # recv() calls _accept with the sender's address key.
        from raftio.udp import _addr_key
        t._accept(_addr_key(t._addr_of[2]))
        assert t.last_peer == 2 and 2 not in t._hold
        s.errno = 0
        before = s.calls
        assert t.send(2, _w) is True and s.calls == before + 1
    finally:
        _close(t, s)
