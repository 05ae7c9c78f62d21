"""raftio.station: a Wi-Fi station that lost its access point reconnects
with back-off and never blocks the loop. pytest and MicroPython (mptest)."""
from raftio.station import Station

_MASK = (1 << 30) - 1
_HALF = 1 << 29


class _Clock:
    def __init__(self, start):
        self.now = start & _MASK

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return ((a - b + _HALF) & _MASK) - _HALF

    def ticks_add(self, a, d):
        return (a + d) & _MASK


class _WLAN:
    """The AP is present unless `ap` is False; connect() associates only
    while it is there (after which isconnected() is true)."""

    def __init__(self, clock):
        self.clock = clock
        self.ap = True
        self.conn = True
        self.connects = []

    def isconnected(self):
        if not self.ap:
            self.conn = False
        return self.conn

    def connect(self, ssid, password):
        self.connects.append(self.clock.now)
        if self.ap:
            self.conn = True


def _run(st, clock, ms, step=10):
    for _ in range(ms // step):
        clock.now = (clock.now + step) & _MASK
        st.poll()


def test_reconnects_with_doubling_back_off_then_rejoins():
    # Start near the clock's wrap: the back-off must not care.
    clock = _Clock((1 << 30) - 5000)
    w = _WLAN(clock)
    st = Station(w, "lab", "pw", clock)
    _run(st, clock, 3000)
    assert st.up and st.drops == 0 and w.connects == []
    w.ap = False
    t0 = clock.now
    _run(st, clock, 65000)
    assert not st.up and st.drops == 1
    gaps = [((w.connects[i + 1] - w.connects[i]) & _MASK) for i in range(len(w.connects) - 1)]
    # Noticed within a second, then retries 2, 4, 8, 16 s apart, then every 30 s at most.
    assert ((w.connects[0] - t0) & _MASK) <= 1010
    assert gaps[:4] == [2000, 4000, 8000, 16000], gaps
    assert all(g <= 30000 for g in gaps), gaps
    w.ap = True
    _run(st, clock, 31000)
    assert st.up and st.rejoins == 1 and st.drops == 1
    n = len(w.connects)
    _run(st, clock, 10000)
    assert len(w.connects) == n  # connected: no more attempts
    # A second outage starts again from the short wait.
    w.ap = False
    _run(st, clock, 4000)
    w.ap = True
    _run(st, clock, 4000)
    assert st.up and st.drops == 2 and st.rejoins == 2


def test_poll_costs_nothing_between_checks():
    clock = _Clock(0)
    w = _WLAN(clock)
    calls = [0]
    orig = w.isconnected

    def counted():
        calls[0] += 1
        return orig()
    w.isconnected = counted
    st = Station(w, "lab", "pw", clock)
    _run(st, clock, 10000, step=1)
    assert 9 <= calls[0] <= 11  # once a second, not once per loop turn


def test_connect_raising_oserror_is_absorbed():
    clock = _Clock(0)
    w = _WLAN(clock)

    def refuse(ssid, pw):
        raise OSError("Wifi Internal State Error")
    w.connect = refuse
    st = Station(w, "lab", "pw", clock)
    w.ap = False
    _run(st, clock, 8000)
    assert st.attempts >= 2 and not st.up
