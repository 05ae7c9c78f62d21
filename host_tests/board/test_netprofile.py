"""tools/board/netprofile.py: the emulated board stacks behave as documented."""
import socket
import time

import pytest

import netprofile
from raftio import udp


class _Mod:
    """A stand-in for the raftio.udp module: install() swaps its socket/select."""


def _pair(name, **kw):
    m = _Mod()
    sh = netprofile.install(name, m, **kw)
    s = m.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    port = s._s.getsockname()[1]
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return sh, m, s, out, ("127.0.0.1", port)


def test_receive_queue_keeps_n_and_drops_the_rest():
    for name, n in (("rp2", 4), ("esp32", 6), ("rp2-1.25", 1)):
        sh, m, s, out, addr = _pair(name)
        try:
            for k in range(10):
                out.sendto(b"d%d" % k, addr)
            time.sleep(0.05)
            p = m.select.poll()
            p.register(s, m.select.POLLIN)
            assert p.poll(0)
            got = []
            while True:
                try:
                    got.append(s.recvfrom(100)[0])
                except OSError:
                    break
            assert got == [b"d%d" % k for k in range(n)], (name, got)
            assert sh.stats["rx_overflow"] == 10 - n
        finally:
            s.close()
            out.close()


def test_enomem_after_arp_queue_to_a_silent_address_then_drains():
    sh, m, s, out, addr = _pair("esp32", arp_age_ms=0, arp_wait_ms=200)
    dead = ("127.0.0.1", 9)
    try:
        time.sleep(0.01)
        for _ in range(3):
            s.sendto(b"x", dead)
        with pytest.raises(OSError) as e:
            s.sendto(b"x", dead)
        assert e.value.args[0] == 12 and sh.stats["enomem"] == 1
        time.sleep(0.25)
        s.sendto(b"x", dead)   # the ARP queue drained
    finally:
        s.close()
        out.close()


def test_no_recv_flags_before_1_26_and_udp_takes_the_no_peek_path():
    m = _Mod()
    netprofile.install("esp32-1.25", m)
    s = m.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(TypeError):
            s.recv(1, 2)
        assert not hasattr(m.socket, "MSG_PEEK")
    finally:
        s.close()
    saved = udp.socket, udp.select
    try:
        netprofile.install("esp32-1.25", udp)
        e = udp.UdpEndpoint(1, b"k" * 32)
        assert e._peek is False and e._rfi is None
        e.close()
        netprofile.install("esp32", udp)
        e = udp.UdpEndpoint(1, b"k" * 32)
        assert e._peek is True and e._rfi is None
        e.close()
    finally:
        udp.socket, udp.select = saved


def test_unknown_profile_is_one_line():
    with pytest.raises(ValueError) as e:
        netprofile.Shim("esp8266")
    assert "known:" in str(e.value) and "\n" not in str(e.value)


def test_wifi_link_down_fails_sends_and_drops_receipts(tmp_path):
    off = str(tmp_path / "ap_off")
    w = netprofile.FakeWLAN(off, assoc_ms=50)
    sh, m, s, out, addr = _pair("esp32", link=w)
    try:
        assert w.isconnected()
        open(off, "w").close()
        w._checked -= 1000  # look at the file now
        assert not w.isconnected()
        with pytest.raises(OSError):
            s.sendto(b"x", ("127.0.0.1", 9))
        out.sendto(b"lost", addr)
        time.sleep(0.05)
        assert not s.pending() and sh.stats["link_drops"] == 1
        import os
        os.remove(off)
        w._checked -= 1000
        assert not w.isconnected()   # back only after connect()
        w.connect("x", "y")
        time.sleep(0.08)
        assert w.isconnected()
    finally:
        s.close()
        out.close()
