"""`make cloud-demo`: five mpraft containers on a podman network.

1. make a podman network (its own subnet, names resolve between
   containers), a podman secret holding the cluster key, one volume per node;
   start five containers of the image (`make image`), each a CPython node
   with /metrics, configured from environment variables, the key mounted
   from the secret, its data on its volume;
2. wait for a leader; check every node's /metrics (parsed) and /readyz;
3. three clients put/get/cas/delete on a few keys for the whole run (their
   history is checked at the end), while one more writes K keys;
4. `podman kill` the leader, time until a new leader commits a write;
   `podman start` it again and wait until it has caught up;
5. `podman network disconnect` the leader (a partition: the other four elect
   a new leader and keep committing), reconnect it, wait until it caught up;
6. read every key back; final reads join the history; lincheck
   (tools/history/lincheck.py) must find it linearizable;
7. remove every container, volume, secret and network it made, pass or fail.

    python3 tools/cloud/cloud_demo.py [--keys 300] [--image mpraft:latest] [--keep DIR]

Root, podman with runc (`--runtime runc`: crun fails on this machine's
hybrid cgroups). Traffic stays on the podman bridge between this host and
the containers. Every wait is bounded; the whole run is cut off at 300 s.
Exit 0 only if every check passed.
"""
import binascii
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py
import paths  # noqa: E402
paths.setup()

import chaos  # noqa: E402
import cluster  # noqa: E402
import lincheck  # noqa: E402
from raftio.client import ClientError  # noqa: E402

PREFIX = "mpraftdemo"
SUBNET = "10.90.213"
RUN = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
_LIMIT_S = 300
KEYS = ["a", "b", "c", "d"]


def podman(*args, check=True, quiet=True):
    r = subprocess.run(["podman"] + list(args), capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise RuntimeError("podman %s: %s" % (" ".join(args[:3]), (r.stderr or r.stdout).strip()))
    return r.stdout.strip()


def ip(nid):
    return "%s.%d" % (SUBNET, 10 + nid)


def name(nid):
    return "%s-%d" % (PREFIX, nid)


def cleanup():
    """Remove everything this demo makes (also leftovers of an earlier run)."""
    for nid in range(1, 6):
        podman("rm", "-f", "-t", "0", name(nid), check=False)
        podman("volume", "rm", "-f", "%s-data-%d" % (PREFIX, nid), check=False)
    podman("secret", "rm", PREFIX + "-key", check=False)
    podman("network", "rm", "-f", PREFIX, check=False)


class Demo:
    def __init__(self, d, keys, image):
        self.d = d
        self.keys = keys
        self.image = image
        self.checks = []
        self.t0 = time.monotonic()
        self.failover_ms = None

    def check(self, what, ok, detail=""):
        self.checks.append((what, ok, detail))
        print("  [%s] %s%s" % ("ok" if ok else "FAIL", what, (": " + detail) if detail else ""))
        sys.stdout.flush()
        return ok

    def start_node(self, nid, cl):
        peers = ",".join("%d=%s:7000" % (n["id"], name(n["id"])) for n in cl["nodes"])
        podman("run", "-d", *RUN, "--name", name(nid), "--hostname", name(nid),
               "--network", PREFIX, "--ip", ip(nid),
               "--secret", "%s-key,target=mpraft-key,uid=10001,mode=0400" % PREFIX,
               "-v", "%s-data-%d:/data" % (PREFIX, nid),
               "-e", "MPRAFT_NODE_ID=%d" % nid, "-e", "MPRAFT_PEERS=" + peers,
               "-e", "MPRAFT_CLUSTER_ID=%d" % cl["cluster_id"],
               "-e", "MPRAFT_KEY_FILE=/run/secrets/mpraft-key", self.image)

    def setup(self):
        cleanup()
        key = binascii.hexlify(os.urandom(32)).decode()
        cl = {"cluster_id": int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF, "key": key,
              "nodes": [{"id": i, "host": ip(i), "port": 7000} for i in range(1, 6)]}
        with open(os.path.join(self.d, "cluster.json"), "w") as f:
            json.dump(cl, f)
        kf = os.path.join(self.d, "key")
        with open(kf, "w") as f:
            f.write(key)
        podman("network", "create", "--subnet", SUBNET + ".0/24", PREFIX)
        podman("secret", "create", PREFIX + "-key", kf)
        os.remove(kf)
        for i in range(1, 6):
            podman("volume", "create", "%s-data-%d" % (PREFIX, i))
        t = time.monotonic()
        for i in range(1, 6):
            self.start_node(i, cl)
        lead = cluster.wait_leader(self.d, 60)
        self.check("5 containers boot and elect a leader", bool(lead),
                   "node %d after %.1f s" % (lead, time.monotonic() - t))
        return cl, lead

    def metrics_ok(self):
        from prometheus_client.parser import text_string_to_metric_families
        has = 0
        for i in range(1, 6):
            with urllib.request.urlopen("http://%s:9101/metrics" % ip(i), timeout=3) as r:
                for fam in text_string_to_metric_families(r.read().decode()):
                    for s in fam.samples:
                        if s.name == "mpraft_has_leader":
                            has += s.value
        return has

    def ready(self, nid):
        try:
            with urllib.request.urlopen("http://%s:9101/readyz" % ip(nid), timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def caught_up(self, c, nid, timeout_s=30):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            lead = cluster.leader(self.d, c)
            st = c.status(nid, 300)
            ls = c.status(lead, 300) if lead else None
            if st and ls and st["leader"] == lead and st["applied"] >= ls["commit"] - 5:
                return st
            time.sleep(0.2)
        return None

    def failover(self, c, old, what):
        t = time.monotonic()
        c.leader = 0
        while time.monotonic() - t < 20:
            try:
                c.put("failover-%s" % what, "after-%d" % old)
                break
            except ClientError:
                pass
        ms = (time.monotonic() - t) * 1000
        new = cluster.leader(self.d, c)
        return new, ms

    def run(self):
        cl, lead = self.setup()
        if not lead:
            return
        has = None
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                has = self.metrics_ok()
            except OSError:
                has = None
            if has == 5 and all(self.ready(i) for i in range(1, 6)):
                break
            time.sleep(0.5)
        self.check("every node's /metrics parses and sum(mpraft_has_leader) == 5, /readyz 200",
                   has == 5 and all(self.ready(i) for i in range(1, 6)), "sum %s" % has)
        hist = chaos.History()
        stop = threading.Event()
        workers = [threading.Thread(target=chaos.worker, args=(self.d, p, hist, stop, KEYS,
                                                               1000 + p))
                   for p in range(3)]
        for w in workers:
            w.start()
        c = cluster.client(self.d, timeout_ms=5000, try_ms=50)
        try:
            self._body(c, hist)
        finally:
            stop.set()
            for w in workers:
                w.join(30)
            c.close()
        self.check("client threads stop", not any(w.is_alive() for w in workers))
        try:
            chaos.final_reads(self.d, hist, KEYS)
        except ClientError as e:
            self.check("final reads", False, str(e))
            return
        lin = lincheck.check_events(hist.events, max_configs=2000000)
        with open(os.path.join(self.d, "history.json"), "w") as f:
            json.dump(hist.events, f)
        self.check("history of 3 concurrent clients is linearizable",
                   lin["linearizable"] is True and lin["ok"] >= 20,
                   "%d ops, %d ok, %d fail, %d info" % (lin["ops"], lin["ok"], lin["fail"],
                                                          lin["info"]))

    def _body(self, c, hist):
        n = self.keys
        t = time.monotonic()
        try:
            for i in range(n):
                c.put("key%04d" % i, "value-%d" % i)
        except ClientError as e:
            return self.check("write %d keys" % n, False, str(e))
        dt = time.monotonic() - t
        self.check("write %d keys" % n, True, "%.2f s, %.0f puts/s" % (dt, n / dt))
        # 4. podman kill the leader
        old = cluster.leader(self.d, c)
        podman("kill", name(old))
        print("  podman kill %s (leader)" % name(old))
        new, ms = self.failover(c, old, "kill")
        self.failover_ms = ms
        if not self.check("a new leader commits after the kill", new not in (0, old),
                          "node %d, first commit %.0f ms after the kill" % (new, ms)):
            return False
        podman("start", name(old))
        st = self.caught_up(c, old)
        self.check("%s restarts (podman start) and catches up" % name(old), st is not None,
                   "applied %d" % st["applied"] if st else "timed out")
        # 5. partition: the leader loses its network
        part = cluster.leader(self.d, c)
        podman("network", "disconnect", PREFIX, name(part))
        print("  podman network disconnect %s %s (leader)" % (PREFIX, name(part)))
        new, ms = self.failover(c, part, "partition")
        self.check("the majority elects a new leader and commits", new not in (0, part),
                   "node %d, first commit %.0f ms after the disconnect" % (new, ms))
        try:
            for i in range(20):
                c.put("during-partition-%d" % i, "x")
            ok = True
        except ClientError:
            ok = False
        self.check("writes go on during the partition", ok)
        podman("network", "connect", "--ip", ip(part), PREFIX, name(part))
        st = self.caught_up(c, part)
        self.check("%s reconnects and catches up" % name(part), st is not None,
                   "applied %d, term %d" % (st["applied"], st["term"]) if st else "timed out")
        # 6. read back
        bad = []
        try:
            for i in range(n):
                if c.get("key%04d" % i) != ("value-%d" % i).encode():
                    bad.append(i)
            fk = c.get("failover-kill")
        except ClientError as e:
            return self.check("read %d keys back" % n, False, str(e))
        self.check("read %d keys back and verify" % n, not bad and fk is not None,
                   "%d wrong" % len(bad))
        return True


def main(argv):
    opts = {"keys": "300", "image": "mpraft:latest", "keep": None}
    i = 0
    while i < len(argv):
        k = argv[i][2:] if argv[i].startswith("--") else None
        if k not in opts or i + 1 >= len(argv):
            print("usage: cloud_demo.py [--keys 300] [--image mpraft:latest] [--keep DIR]")
            return 2
        opts[k] = argv[i + 1]
        i += 2
    if shutil.which("podman") is None:
        print("cloud-demo: podman not found (make cloud-demo installs it; root)")
        return 2
    if subprocess.run(["podman", "image", "exists", opts["image"]]).returncode != 0:
        print("cloud-demo: no image %s (make image)" % opts["image"])
        return 2
    d = opts["keep"] or tempfile.mkdtemp(prefix="mpraft-cloud-")
    os.makedirs(d, exist_ok=True)
    demo = Demo(d, int(opts["keys"]), opts["image"])
    print("mpraft cloud demo: 5 containers of %s on podman network %s (%s.0/24)" % (
        opts["image"], PREFIX, SUBNET))

    def _alarm(signum, frame):
        raise TimeoutError("cloud demo ran past %d s" % _LIMIT_S)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(_LIMIT_S)
    try:
        demo.run()
    except (RuntimeError, TimeoutError, OSError) as e:
        demo.check("ran to the end", False, str(e))
    except KeyboardInterrupt:
        demo.check("not interrupted", False)
    finally:
        signal.alarm(0)
        for nid in range(1, 6):
            logs = subprocess.run(["podman", "logs", name(nid)], capture_output=True, text=True,
                                  timeout=30)
            with open(os.path.join(d, "%s.log" % name(nid)), "w") as f:
                f.write(logs.stdout + logs.stderr)
        cleanup()
        left = podman("ps", "-a", "--filter", "name=" + PREFIX, "--format", "{{.Names}}",
                      check=False)
        demo.check("every container, volume, secret and network removed", left == "", left)
        if opts["keep"] is None:
            shutil.rmtree(d, ignore_errors=True)
    failed = [c for c in demo.checks if not c[1]]
    print("summary: %d checks, %d failed; failover %s; %.1f s total" % (
        len(demo.checks), len(failed),
        "%.0f ms" % demo.failover_ms if demo.failover_ms is not None else "not measured",
        time.monotonic() - demo.t0))
    if failed or not demo.checks:
        print("CLOUD DEMO FAILED: " + ", ".join(c[0] for c in failed))
        return 1
    print("CLOUD DEMO PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
