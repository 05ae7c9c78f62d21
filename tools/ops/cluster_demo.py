"""`make demo`: a real 5-node MicroPython cluster on loopback survives losing its leader.

1. boot 5 MicroPython unix-port node processes (tools/ops/cluster.py), each with
   its own data folder as flash, and wait for a leader;
2. write 1,000 keys through the client;
3. SIGKILL the leader and time how long until a new leader commits a write;
4. restart the old leader and wait until it has caught up;
5. read all 1,000 keys (and the failover key) back through the cluster and
   verify every value;
6. print a summary, shut everything down, exit 0 only if every check passed.

The run log (DIR/run.jsonl, tools/timeline/runlog.py) records every node's
status every 0.1 s, the kill and the restart, and every put and get with
its times; --timeline OUT.html draws the run (tools/timeline/).

    python3 tools/ops/cluster_demo.py [--nodes 5] [--keys 1000] [--runtime micropython|cpython] [--keep DIR] [--timeline OUT.html]

Bounded: every wait has a deadline; the whole run is cut off at 180 s.
"""
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import cluster  # noqa: E402
import runlog  # noqa: E402
from raftio.client import ClientError  # noqa: E402

_LIMIT_S = 180


class Demo:
    def __init__(self, d, nodes, keys, runtime):
        self.d = d
        self.nodes = nodes
        self.keys = keys
        self.runtime = runtime
        self.checks = []
        self.t0 = time.monotonic()
        self.log = None  # the run log, once the cluster is up

    def check(self, name, ok, detail=""):
        self.checks.append((name, ok, detail))
        print("  [%s] %s%s" % ("ok" if ok else "FAIL", name, (": " + detail) if detail else ""))
        sys.stdout.flush()
        return ok

    def run(self):
        d = self.d
        print("mpraft demo: %d %s nodes on 127.0.0.1, data in %s" % (self.nodes, self.runtime, d))
        t = time.monotonic()
        try:
            lead = cluster.up(d, self.nodes, self.runtime, timeout_s=20)
        except cluster.ClusterError as e:
            return self.check("cluster boots and elects a leader", False, str(e))
        self.check("cluster boots and elects a leader", True,
                   "node %d after %.2f s" % (lead, time.monotonic() - t))
        self.log = runlog.RunLog(os.path.join(d, "run.jsonl"), source="demo",
                                 nodes=list(range(1, self.nodes + 1)), keys=self.keys,
                                 runtime=self.runtime,
                                 command="python3 tools/ops/cluster_demo.py --nodes %d --keys %d "
                                 "--runtime %s" % (self.nodes, self.keys, self.runtime))
        poller = runlog.StatusPoller(self.log, d, max_s=_LIMIT_S).start()
        c = cluster.client(d, timeout_ms=5000, try_ms=50)
        try:
            return self._body(c, lead)
        finally:
            c.close()
            poller.stop()
            self.log.close()

    def _op(self, f, key, value=None, call=None):
        """One client call, logged as invoke and ok (or info: it may have
        happened) in the run log; returns the call's result."""
        ev = {"process": 0, "f": f, "key": key}
        if f == "put":
            ev["value"] = value
        self.log.write("op", type="invoke", **ev)
        try:
            v = call()
        except ClientError:
            self.log.write("op", type="fail" if f == "get" else "info", **ev)
            raise
        if f == "get":
            ev["value"] = None if v is None else v.decode()
        self.log.write("op", type="ok", **ev)
        return v

    def _body(self, c, lead):
        d = self.d
        n = self.keys
        t = time.monotonic()
        try:
            for i in range(n):
                k, v = "key%04d" % i, "value-%d-%d" % (i, i * i)
                self._op("put", k, v, lambda: c.put(k, v))
        except ClientError as e:
            return self.check("write %d keys" % n, False, "at key %d: %s" % (i, e))
        dt = time.monotonic() - t
        self.check("write %d keys" % n, True, "%.2f s, %.0f puts/s, one at a time" % (dt, n / dt))
        old = cluster.leader(d) or lead
        kill_t = time.monotonic()
        self.log.write("fault", fault="kill", node=old, text="kill leader %d" % old)
        cluster.kill(d, old)
        print("  killed leader %d (SIGKILL)" % old)
        c.leader = 0
        committed = False
        while time.monotonic() - kill_t < 15:
            try:
                self._op("put", "failover", "after-%d" % old,
                         lambda: c.put("failover", "after-%d" % old))
                committed = True
                break
            except ClientError:
                pass
        fail_ms = (time.monotonic() - kill_t) * 1000
        new = cluster.leader(d)
        if not self.check("a new leader commits", committed and new not in (0, old),
                          "node %d, first commit %.0f ms after the kill" % (new, fail_ms)):
            return False
        self.failover_ms = fail_ms
        cluster.start(d, old, self.runtime)
        self.log.write("fault", fault="restart", node=old, text="restart %d" % old)
        t = time.monotonic()
        caught = None
        while time.monotonic() - t < 20:
            st = c.status(old, 200)
            ls = c.status(new, 200)
            if st and ls and st["applied"] >= ls["commit"] and st["leader"] == new:
                caught = st
                break
            time.sleep(0.1)
        self.check("old leader %d restarts and catches up" % old, caught is not None,
                   "applied %d, follower of %d, after %.2f s"
                   % (caught["applied"], new, time.monotonic() - t) if caught else "timed out")
        t = time.monotonic()
        bad = []
        try:
            for i in range(n):
                k = "key%04d" % i
                v = self._op("get", k, call=lambda: c.get(k))
                if v != ("value-%d-%d" % (i, i * i)).encode():
                    bad.append((i, v))
            fv = self._op("get", "failover", call=lambda: c.get("failover"))
        except ClientError as e:
            return self.check("read %d keys back" % n, False, str(e))
        dt = time.monotonic() - t
        self.check("read %d keys back and verify" % n, not bad and fv == ("after-%d" % old).encode(),
                   "%.2f s, %d wrong%s" % (dt, len(bad), (", e.g. %r" % (bad[0],)) if bad else ""))
        rows = cluster.statuses(d, c)
        up = [st for _, st in rows if st]
        commits = set(st["commit"] for st in up)
        self.check("all %d nodes serve the same log" % self.nodes,
                   len(up) == self.nodes and len(set(st["term"] for st in up)) == 1,
                   "terms %s, commit %s..%s" % (sorted(set(st["term"] for st in up)),
                                                min(commits) if commits else "-",
                                                max(commits) if commits else "-"))
        return True


def main(argv):
    opts = {"nodes": 5, "keys": 1000, "runtime": "micropython", "keep": None, "timeline": None}
    i = 0
    while i < len(argv):
        k = argv[i][2:] if argv[i].startswith("--") else None
        if k not in opts or i + 1 >= len(argv):
            print(__doc__.strip().splitlines()[-3].strip())
            return 2
        opts[k] = argv[i + 1] if k in ("runtime", "keep", "timeline") else int(argv[i + 1])
        i += 2
    d = opts["keep"] or tempfile.mkdtemp(prefix="mpraft-demo-")
    demo = Demo(d, opts["nodes"], opts["keys"], opts["runtime"])

    def _alarm(signum, frame):
        raise TimeoutError("demo ran past %d s" % _LIMIT_S)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(_LIMIT_S)
    try:
        demo.run()
    except KeyboardInterrupt:
        demo.check("not interrupted", False)
    except TimeoutError as e:
        demo.check("finished in time", False, str(e))
    finally:
        signal.alarm(0)
        cluster.down(d)
        if opts["timeline"] and demo.log is not None:
            import page
            import runview
            page.write(opts["timeline"], runview.load(d))
            print("timeline: %s" % opts["timeline"])
        if opts["keep"] is None:
            shutil.rmtree(d, ignore_errors=True)
    failed = [c for c in demo.checks if not c[1]]
    total = time.monotonic() - demo.t0
    print("summary: %d checks, %d failed; failover %s; %.1f s total" % (
        len(demo.checks), len(failed),
        "%.0f ms" % demo.failover_ms if hasattr(demo, "failover_ms") else "not measured", total))
    if failed or not demo.checks:
        print("DEMO FAILED: " + ", ".join(c[0] for c in failed))
        return 1
    print("DEMO PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
