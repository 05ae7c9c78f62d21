"""The UDP transport under the MicroPython unix port, talking to a CPython transport on loopback.

A small script runs in `micropython` as node 2; this test is node 1. It proves
the MicroPython-specific paths: getaddrinfo sockaddrs for bind/sendto, recvfrom
without recvfrom_into, EAGAIN on an empty socket, select.poll, bytes sender
addresses matched against the peer table, and the clock on time.ticks_*.
"""
import json
import os
import random
import socket
import subprocess
import time

import pytest

from raftio.frame import HEADER, MAX_DATAGRAM, Framer
from raftio.udp import UdpTransport

from paths import ROOT
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
KEY = b"mp test key"
CLUSTER = 0xDEADBEEF
LOOP = "127.0.0.1"

_SCRIPT = r"""
import sys, gc, json
sys.path.insert(0, LIB)
from raftio.udp import UdpTransport, UdpEndpoint
from raftio import clock

t = UdpTransport(2, {1: ("127.0.0.1", P1), 2: ("127.0.0.1", P2)}, CLUSTER, KEY)
info = {"recvfrom_into": hasattr(t._sock, "recvfrom_into"),
        "empty_recv": t.recv(), "empty_poll": t.poll(0), "max_alloc": 0}

# A client endpoint on port 0 speaking to node 1, which lists no such peer.
c = UdpEndpoint(CLUSTER, KEY)
c.send_payload_to(t._addr_of[1], b"client hello", 12)
c.close()

def alloc(fn):
    gc.collect(); gc.disable()
    b = gc.mem_alloc(); r = fn(); a = gc.mem_alloc()
    gc.enable()
    info["max_alloc"] = max(info["max_alloc"], a - b)
    return r

start = clock.ticks_ms()
pongs = 0
while clock.ticks_diff(clock.ticks_ms(), start) < 20000:
    if not t.poll(50):
        continue
    got = alloc(t.recv)
    if got is None:
        continue
    buf, off, n, addr = got
    msg = bytes(buf[off:off + n])
    if msg == b"quit":
        break
    if msg.startswith(b"ping ") and t.last_peer == 1:
        reply = b"pong " + msg[5:]
        alloc(lambda: t.send_payload(1, reply, len(reply)))
        pongs += 1
info["pongs"] = pongs
info["counters"] = t.counters.as_dict()
info["elapsed_ms"] = clock.ticks_diff(clock.ticks_ms(), start)
t.close()
print(json.dumps(info))
"""


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOOP, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _frame(cluster, key, payload):
    buf = bytearray(MAX_DATAGRAM)
    buf[HEADER:HEADER + len(payload)] = payload
    return bytes(buf[:Framer(cluster, key).seal(buf, len(payload))])


def _expect(t, want, timeout_s):
    """True once t delivers the payload `want` (other payloads are skipped)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if t.poll(50):
            got = t.recv()
            if got is not None:
                buf, off, n, _ = got
                if bytes(buf[off:off + n]) == want:
                    return True
    return False


@pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="no micropython in .venv")
def test_transport_under_micropython(tmp_path):
    t = UdpTransport(1, {}, CLUSTER, KEY, LOOP, 0)
    p1, p2 = t.local_port(), _free_port()
    t.set_peer(2, LOOP, p2)
    script = tmp_path / "node2.py"
    script.write_text(_SCRIPT.replace("LIB", repr(os.path.join(ROOT, "lib")))
                      .replace("P1", str(p1)).replace("P2", str(p2))
                      .replace("CLUSTER", str(CLUSTER)).replace("KEY", repr(KEY)))
    proc = subprocess.Popen([MICROPYTHON, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # Node 2 is up once it answers; it may take a moment to boot.
        deadline = time.monotonic() + 10
        up = False
        while not up and time.monotonic() < deadline and proc.poll() is None:
            t.send_payload(2, b"ping 0", 6)
            up = _expect(t, b"pong 0", 0.2)
        assert up, proc.stderr.read().decode() if proc.poll() is not None else "no pong"
        for i in range(1, 50):
            msg = b"ping %d" % i
            assert t.send_payload(2, msg, len(msg))
            assert _expect(t, b"pong %d" % i, 2), i
        # Junk from the peer's own address, which node 2 must count and drop.
        rng = random.Random(5)
        good = _frame(CLUSTER, KEY, b"ping 999")
        junk = [good[:5], good[:HEADER + 15], bytes(1500),
                _frame(CLUSTER ^ 1, KEY, b"ping 999"), _frame(CLUSTER, b"other", b"ping 999")]
        for _ in range(20):
            d = bytearray(good)
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
            junk.append(bytes(d))
        for d in junk:
            t._sock.sendto(d, (LOOP, p2))
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.bind((LOOP, 0))
        stranger.sendto(good, (LOOP, p2))
        stranger.close()
        time.sleep(0.3)
        # The client frame node 2 sent from port 0 at start: not a peer of ours.
        assert t.counters.unknown_peer == 1
        t.send_payload(2, b"quit", 4)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        t.close()
    assert proc.returncode == 0, err.decode()
    info = json.loads(out.decode().strip().splitlines()[-1])
    print(info)
    assert info["recvfrom_into"] is False  # the fallback path is what ran
    assert info["empty_recv"] is None and info["empty_poll"] is False
    c = info["counters"]
    assert info["pongs"] >= 50
    assert c["unknown_peer"] == 1
    assert c["malformed"] + c["bad_mac"] + c["wrong_cluster"] == len(junk), c
    assert c["wrong_cluster"] >= 1 and c["malformed"] >= 3 and c["bad_mac"] >= 1
    assert c["send_errors"] == 0 and c["recv_errors"] == 0


_FRAGMENTED = r"""
import sys, gc, json, time
sys.path.insert(0, LIB)
from raftio.udp import UdpEndpoint, resolve
from raftio.frame import MAX_DATAGRAM
_RX = MAX_DATAGRAM + 1  # what a receive asks for when the size is unknown
a = UdpEndpoint(CLUSTER, KEY, "127.0.0.1", PA)
b = UdpEndpoint(CLUSTER, KEY, "127.0.0.1", 0)
to = resolve("127.0.0.1", PA)
small = b"s" * 20
big = bytes(1300)
# Every key exists up front, so filling in results never resizes the dict (a
# freed table next to a hole could make room for the receive buffer).
out = {"peek": a._peek, "small": None, "plugged": 0, "probe_failed": None, "free": 0,
       "big_while_fragmented": None, "no_memory": None, "big_after": None}
# Fill the heap with 1 KB chunks and free every other one: plenty of free
# memory, but no hole a 1.4 KB receive buffer would fit in. The lists are
# preallocated so that growing them leaves no large freed block behind.
hold = [None] * 4000
plugs = [None] * 400
n = 0
try:
    while n < len(hold):
        hold[n] = bytearray(1000)
        n += 1
except MemoryError:
    pass
for i in range(0, n, 2):
    hold[i] = None
b.send_payload_to(to, small, len(small))
b.send_payload_to(to, big, len(big))
time.sleep_ms(50)
g = a.recv()
out["small"] = g[2] if g else None
g = None
gc.collect()
# Where the layout still left a hole that big (the heap's tail, blocks the
# interpreter freed), plug it, so the test does not depend on the layout.
k = 0
try:
    while k < len(plugs):
        plugs[k] = bytearray(_RX)
        k += 1
except MemoryError:
    pass
out["plugged"] = k
try:
    bytearray(_RX)
    out["probe_failed"] = False
except MemoryError:
    out["probe_failed"] = True
out["free"] = gc.mem_free()
g = a.recv()
out["big_while_fragmented"] = g[2] if g else None
g = None
hold = None
plugs = None
gc.collect()
out["no_memory"] = a.counters.as_dict()["no_memory"]
b.send_payload_to(to, big, len(big))
time.sleep_ms(50)
g = a.recv()
out["big_after"] = g[2] if g else None
print(json.dumps(out))
"""


@pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="no micropython in .venv")
def test_fragmented_heap_drops_and_counts_instead_of_crashing(tmp_path):
    # A long-running node's heap can have 100 KB free and no 1.4 KB block.
    # Short datagrams must still arrive (they are peeked for their size), a
    # long one that cannot be allocated is discarded and counted, and once
    # memory frees up long ones arrive again.
    script = tmp_path / "frag.py"
    script.write_text(_FRAGMENTED.replace("LIB", repr(os.path.join(ROOT, "lib")))
                      .replace("PA", str(_free_port()))
                      .replace("CLUSTER", str(CLUSTER)).replace("KEY", repr(KEY)))
    r = subprocess.run([MICROPYTHON, "-X", "heapsize=256K", str(script)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(out)
    assert out["peek"] is True
    assert out["probe_failed"] is True, out
    assert out["free"] > 50000, out
    assert out["small"] == 20, out
    assert out["big_while_fragmented"] is None and out["no_memory"] == 1, out
    assert out["big_after"] == 1300, out
