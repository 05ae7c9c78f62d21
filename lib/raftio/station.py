"""Keeps a Wi-Fi station associated: reconnect with back-off, never block.

A station drops off its access point (radio noise, the AP rebooting) and
does not always come back by itself: cyw43 (rp2) does not retry, and esp32
stops after its own retries. `Station.poll()` runs once per node loop turn
and costs one clock read until a check is due (every second): when the
station reports not connected it calls connect() again, waiting 2, 4, 8 ...
30 s between attempts so a missing AP is not hammered and the loop keeps
serving. Nothing else changes while the link is down: the node keeps its
term, log and role, sends fail and are counted (raftio/udp.py), Raft's own
retries resume replication once the link is back.
"""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_CHECK_MS = const(1000)
_FIRST_MS = const(2000)
_MAX_MS = const(30000)


class Station:
    """wlan: network.WLAN(STA_IF) (or anything with isconnected/connect);
    clock: ticks_ms/ticks_diff/ticks_add (raftio.clock.Clock)."""

    def __init__(self, wlan, ssid, password, clock):  # mpraft: boot
        self.wlan = wlan
        self.ssid = ssid
        self.password = password
        self.clock = clock
        self.up = True
        self.drops = 0
        self.attempts = 0
        self.rejoins = 0
        self._wait = _FIRST_MS
        now = clock.ticks_ms()
        self._next = clock.ticks_add(now, _CHECK_MS)  # next look at the link
        self._retry = now  # no connect() before this while the link is down

    def poll(self):
        c = self.clock
        now = c.ticks_ms()
        if c.ticks_diff(now, self._next) < 0:
            return
        self._next = c.ticks_add(now, _CHECK_MS)
        if self.wlan.isconnected():
            if not self.up:
                self.up = True
                self.rejoins += 1
                self._wait = _FIRST_MS
            return
        if self.up:
            self.up = False
            self.drops += 1
            self._retry = now
        if c.ticks_diff(now, self._retry) < 0:
            return
        self.attempts += 1
        try:
            self.wlan.connect(self.ssid, self.password)
        except OSError:
            pass  # esp32: "Wifi Internal State Error" while it still tries itself
        self._retry = c.ticks_add(now, self._wait)
        self._wait = min(2 * self._wait, _MAX_MS)
