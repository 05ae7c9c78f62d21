"""The comparison point for cluster_bench.py: 5 PySyncObj processes on loopback.

    python3 tools/bench/pysyncobj_bench.py [--inflight 64,1000] [--seconds 10] [--json FILE]

Each process runs a SyncObj with a replicated dict (pysyncobj.batteries.ReplDict)
and, as PySyncObj's API intends, the callers live inside the node processes:
every process keeps inflight/5 `set` calls outstanding with callbacks, issuing
the next one as each completes. Counts completed sets and their latency over
the same window in every process; prints one line per level and a JSON line.
Defaults of SyncObjConf otherwise (TCP between nodes, batching on, no
journal file: in-memory log). Only 127.0.0.1 is used.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import cluster  # noqa: E402

_NODE = r"""
import json, os, sys, threading, time
from pysyncobj import SyncObj, SyncObjConf, FAIL_REASON
from pysyncobj.batteries import ReplDict
me, peers, n, start_at, secs = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
d = ReplDict()
o = SyncObj(me, peers, consumers=[d], conf=SyncObjConf(dynamicMembershipChange=False))
def cpu():
    t = os.times()
    return t[0] + t[1]
while time.time() < start_at:
    time.sleep(0.01)
end = time.time() + secs
cpu0 = cpu()
lock = threading.Lock()
lat = []
st = {"done": 0, "errors": 0}
def issue(i, seq):
    t = time.perf_counter()
    def cb(res, err):
        if err == FAIL_REASON.SUCCESS:
            with lock:
                if time.time() < end:
                    lat.append(time.perf_counter() - t)
                    st["done"] += 1
        else:
            st["errors"] += 1
        if time.time() < end:
            issue(i, seq + 1)
    d.set("k%s-%d" % (me[-2:], i % 64), seq, callback=cb)
for i in range(n):
    issue(i, 0)
while time.time() < end:
    time.sleep(0.005)
cpu1 = cpu()
leader = o._isLeader()
while time.time() < end + 0.5:
    time.sleep(0.05)
with lock:
    lat.sort()
    out = {"done": st["done"], "errors": st["errors"], "cpu_s": cpu1 - cpu0, "leader": leader,
           "lat_ms": [lat[int(len(lat) * q)] * 1000 for q in (0.5, 0.99)] if lat else None,
           "all": [x * 1000 for x in lat[::max(1, len(lat) // 2000)]]}
print(json.dumps(out))
sys.stdout.flush()
o.destroy()
"""


def run_level(inflight, secs, nodes=5):
    ports = cluster.free_ports(nodes)
    addrs = ["127.0.0.1:%d" % p for p in ports]
    start_at = time.time() + 4.0  # elections and connections first
    per = [inflight // nodes + (1 if k < inflight % nodes else 0) for k in range(nodes)]
    procs = []
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "node.py")
        with open(script, "w") as f:
            f.write(_NODE)
        try:
            for k in range(nodes):
                peers = ",".join(a for a in addrs if a != addrs[k])
                procs.append(subprocess.Popen(
                    [sys.executable, script, addrs[k], peers, str(per[k]), str(start_at),
                     str(secs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            outs = []
            for p in procs:
                o, e = p.communicate(timeout=secs + 60)
                lines = [x for x in o.splitlines() if x.startswith("{")]
                if not lines:
                    raise RuntimeError("pysyncobj node failed: %s" % e[-500:])
                outs.append(json.loads(lines[-1]))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    done = sum(o["done"] for o in outs)
    lat = sorted(x for o in outs for x in o["all"])
    # CPU per committed op by role (os.times in each process: user + system,
    # the same figure as /proc/PID/stat). Callers live in the node processes,
    # so each node's figure includes its share of the load generation.
    lead = [o["cpu_s"] for o in outs if o["leader"]]
    fol = [o["cpu_s"] for o in outs if not o["leader"]]
    cpu = {"leader_us": lead[0] * 1e6 / done if done and len(lead) == 1 else None,
           "follower_us": sum(fol) / len(fol) * 1e6 / done if done and fol else None,
           "all_us": sum(o["cpu_s"] for o in outs) * 1e6 / done if done else None}
    return {"inflight": inflight, "ops_per_s": done / secs, "leaders": len(lead),
            "p50_ms": lat[len(lat) // 2] if lat else None,
            "p99_ms": lat[int(len(lat) * 0.99)] if lat else None,
            "errors": sum(o["errors"] for o in outs), "leader_us": cpu["leader_us"],
            "follower_us": cpu["follower_us"], "all_us": cpu["all_us"]}


def _us(x):
    return "%.1f" % x if x is not None else "-"


def main(argv):
    opts = {"inflight": "64,1000", "seconds": "10", "json": None}
    i = 0
    while i < len(argv):
        k = argv[i][2:]
        if not argv[i].startswith("--") or k not in opts or i + 1 >= len(argv):
            print(__doc__.strip().splitlines()[2].strip())
            return 2
        opts[k] = argv[i + 1]
        i += 2
    rows = []
    for n in [int(x) for x in opts["inflight"].split(",")]:
        r = run_level(n, float(opts["seconds"]))
        rows.append(r)
        print("pysyncobj inflight %4d: %7.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  (%d errors)  "
              "CPU/op leader %s us, follower %s us, all %s us"
              % (n, r["ops_per_s"], r["p50_ms"] or -1, r["p99_ms"] or -1, r["errors"],
                 _us(r["leader_us"]), _us(r["follower_us"]), _us(r["all_us"])))
        sys.stdout.flush()
    if opts["json"]:
        with open(opts["json"], "w") as f:
            json.dump(rows, f, indent=1)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
