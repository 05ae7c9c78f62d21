"""Loopback UDP ports for tests that run nodes in-process, on both interpreters.

MicroPython's unix port has no getsockname, so a test cannot bind port 0
and ask; it picks a run of n free ports itself: start at a varying place in
a high range, bind all n, and move on if any is taken. Ports are released
before returning (a race with another process is possible but unlikely in
a range nothing else here uses).
"""
import socket
import time

_LO = 41000
_SPAN = 8000


def _free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        return True
    except OSError:
        return False
    finally:
        s.close()


def base(n):
    """b such that ports b+1..b+n were all free just now."""
    try:
        seed = time.ticks_us()
    except AttributeError:
        seed = int(time.time() * 1000003)
    start = _LO + seed % _SPAN
    for k in range(200):
        b = _LO + (start - _LO + k * 37) % _SPAN
        if all(_free(b + i) for i in range(1, n + 1)):
            return b
    raise OSError("portnums: no run of %d free UDP ports found" % n)
