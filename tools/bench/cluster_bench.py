"""Benchmark a local 5-node cluster: committed puts/s and latency, CPU per put, failover, heap.

    python3 tools/bench/cluster_bench.py [--runtime micropython|cpython] [--seconds 10]
        [--inflight 1,16,64,256] [--failover 10] [--heap-seconds 60] [--json FILE]
        [--dir DIR] [--flush on|off] [--pysyncobj 64,1000|none]
        [--baseline-tree DIR] [--rounds N] [--batch 1,16] [--baseline-batch 1]

--flush off runs the nodes without flushing log writes (fsync on the
MicroPython unix port): NOT durable, only to show what the flush costs.

Closed loop: `inflight` client sessions share one UDP socket, each with one
put outstanding; a session sends its next put as soon as the previous one is
acknowledged (committed and applied on the leader). --batch 1,16 runs every
level also with the sessions in groups of 16 whose puts travel as one batch
(raftio/batch.py: one datagram, one log entry, one reply); PySyncObj batches
too (its default). Latency is per put, from
send to answer, retries included. Failover: SIGKILL the leader, then time
until a put is acknowledged by a successor (the old node is restarted before
the next trial). Heap: each node's MicroPython heap in use (gc.mem_alloc, from
status, after a collection) and RSS after 10 s and 60 s of load at 16 in flight. Prints a table and a JSON line.

CPU per committed put (tools/bench/benchcpu.py): user + system time of each
node process over each measured window, divided by the puts acknowledged in
it, for the leader, the mean follower and all five together, and the load
generator's own; with the leader's datagrams in and out, MACs, flushes and
bytes allocated per applied entry (from its status).

A/B: --baseline-tree DIR runs the same load, in the same run, on nodes from
another checkout (e.g. `git worktree add --detach /tmp/base COMMIT`): the
clusters take turns, --rounds times (order alternating), each figure is the
median over the rounds, and the ratios new/baseline are printed.

Then the same load on PySyncObj (tools/bench/pysyncobj_bench.py: 5 processes, a
replicated dict, callers inside the node processes) at 64 and 1,000 in
flight, with its leader's and followers' CPU per op, and the ratio
(--pysyncobj none skips it).
"""
import json
import os
import random
import sys
import tempfile
import time
import shutil

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import benchcpu  # noqa: E402
import cluster  # noqa: E402
from raft.errors import DecodeError  # noqa: E402
from raftio import batch, wire  # noqa: E402
from raftio.frame import MAX_PAYLOAD  # noqa: E402
from raftio.udp import UdpEndpoint, resolve  # noqa: E402
from raftkv import codec  # noqa: E402


class Load:
    """`n` sessions, one put each in flight, over one socket. With batch > 1
    the sessions go in groups of `batch`: a group's puts travel as one batch
    command (raftio/batch.py), one datagram, and its next puts leave when
    its reply arrives; `n` puts are still in flight."""

    def __init__(self, d, n, batch=1):
        cl = cluster.load(d)
        self.key = bytes.fromhex(cl["key"])
        # 0.0.0.0, like raftio.client: nodes may live on a bridge (--netns).
        self.ep = UdpEndpoint(cl["cluster_id"], self.key, bind_host="0.0.0.0")
        self.addrs = {x["id"]: resolve(x["host"], x["port"]) for x in cl["nodes"]}
        self.ids = sorted(self.addrs)
        c = cluster.client(d, timeout_ms=10000)
        self.cids = [c.register() for _ in range(n)]
        self.leader = c.leader or self.ids[0]
        c.close()
        self.n = n
        self.batch = batch
        g = (n + batch - 1) // batch
        self.groups = [list(range(k * batch, min(n, (k + 1) * batch))) for k in range(g)]
        self.seq = [0] * n
        self.sent_at = [0.0] * g
        self.started = [0.0] * g
        self.target = [self.leader] * g
        self.rid_base = random.randrange(1 << 20) << 8
        self.buf = bytearray(MAX_PAYLOAD)
        self.cmd = bytearray(MAX_PAYLOAD)
        self.bcmd = bytearray(MAX_PAYLOAD)
        self.lat = []
        self.done = 0
        self.resends = 0

    def _send(self, g):
        ss = self.groups[g]
        if self.batch == 1:
            s = ss[0]
            k = self.seq[s]
            cl = codec.encode_put_into(self.cmd, self.cids[s], k, b"k%d" % (s % 64), b"v%d" % k)
            ln = wire.encode_request_into(self.buf, 0, self.rid_base + g, self.cmd, cl)
        else:
            cmds = []
            for s in ss:
                k = self.seq[s]
                cl = codec.encode_put_into(self.cmd, self.cids[s], k, b"k%d" % (s % 64),
                                           b"v%d" % k)
                cmds.append(bytes(self.cmd[:cl]))
            cl = batch.encode_into(self.bcmd, cmds)
            ln = wire.encode_request_into(self.buf, 0, self.rid_base + g, self.bcmd, cl)
        self.ep.send_payload_to(self.addrs[self.target[g]], self.buf, ln)
        self.sent_at[g] = time.perf_counter()

    def _next(self, g):
        for s in self.groups[g]:
            self.seq[s] += 1
        self.started[g] = time.perf_counter()
        self._send(g)

    def _ok(self, g, body):
        """Puts of group g acknowledged by this OK reply."""
        if self.batch == 1:
            return 1
        try:
            res = batch.decode_result(body)
        except DecodeError:
            return 0
        return sum(1 for r in res if isinstance(r, bytes) and r[:1] == b"\x00")

    def run(self, seconds, record=True, on_end=None):
        """Closed loop for `seconds`; on_end() is called the moment the window
        closes (before the drain), so CPU samples bracket exactly the puts counted."""
        for g in range(len(self.groups)):
            self._next(g)
        end = time.perf_counter() + seconds
        ep = self.ep
        while True:
            now = time.perf_counter()
            if now >= end:
                if on_end is not None:
                    on_end()
                break
            if ep.poll(20):
                for _ in range(256):
                    got = ep.recv()
                    if got is None:
                        break
                    buf, off, n, _ = got
                    try:
                        t, rid, code, hint, body = wire.decode_reply(buf, off, n)
                    except DecodeError:
                        continue
                    s = rid - self.rid_base
                    if not 0 <= s < len(self.groups):
                        continue
                    if code == wire.OK:
                        t = time.perf_counter()
                        if record:
                            k = self._ok(s, body)
                            self.lat.extend([t - self.started[s]] * k)
                            self.done += k
                        self._next(s)
                    elif code == wire.NOT_LEADER:
                        self.target[s] = hint if hint in self.addrs else \
                            self.ids[(self.ids.index(self.target[s]) + 1) % len(self.ids)]
                        self.resends += 1
                        self._send(s)
                    else:
                        self.resends += 1
                        self._send(s)
            now = time.perf_counter()
            for s in range(len(self.groups)):
                if now - self.sent_at[s] > 0.2:
                    self.target[s] = self.ids[(self.ids.index(self.target[s]) + 1) % len(self.ids)]
                    self.resends += 1
                    self._send(s)
        # Drain: let outstanding puts finish so the next phase starts clean.
        t = time.perf_counter()
        while time.perf_counter() - t < 0.3:
            if ep.poll(50):
                while ep.recv() is not None:
                    pass

    def close(self):
        self.ep.close()


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def heap(d):
    out = {}
    pids = cluster._pids(d)
    for nid, st in cluster.statuses(d):
        out[nid] = {"heap_used": st.get("heap_used") if st else None,
                    "rss_kb": rss_kb(pids[nid]["pid"]) if nid in pids else None}
    return out


def failover(d, runtime, trials, flush="on"):
    c = cluster.client(d, timeout_ms=10000, try_ms=20)
    times = []
    try:
        for i in range(trials):
            lead = cluster.wait_leader(d, 10)
            c.put("warm", str(i))
            t = time.monotonic()
            cluster.kill(d, lead)
            c.leader = 0
            while time.monotonic() - t < 10:
                try:
                    c.put("fo", str(i))
                    break
                except Exception:
                    pass
            times.append((time.monotonic() - t) * 1000)
            cluster.start(d, lead, runtime, flush=flush)
            time.sleep(1.0)
    finally:
        c.close()
    return times


def measure(d, n, secs, b=1):
    """One window of `secs` at n in flight (in batches of b) on the cluster in d: a row."""
    ld = Load(d, n, b)
    ld.run(1.0, record=False)
    pids = dict((nid, e["pid"]) for nid, e in cluster._pids(d).items() if nid)
    st0 = dict(cluster.statuses(d))
    c0 = benchcpu.sample(pids)
    t0 = time.process_time()
    end = {}

    def on_end():
        end["cpu"] = benchcpu.sample(pids)
        end["client"] = time.process_time()
    ld.run(secs, on_end=on_end)
    st1 = dict(cluster.statuses(d))
    ld.close()
    lead = benchcpu.leader_of(st1)
    row = {"inflight": n, "batch": b, "puts_per_s": ld.done / secs,
           "p50_ms": pct(ld.lat, 0.5) * 1000, "p99_ms": pct(ld.lat, 0.99) * 1000,
           "resends": ld.resends, "puts": ld.done, "leader": lead,
           "leader_changed": lead != benchcpu.leader_of(st0)}
    row.update(benchcpu.per_put(c0, end["cpu"], ld.done, lead))
    row["client_us"] = (end["client"] - t0) * 1e6 / ld.done if ld.done else None
    row["work"] = benchcpu.work_per_put(st0.get(lead), st1.get(lead), b)
    return row


def heap_and_failover(d, opts, res):
    hs = int(opts["heap_seconds"])
    if hs:
        # Heap under steady load (16 in flight): live heap after 10 s and after hs s.
        ld = Load(d, 16)
        ld.run(10)
        h10 = heap(d)
        ld.run(hs - 10)
        hN = heap(d)
        ld.close()
        res["heap"] = {"at_10s": h10, "at_%ds" % hs: hN}
        for nid in sorted(h10):
            a, b = h10[nid], hN[nid]
            growth = ""
            if a["heap_used"] and b["heap_used"]:
                growth = "%+.1f%%" % (100.0 * (b["heap_used"] - a["heap_used"]) / a["heap_used"])
            print("node %d: live heap %s -> %s bytes (%s), RSS %s -> %s kB (10 s -> %d s)"
                  % (nid, a["heap_used"], b["heap_used"], growth, a["rss_kb"], b["rss_kb"], hs))
    trials = int(opts["failover"])
    if trials:
        fo = failover(d, opts["runtime"], trials, opts["flush"])
        res["failover_ms"] = fo
        print("failover over %d trials: median %.0f ms, min %.0f, max %.0f ms" % (
            len(fo), pct(fo, 0.5), min(fo), max(fo)))


def main(argv):
    opts = {"runtime": "micropython", "seconds": "10", "inflight": "1,16,64,256",
            "failover": "10", "json": None, "dir": None, "flush": "on", "heap_seconds": "60",
            "pysyncobj": "64,1000", "baseline_tree": None, "rounds": "1", "batch": "1,16",
            "baseline_batch": "1"}
    i = 0
    while i < len(argv):
        k = argv[i][2:].replace("-", "_")
        if not argv[i].startswith("--") or k not in opts or i + 1 >= len(argv):
            print(__doc__.strip().splitlines()[2])
            return 2
        opts[k] = argv[i + 1]
        i += 2
    base = opts["baseline_tree"]
    if base and not os.path.exists(os.path.join(base, "tools", "ops", "node_main.py")):
        print("cluster_bench: --baseline-tree %s has no tools/ops/node_main.py" % base)
        return 2
    secs = float(opts["seconds"])
    levels = [int(x) for x in opts["inflight"].split(",")]
    batches = [int(x) for x in opts["batch"].split(",")]
    rounds = int(opts["rounds"])
    res = {"runtime": opts["runtime"], "flush": opts["flush"], "seconds": secs,
           "rounds": rounds, "baseline_tree": base, "failover_ms": []}
    systems = [("mpraft", None)] + ([("baseline", base)] if base else [])
    raw = dict((name, []) for name, _ in systems)
    for rnd in range(rounds):
        # Alternate the order so neither side always runs on a warmer machine.
        for name, tree in (systems if rnd % 2 == 0 else systems[::-1]):
            d = (os.path.join(opts["dir"], "%s-%d" % (name, rnd)) if opts["dir"]
                 else tempfile.mkdtemp(prefix="mpraft-bench-"))
            try:
                cluster.up(d, 5, opts["runtime"], timeout_s=20, flush=opts["flush"], tree=tree)
                # A baseline from before batches runs unbatched only (the default).
                for b in (batches if tree is None else
                          [int(x) for x in opts["baseline_batch"].split(",")]):
                    for n in levels:
                        if b > 1 and n < b:
                            continue
                        row = measure(d, n, secs, b)
                        row["round"] = rnd
                        raw[name].append(row)
                        print("%-8s round %d inflight %3d batch %2d: %7.0f puts/s  p50 %6.2f ms  "
                              "p99 %6.2f ms  CPU/put leader %s us, follower %s us  (%d resends)"
                              % (name, rnd, n, b, row["puts_per_s"], row["p50_ms"], row["p99_ms"],
                                 benchcpu.fmt(row["leader_us"]), benchcpu.fmt(row["follower_us"]),
                                 row["resends"]))
                        sys.stdout.flush()
                if name == "mpraft" and rnd == 0:
                    heap_and_failover(d, opts, res)
            finally:
                cluster.down(d)
                if opts["dir"] is None:
                    shutil.rmtree(d, ignore_errors=True)
    res["raw"] = raw
    res["load"] = benchcpu.merge_rounds(raw["mpraft"])
    if base:
        res["baseline"] = benchcpu.merge_rounds(raw["baseline"])
        res["vs_baseline"] = benchcpu.ratios(res["load"], res["baseline"])
    if opts["pysyncobj"] != "none":
        import pysyncobj_bench
        res["pysyncobj"] = []
        for n in [int(x) for x in opts["pysyncobj"].split(",")]:
            r = pysyncobj_bench.run_level(n, secs)
            res["pysyncobj"].append(r)
            print("pysyncobj inflight %4d: %7.0f ops/s  p50 %6.2f ms  p99 %6.2f ms"
                  % (n, r["ops_per_s"], r["p50_ms"] or -1, r["p99_ms"] or -1))
    print()
    print(benchcpu.RULE)
    print(benchcpu.HEADER)
    for name in ("baseline", "mpraft"):
        for r in res.get("load" if name == "mpraft" else name, []):
            print(benchcpu.row_line(name, r))
    for r in res.get("pysyncobj", []):
        print(benchcpu.row_line("pysyncobj", {"inflight": r["inflight"], "batch": 0,
                                              "puts_per_s": r["ops_per_s"],
                                              "p50_ms": r["p50_ms"] or -1,
                                              "leader_us": r.get("leader_us"),
                                              "follower_us": r.get("follower_us"),
                                              "all_us": r.get("all_us")}))
    for q in res.get("vs_baseline", []):
        print("mpraft batch %2d / baseline at %3d in flight: CPU/put leader %s, follower %s, "
              "all %s; puts/s %s, p50 %s" % (q["batch"], q["inflight"],
                                            benchcpu.fmt(q["leader_us"], "%.2f"),
                                     benchcpu.fmt(q["follower_us"], "%.2f"),
                                     benchcpu.fmt(q["all_us"], "%.2f"),
                                     benchcpu.fmt(q["puts_per_s"], "%.2f"),
                                     benchcpu.fmt(q["p50_ms"], "%.2f")))
    ours = {}
    for row in res["load"]:
        if row["inflight"] == 64:
            ours[64] = max(ours.get(64, 0), row["puts_per_s"])
    if res.get("pysyncobj") and 64 in ours:
        res["ratio"] = {}
        for r in res["pysyncobj"]:
            if r["ops_per_s"]:
                k = "mpraft64_vs_pysyncobj%d" % r["inflight"]
                res["ratio"][k] = ours[64] / r["ops_per_s"]
                print("mpraft at 64 in flight (best batch) / pysyncobj at %d in flight: %.2f"
                      % (r["inflight"], res["ratio"][k]))
    if opts["json"]:
        with open(opts["json"], "w") as f:
            json.dump(res, f, indent=1)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
