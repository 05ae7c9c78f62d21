"""The real clock: the only place in mpraft that reads wall or monotonic time.

On MicroPython these are `time.ticks_ms`, `time.ticks_diff`, `time.ticks_add`
and `time.sleep_ms`. On CPython a shim over `time.monotonic_ns` gives the same
contract: ticks wrap modulo 2**30 (the same period as the unix port and the
ports with 31-bit small ints), so callers must never compare ticks with `<`,
only through `ticks_diff`, and must keep intervals under 2**29 ms (~6 days).

The pure core never imports this module; it counts ticks handed to it by the
node loop.
"""
import time

try:
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
    sleep_ms = time.sleep_ms
except AttributeError:
    # Match MicroPython's TICKS_PERIOD so code tested on CPython sees wrap-around
    # at the same place it will on a board.
    _PERIOD = 1 << 30
    _HALF = 1 << 29
    _MASK = _PERIOD - 1

    def ticks_ms():
        return (time.monotonic_ns() // 1000000) & _MASK

    def ticks_diff(a, b):
        """Signed a - b in ms, correct across one wrap; range [-2**29, 2**29)."""
        return ((a - b + _HALF) & _MASK) - _HALF

    def ticks_add(a, d):
        """a + d on the tick circle; d may be negative, |d| < 2**29."""
        if not -_HALF <= d < _HALF:
            raise ValueError("clock: ticks_add delta %d outside +-2**29 ms" % d)
        return (a + d) & _MASK

    def sleep_ms(ms):
        if ms > 0:
            time.sleep(ms / 1000)


class Clock:
    """The real clock as an object, for code that takes its clock injected
    (raftio/engine.py; the simulator passes a simulated one). The functions
    are instance attributes, so a call costs no bound method."""

    def __init__(self):
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff
        self.ticks_add = ticks_add
