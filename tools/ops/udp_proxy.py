"""User-space UDP fault proxy between the nodes of a local cluster (CPython).

    python3 tools/ops/udp_proxy.py DIR        (started by `cluster.py up --proxy`)

Every ordered pair of nodes (i, j) gets its own proxy port Q[i][j]: node i's
node file lists Q[i][j] as j's address. A datagram i sends to Q[i][j] leaves
the proxy from Q[j][i] towards j's real port, so j sees it come from the
address it lists for i, and the transport's peer check still holds. Clients
talk to the nodes' real ports directly, unaffected.

Faults come from DIR/faults.json, re-read when it changes (`cluster.py
faults`): {"drop": p, "dup": p, "reorder": p, "delay_ms": [lo, hi],
"partition": [[1, 2], [3, 4, 5]], "cut": [[i, j], ...] (one-way i -> j)}.
Probabilities are 0..1. Reordering holds a datagram back by 1..20 ms so later
ones overtake it. Counts per action are written to DIR/proxy_stats.json.
Only 127.0.0.1 is used.
"""
import heapq
import json
import os
import random
import select
import socket
import sys
import time

HOST = "127.0.0.1"


class Proxy:
    def __init__(self, d, seed=None):
        self.d = d
        with open(os.path.join(d, "cluster.json")) as f:
            cl = json.load(f)
        self.real = {n["id"]: (HOST, n["port"]) for n in cl["nodes"]}
        self.links = {}     # fd -> (i, j): datagrams from i meant for j
        self.sock = {}      # (i, j) -> socket bound at Q[i][j]
        for name, port in sorted(cl["proxy"].items()):
            i, j = (int(x) for x in name.split("-"))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((HOST, port))
            s.setblocking(False)
            self.sock[(i, j)] = s
            self.links[s.fileno()] = (i, j)
        self.poll = select.poll()
        for s in self.sock.values():
            self.poll.register(s, select.POLLIN)
        self.rnd = random.Random(seed)
        self.faults = {}
        self.fmtime = None
        self.delayed = []   # heap of (due, seq, (j, i) socket key, data, dest)
        self.seq = 0
        self.stats = {"forwarded": 0, "dropped": 0, "duplicated": 0, "delayed": 0, "cut": 0}

    def load_faults(self):
        p = os.path.join(self.d, "faults.json")
        try:
            m = os.stat(p).st_mtime_ns
        except OSError:
            self.faults = {}
            self.fmtime = None
            return
        if m == self.fmtime:
            return
        try:
            with open(p) as f:
                self.faults = json.load(f)
            self.fmtime = m
        except (OSError, ValueError):
            pass

    def blocked(self, i, j):
        f = self.faults
        for a, b in f.get("cut", ()):
            if a == i and b == j:
                return True
        part = f.get("partition")
        if part:
            side = {}
            for k, group in enumerate(part):
                for n in group:
                    side[n] = k
            # Nodes named in no group are cut off from everyone.
            return side.get(i, -1 - i) != side.get(j, -1 - j)
        return False

    def _emit(self, i, j, data, now):
        f = self.faults
        lo, hi = f.get("delay_ms", (0, 0))
        delay = self.rnd.uniform(lo, hi) / 1000.0 if hi > 0 else 0.0
        if f.get("reorder", 0) and self.rnd.random() < f["reorder"]:
            delay += self.rnd.uniform(0.001, 0.02)
        if delay > 0:
            self.seq += 1
            heapq.heappush(self.delayed, (now + delay, self.seq, (j, i), data, self.real[j]))
            self.stats["delayed"] += 1
            return
        try:
            self.sock[(j, i)].sendto(data, self.real[j])
            self.stats["forwarded"] += 1
        except OSError:
            pass

    def forward(self, i, j, data, now):
        f = self.faults
        if self.blocked(i, j):
            self.stats["cut"] += 1
            return
        if f.get("drop", 0) and self.rnd.random() < f["drop"]:
            self.stats["dropped"] += 1
            return
        self._emit(i, j, data, now)
        if f.get("dup", 0) and self.rnd.random() < f["dup"]:
            self.stats["duplicated"] += 1
            self._emit(i, j, data, now)

    def run(self, seconds=None):
        start = time.monotonic()
        last_check = 0.0
        while seconds is None or time.monotonic() - start < seconds:
            now = time.monotonic()
            if now - last_check > 0.05:
                last_check = now
                self.load_faults()
                self.write_stats()
            timeout = 50
            if self.delayed:
                timeout = max(0, min(timeout, int((self.delayed[0][0] - now) * 1000)))
            for fd, _ in self.poll.poll(timeout):
                i, j = self.links[fd]
                s = self.sock[(i, j)]
                for _ in range(64):
                    try:
                        data, src = s.recvfrom(2048)
                    except (BlockingIOError, OSError):
                        break
                    if src != self.real[i]:
                        continue
                    self.forward(i, j, data, time.monotonic())
            now = time.monotonic()
            while self.delayed and self.delayed[0][0] <= now:
                _, _, key, data, dest = heapq.heappop(self.delayed)
                try:
                    self.sock[key].sendto(data, dest)
                    self.stats["forwarded"] += 1
                except OSError:
                    pass

    def write_stats(self):
        tmp = os.path.join(self.d, "proxy_stats.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.stats, f)
        os.replace(tmp, os.path.join(self.d, "proxy_stats.json"))


def main(argv):
    if len(argv) != 1:
        print("usage: udp_proxy.py DIR")
        return 2
    try:
        Proxy(argv[0]).run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
