"""Where a leader's microseconds go per committed put, under MicroPython (docs/profile.md).

    python3 tools/bench/profile_leader.py [--inflight 64] [--seconds 10] [--json FILE]

Boots 5 MicroPython nodes on loopback, restarts the leader under
tools/bench/profile_node.py (the same node with each stage of the request
path timed), hands leadership back to it, runs the benchmark's closed-loop
puts (tools/bench/cluster_bench.py) and prints, per stage, calls and self
time per committed put, next to the process's CPU per put from /proc.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import benchcpu  # noqa: E402
import cluster  # noqa: E402
from cluster_bench import Load  # noqa: E402
from raftio import wire  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def start_profiled(d, nid, out):
    log = open(os.path.join(d, "n%d.log" % nid), "a")
    # Not at real-time priority: that would keep wall time equal to CPU time,
    # but a leader that runs the moment a datagram lands never lets requests
    # pile up, so it batches 2-3 puts per append instead of ~30 (measured).
    p = subprocess.Popen([cluster.micropython(), "-X", "heapsize=16M",
                          os.path.join(HERE, "profile_node.py"),
                          "--config", os.path.join(d, "node%d.json" % nid),
                          "--data", os.path.join(d, "n%d" % nid),
                          "--board", os.path.join(d, "board.json"), "--out", out],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         cwd=paths.ROOT, start_new_session=True)
    log.close()
    pids = cluster._pids(d)
    pids[nid] = {"pid": p.pid, "runtime": "micropython", "flush": "on"}
    cluster._save_pids(d, pids)
    return p.pid


def next_dump(out, after, timeout=5.0):
    """The profile written after time `after` (the node writes one a second)."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        try:
            if os.stat(out).st_mtime > after:
                with open(out) as f:
                    return json.load(f)
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise RuntimeError("profile_leader: no profile written to %s" % out)


def make_leader(d, nid, timeout=20.0):
    c = cluster.client(d, timeout_ms=3000)
    try:
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            lead = cluster.wait_leader(d, 10)
            if lead == nid:
                return True
            c.leader = lead
            try:
                c.admin(wire.A_TRANSFER, nid)
            except Exception:
                pass
            time.sleep(0.5)
        return False
    finally:
        c.close()


def table(p0, p1, cpu_us):
    n = p1["applied"] - p0["applied"]
    w = p1["wrapper_us"]
    out = []
    total = 0.0
    all_calls = 0.0
    for name in sorted(p1["stats"]):
        a = p0["stats"].get(name, [0, 0, 0, 0])
        b = p1["stats"][name]
        calls, inside, child, child_calls = [(b[k] - a[k]) / n for k in range(4)]
        # Each wrapped callee costs its caller about w us of timer work:
        # not the caller's own.
        self_us = inside - child - child_calls * w
        out.append({"stage": name, "calls_per_put": calls, "self_us": self_us,
                    "inside_us": inside})
        if name != "wait (poll)":
            total += self_us
            all_calls += calls
    return {"puts": n, "wrapper_us_per_call": w, "wrapped_calls_per_put": all_calls,
            "stages": sorted(out, key=lambda r: -r["self_us"]),
            "sum_self_us": total, "timer_overhead_us": all_calls * w, "cpu_us": cpu_us}


def main(argv):
    opts = {"inflight": "64", "seconds": "10", "json": None}
    i = 0
    while i < len(argv):
        k = argv[i][2:]
        if not argv[i].startswith("--") or k not in opts or i + 1 >= len(argv):
            print(__doc__.strip().splitlines()[2].strip())
            return 2
        opts[k] = argv[i + 1]
        i += 2
    d = tempfile.mkdtemp(prefix="mpraft-prof-")
    out = os.path.join(d, "profile.json")
    try:
        lead = cluster.up(d, 5, "micropython", timeout_s=20)
        cluster.kill(d, lead)
        pid = start_profiled(d, lead, out)
        if not make_leader(d, lead):
            print("profile_leader: node %d did not become leader" % lead)
            return 1
        ld = Load(d, int(opts["inflight"]))
        ld.run(2.0, record=False)
        p0 = next_dump(out, time.time())
        c0 = benchcpu.cpu_split(pid)
        state = {}

        def on_end():
            state["p1"] = next_dump(out, time.time())
            state["c1"] = benchcpu.cpu_split(pid)
        ld.run(float(opts["seconds"]), on_end=on_end)
        ld.close()
        p1, c1 = state["p1"], state["c1"]
        n = p1["applied"] - p0["applied"]
        res = table(p0, p1, (c1[0] + c1[1] - c0[0] - c0[1]) * 1e6 / n if n else None)
        res["user_us"] = (c1[0] - c0[0]) * 1e6 / n if n else None
        res["system_us"] = (c1[1] - c0[1]) * 1e6 / n if n else None
        res["inflight"] = int(opts["inflight"])
        res["puts_per_s"] = ld.done / float(opts["seconds"])
    finally:
        cluster.down(d)
        shutil.rmtree(d, ignore_errors=True)
    print("leader under MicroPython, %d in flight, %d puts (%.0f puts/s while profiled)"
          % (res["inflight"], res["puts"], res["puts_per_s"]))
    print("%-28s %10s %12s %6s" % ("stage (self time)", "calls/put", "us/put", "share"))
    tot = res["sum_self_us"]
    for r in res["stages"]:
        if r["stage"] == "wait (poll)":
            continue
        print("%-28s %10.2f %12.2f %5.0f%%" % (r["stage"], r["calls_per_put"], r["self_us"],
                                               100.0 * r["self_us"] / tot if tot else 0))
    print("%-28s %10s %12.2f" % ("sum of stages", "", tot))
    print("%-28s %10.2f %12.2f   (%.2f us per wrapped call, taken out of the stages)"
          % ("timer wrappers", res["wrapped_calls_per_put"], res["timer_overhead_us"],
             res["wrapper_us_per_call"]))
    print("%-28s %10s %12s   (stages + wrappers + the loop outside them)"
          % ("process CPU (/proc)", "", benchcpu.fmt(res["cpu_us"], "%12.2f", 12)))
    print("%-28s %10s %12s   (the VM: bytecode, hashing, copies)"
          % ("  of which user", "", benchcpu.fmt(res["user_us"], "%12.2f", 12)))
    print("%-28s %10s %12s   (syscalls: sockets, writes, flushes)"
          % ("  of which system", "", benchcpu.fmt(res["system_us"], "%12.2f", 12)))
    if opts["json"]:
        with open(opts["json"], "w") as f:
            json.dump(res, f, indent=1)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
