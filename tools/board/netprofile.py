"""Stock boards' network stacks, emulated around the node's UDP socket.

    import netprofile
    shim = netprofile.install("esp32", raftio.udp)   # before the node opens its socket

Replaces `socket` and `select` inside raftio.udp with wrappers that behave
like a board's lwIP socket (facts from the MicroPython sources and issues):

- receive queue: a board's UDP socket holds at most `rxq` datagrams (rp2
  since 1.26: 4, before: 1; esp32: 6); what arrives while it is full is
  dropped. Emulated by moving what the kernel holds into a queue of rxq
  every time the node touches the socket (poll, recv) and dropping the
  rest: datagrams that arrived while the node was busy compete for rxq
  places, as on the board.
- `sendto` ENOMEM (esp32): a datagram to an address that does not answer
  ARP waits in lwIP's ARP queue; once `arp_queue` of them wait, `sendto`
  raises OSError(12) until they time out (`arp_wait_ms`). Emulated per
  destination: an address counts as unresolved when nothing came from it
  for `arp_age_ms` (a dead peer sends nothing; a live one answers its
  first datagrams, which go out). The real ARP cache lives minutes; the
  emulation shortens that so a test sees it within seconds.
- recv flags: firmware before 1.26 takes no flags (`recv(n, MSG_PEEK)` is a
  TypeError), so raftio.udp cannot peek a datagram's size first.
- no recvfrom_into on any board port: raftio.udp takes its board path
  (poll, peek, recvfrom) under CPython too.
- Wi-Fi (`link`, a FakeWLAN below): while the station is not associated,
  `sendto` raises OSError(113) and nothing is received.

Counts what it did in `shim.stats` (rx_overflow, enomem, link_drops).
Host-only test tooling; runs under MicroPython and CPython.
"""
import os
import select as _select
import socket as _socket

from raftio import clock

PROFILES = {
    # rxq, arp_queue (0: sendto never fails on a dead peer), recv flags
    "rp2": (4, 0, True),
    "rp2-1.25": (1, 0, False),
    "esp32": (6, 3, True),
    "esp32-1.25": (6, 3, False),
    "none": (0, 0, True),  # the host's own stack: only the Wi-Fi emulation
}
_EAGAIN = 11
_ENOMEM = 12
_EHOSTUNREACH = 113
_FILL_MAX = 256  # datagrams moved from the kernel per touch (bounded)


def profile(name):
    """The profile tuple, or ValueError with the known names in one line."""
    if name not in PROFILES:
        raise ValueError("netprofile: unknown profile %r; known: %s"
                         % (name, ", ".join(sorted(PROFILES))))
    return PROFILES[name]


def _key(addr):
    return bytes(addr) if isinstance(addr, bytearray) else addr


class Shim:
    """One profile's settings and counters, shared by the sockets it makes."""

    def __init__(self, name, arp_age_ms=1500, arp_wait_ms=1000, link=None):
        self.name = name
        self.rxq, self.arp_queue, self.flags = profile(name)
        self.arp_age_ms = arp_age_ms
        self.arp_wait_ms = arp_wait_ms
        self.link = link
        self.stats = {"rx_overflow": 0, "enomem": 0, "link_drops": 0, "send_unreach": 0}
        self.sockets = []
        if self.flags and hasattr(_socket, "MSG_PEEK"):
            self.MSG_PEEK = _socket.MSG_PEEK

    # The module-like face raftio.udp sees as `socket`.
    AF_INET = _socket.AF_INET
    SOCK_DGRAM = _socket.SOCK_DGRAM

    def socket(self, af, kind):
        s = _Sock(self, _socket.socket(af, kind))
        self.sockets.append(s)
        return s

    def getaddrinfo(self, *a):
        return _socket.getaddrinfo(*a)

    def poll(self):
        return _Poll()

    def up(self):
        return self.link is None or self.link.connected()


class _Sock:
    def __init__(self, shim, real):
        self._sh = shim
        self._s = real
        self._q = []
        self._heard = {}
        self._arp = {}
        self._t0 = clock.ticks_ms()

    def bind(self, addr):
        self._s.bind(addr)

    def setblocking(self, flag):
        self._s.setblocking(flag)

    def close(self):
        self._s.close()

    def fileno(self):
        return self._s.fileno()

    def _fill(self):
        sh = self._sh
        up = sh.up()
        q = self._q
        if not up:
            del q[:]
        for _ in range(_FILL_MAX):
            try:
                data, addr = self._s.recvfrom(2048)
            except OSError:
                return
            if not up:
                sh.stats["link_drops"] += 1
                continue
            self._heard[_key(addr)] = clock.ticks_ms()
            if sh.rxq and len(q) >= sh.rxq:
                sh.stats["rx_overflow"] += 1
                continue
            q.append((data, addr))

    def pending(self):
        self._fill()
        return len(self._q) > 0

    def recvfrom(self, n):
        self._fill()
        if not self._q:
            raise OSError(_EAGAIN)
        data, addr = self._q.pop(0)
        return data[:n], addr

    def recv(self, n, *flags):
        if flags and not self._sh.flags:
            raise TypeError("function takes 2 positional arguments but 3 were given")
        self._fill()
        if not self._q:
            raise OSError(_EAGAIN)
        if flags and flags[0] & getattr(_socket, "MSG_PEEK", 2):
            return self._q[0][0][:n]
        return self._q.pop(0)[0][:n]

    def sendto(self, data, addr):
        sh = self._sh
        if not sh.up():
            sh.stats["send_unreach"] += 1
            raise OSError(_EHOSTUNREACH)
        if sh.arp_queue:
            now = clock.ticks_ms()
            k = _key(addr)
            last = self._heard.get(k, self._t0)
            if clock.ticks_diff(now, last) > sh.arp_age_ms:
                # Unresolved: the datagram waits in the ARP queue (and still
                # goes out, so a live peer answers and resolves itself).
                waiting = [t for t in self._arp.get(k, ()) if clock.ticks_diff(t, now) > 0]
                if len(waiting) >= sh.arp_queue:
                    self._arp[k] = waiting
                    sh.stats["enomem"] += 1
                    raise OSError(_ENOMEM)
                waiting.append(clock.ticks_add(now, sh.arp_wait_ms))
                self._arp[k] = waiting
        return self._s.sendto(data, addr)


class _Poll:
    """select.poll over shim sockets: ready when the shim's queue holds one."""

    def __init__(self):
        self._p = _select.poll()
        self._socks = []

    def register(self, s, mask=_select.POLLIN):
        self._p.register(s._s, mask)
        self._socks.append(s)

    def unregister(self, s):
        self._p.unregister(s._s)
        self._socks.remove(s)

    def _ready(self):
        return [(s, _select.POLLIN) for s in self._socks if s.pending()]

    def poll(self, timeout_ms=-1):
        r = self._ready()
        if r or timeout_ms == 0:
            return r
        self._p.poll(timeout_ms)
        return self._ready()

    def ipoll(self, timeout_ms=-1):
        return self.poll(timeout_ms)


class _Select:
    POLLIN = _select.POLLIN

    def poll(self):
        return _Poll()


class FakeWLAN:
    """network.WLAN(STA_IF) with an access point that can vanish.

    The access point is gone while the file `ap_off` exists (checked at most
    every 100 ms). The station then loses its association; once the access
    point is back it associates again only after connect() is called, plus
    `assoc_ms`, as cyw43 (rp2) does and esp32 does once its own retries are
    spent: a node that never calls connect() again stays cut off."""

    def __init__(self, ap_off, assoc_ms=300):
        self.ap_off = ap_off
        self.assoc_ms = assoc_ms
        self._conn = True
        self._assoc_at = None
        self._checked = clock.ticks_add(clock.ticks_ms(), -1000)
        self._ap = True
        self.connects = 0

    def _ap_present(self):
        now = clock.ticks_ms()
        if clock.ticks_diff(now, self._checked) >= 100:
            self._checked = now
            try:
                os.stat(self.ap_off)
                self._ap = False
            except OSError:
                self._ap = True
        return self._ap

    def connected(self):
        ap = self._ap_present()
        if self._conn and not ap:
            self._conn = False
        if (not self._conn and ap and self._assoc_at is not None
                and clock.ticks_diff(clock.ticks_ms(), self._assoc_at) >= 0):
            self._conn = True
            self._assoc_at = None
        return self._conn

    def isconnected(self):
        return self.connected()

    def active(self, *a):
        return True

    def connect(self, ssid=None, password=None):
        self.connects += 1
        if self._ap_present() and not self._conn:
            self._assoc_at = clock.ticks_add(clock.ticks_ms(), self.assoc_ms)


def install(name, udp_module, link=None, **kw):
    """Make udp_module (raftio.udp) open shim sockets from now on; returns the Shim."""
    sh = Shim(name, link=link, **kw)
    udp_module.socket = sh
    udp_module.select = _Select()
    return sh
