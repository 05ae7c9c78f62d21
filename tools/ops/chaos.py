"""Chaos run on a real cluster: five MicroPython nodes, concurrent clients,
random faults for as long as you like, then a linearizability check.

    python3 tools/ops/chaos.py [--seconds 60] [--seed 1] [--clients 6] [--dir DIR]
                           [--json FILE] [--no-membership] [--timeline OUT.html]

(`make chaos SECONDS=300 SEED=7`.) Boots 5 nodes behind tools/ops/udp_proxy.py
(cluster.py up --proxy) and runs CLIENTS closed-loop clients doing put, get,
cas and delete on 4 keys, recording every invocation and outcome. A random
schedule (from SEED, so a failing run can be replayed; timing still varies)
injects, every 0.3 to 1.5 s, one of:

- kill: SIGKILL a node (the leader half the time), restarted 0.5 to 3 s later;
  at most two down at once, so a majority usually survives, but not always
  (a partition can cut the survivors);
- pause: SIGSTOP a node (the leader half the time) for 0.3 to 3 s, then
  SIGCONT: it wakes up believing what it believed, as after a long GC pause
  or a stalled radio (a deposed leader must not serve stale reads);
- partition: a random minority (the leader in it half the time) cut off
  for 0.5 to 3 s;
- noise: loss, duplication and reordering between nodes, up to 20% each;
- transfer: leadership handed to a random node (raftctl transfer);
- membership (not with --no-membership): a follower removed, then added
  back as a learner and promoted to voter, all while the rest goes on.

Then every fault is healed, every node restarted and every removed node made
a voter again, final reads of every key join the history, and the run passes
(exit 0) when tools/history/lincheck.py finds the history linearizable, all five
nodes apply the same log, and no node printed a traceback. Exit 1 otherwise,
2 on a usage error. Prints a summary line and a JSON line. Loopback only;
every wait is bounded (the run ends within SECONDS + about 60 s).

The run log (DIR/cluster/run.jsonl, tools/timeline/runlog.py) keeps what
the run saw with times: every node's status polled every 0.1 s, each fault
injected, each client invocation and outcome. --timeline OUT.html draws it,
with the nodes' own event logs when they wrote any (tools/timeline/).
"""
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import cluster  # noqa: E402
import lincheck  # noqa: E402
import runlog  # noqa: E402
from raftio import wire  # noqa: E402
from raftio.client import ClientError  # noqa: E402

USAGE = ("usage: chaos.py [--seconds 60] [--seed 1] [--clients 6] [--dir DIR] [--json FILE]\n"
         "                [--no-membership] [--timeline OUT.html] [--progress 10]\n"
         "--progress S: a line on stderr every S seconds (0: none)")
KEYS = ["a", "b", "c", "d"]


class History:
    """Invocations and outcomes from many client threads, in real-time order."""

    def __init__(self, log=None):
        self.events = []
        self.lock = threading.Lock()
        self.log = log  # the run log: each event with its time
        self.counts = {"invoke": 0, "ok": 0, "fail": 0, "info": 0}  # events by type

    def add(self, ev):
        with self.lock:
            self.events.append(ev)
            self.counts[ev["type"]] += 1
            if self.log is not None:
                self.log.write("op", **ev)


def worker(d, proc, hist, stop, keys, seed, max_ops=100000):
    """One client: random put/get/cas/delete on keys until stop is set."""
    rnd = random.Random(seed)
    c = cluster.client(d, timeout_ms=1500, try_ms=50, seed=seed)
    n = 0
    try:
        while not stop.is_set() and n < max_ops:
            n += 1
            key = rnd.choice(keys)
            r = rnd.random()
            if r < 0.4:
                v = "p%d-%d" % (proc, n)
                hist.add({"process": proc, "type": "invoke", "f": "put", "key": key, "value": v})
                try:
                    c.put(key, v)
                    hist.add({"process": proc, "type": "ok", "f": "put", "key": key, "value": v})
                except ClientError:
                    hist.add({"process": proc, "type": "info", "f": "put", "key": key, "value": v})
            elif r < 0.75:
                hist.add({"process": proc, "type": "invoke", "f": "get", "key": key})
                try:
                    v = c.get(key)
                    hist.add({"process": proc, "type": "ok", "f": "get", "key": key,
                              "value": None if v is None else v.decode()})
                except ClientError:
                    # A read that got no answer did not happen.
                    hist.add({"process": proc, "type": "fail", "f": "get", "key": key})
            elif r < 0.95:
                # CAS from a value this process may have seen written.
                old = "p%d-%d" % (rnd.randrange(6), rnd.randrange(1, n + 1))
                if rnd.random() < 0.3:
                    old = None
                new = "c%d-%d" % (proc, n)
                hist.add({"process": proc, "type": "invoke", "f": "cas", "key": key,
                          "value": [old, new]})
                try:
                    ok, _ = c.cas(key, old, new)
                    hist.add({"process": proc, "type": "ok" if ok else "fail", "f": "cas",
                              "key": key, "value": [old, new]})
                except ClientError:
                    hist.add({"process": proc, "type": "info", "f": "cas", "key": key,
                              "value": [old, new]})
            else:
                hist.add({"process": proc, "type": "invoke", "f": "delete", "key": key})
                try:
                    c.delete(key)
                    hist.add({"process": proc, "type": "ok", "f": "delete", "key": key})
                except ClientError:
                    hist.add({"process": proc, "type": "info", "f": "delete", "key": key})
    finally:
        c.close()


def final_reads(d, hist, keys):
    """Read every key once the faults are healed; the reads join the history."""
    c = cluster.client(d, timeout_ms=10000)
    try:
        for k in keys:
            hist.add({"process": 99, "type": "invoke", "f": "get", "key": k})
            v = c.get(k)
            hist.add({"process": 99, "type": "ok", "f": "get", "key": k,
                      "value": None if v is None else v.decode()})
    finally:
        c.close()


def converged(d, timeout_s=20):
    """(True, statuses) once every node answers and all applied the same index."""
    deadline = time.monotonic() + timeout_s
    sts = []
    while time.monotonic() < deadline:
        sts = [st for _, st in cluster.statuses(d)]
        if all(sts) and len(set(st["applied"] for st in sts)) == 1:
            return True, sts
        time.sleep(0.2)
    return False, sts


def tracebacks(d):
    out = []
    for name in sorted(os.listdir(d)):
        if name.endswith(".log"):
            with open(os.path.join(d, name)) as f:
                if "Traceback" in f.read():
                    out.append(name)
    return out


class Chaos:
    """The fault schedule; every action is logged as (seconds since start, text)."""

    def __init__(self, d, rnd, membership=True, log=None):
        self.d = d
        self.rnd = rnd
        self.membership = membership
        self.ids = [n["id"] for n in cluster.load(d)["nodes"]]
        self.down = {}        # node id -> monotonic time to restart it
        self.paused = {}      # node id -> (pid, monotonic time to resume it)
        self.heal_at = None   # monotonic time the current partition ends
        self.noise = {}
        self.removed = []     # ids removed from the membership, to add back
        self.log = []
        self.runlog = log
        self.counts = {}
        self.t0 = time.monotonic()
        self.ctl = cluster.client(d, timeout_ms=3000, try_ms=50, seed=rnd.randrange(1 << 30))

    def note(self, kind, text, **fields):
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.log.append((round(time.monotonic() - self.t0, 2), text))
        if self.runlog is not None:
            self.runlog.write("fault", fault=kind, text=text, **fields)

    def _faults(self, partition=None):
        kw = dict(self.noise)
        if partition:
            kw["partition"] = partition
        cluster.faults(self.d, **kw)

    def step(self):
        now = time.monotonic()
        for nid, at in sorted(self.down.items()):
            if now >= at:
                cluster.start(self.d, nid)
                del self.down[nid]
                self.note("restart", "restart %d" % nid, node=nid)
        for nid, (p, at) in sorted(self.paused.items()):
            if now >= at:
                self._resume(nid)
        if self.heal_at is not None and now >= self.heal_at:
            self.heal_at = None
            self._faults()
            self.note("heal", "heal partition")
        r = self.rnd.random()
        lead = cluster.leader(self.d, self.ctl)
        up = [i for i in self.ids if i not in self.down and i not in self.paused]
        if r < 0.25 and len(self.down) + len(self.paused) < 2 and up:
            nid = lead if (lead in up and self.rnd.random() < 0.5) else self.rnd.choice(up)
            cluster.kill(self.d, nid)
            self.down[nid] = now + self.rnd.uniform(0.5, 3.0)
            self.note("kill", "kill %d%s" % (nid, " (leader)" if nid == lead else ""), node=nid)
        elif r < 0.35 and len(self.down) + len(self.paused) < 2 and up:
            nid = lead if (lead in up and self.rnd.random() < 0.5) else self.rnd.choice(up)
            p = cluster.pid(self.d, nid)
            if p is not None:
                os.kill(p, signal.SIGSTOP)
                self.paused[nid] = (p, now + self.rnd.uniform(0.3, 3.0))
                self.note("pause", "pause %d%s" % (nid, " (leader)" if nid == lead else ""),
                          node=nid)
        elif r < 0.5 and self.heal_at is None:
            k = self.rnd.choice([1, 2])
            pool = list(self.ids)
            self.rnd.shuffle(pool)
            minority = pool[:k]
            if lead and self.rnd.random() < 0.5 and lead not in minority:
                minority[0] = lead
            majority = [i for i in self.ids if i not in minority]
            self._faults([minority, majority])
            self.heal_at = now + self.rnd.uniform(0.5, 3.0)
            self.note("partition", "partition %s | %s" % (minority, majority), nodes=minority)
        elif r < 0.7:
            self.noise = {}
            for k in ("drop", "dup", "reorder"):
                if self.rnd.random() < 0.6:
                    self.noise[k] = round(self.rnd.uniform(0.0, 0.2), 3)
            if self.heal_at is None:
                self._faults()
            self.note("noise", "noise %s" % (self.noise,), levels=dict(self.noise))
        elif r < 0.85:
            to = self.rnd.choice(self.ids)
            if self._admin(wire.A_TRANSFER, to):
                self.note("transfer", "transfer to %d" % to, node=to)
        elif self.membership:
            self._membership(lead)

    def _resume(self, nid):
        p, _ = self.paused.pop(nid)
        try:
            os.kill(p, signal.SIGCONT)
        except OSError:
            pass  # killed while paused; the restart takes care of it
        self.note("resume", "resume %d" % nid, node=nid)

    def _admin(self, op, nid, timeout_ms=3000):
        try:
            self.ctl.admin(op, nid, timeout_ms=timeout_ms)
            return True
        except ClientError:
            return False

    def _membership(self, lead):
        if self.removed:
            nid = self.removed[0]
            if self._admin(wire.A_ADD_LEARNER, nid) and self._admin(wire.A_ADD_VOTER, nid):
                self.removed.pop(0)
                self.note("rejoin", "node %d added back as learner, promoted to voter" % nid,
                          node=nid)
        else:
            cand = [i for i in self.ids if i != lead and i not in self.down]
            if cand:
                nid = self.rnd.choice(cand)
                if self._admin(wire.A_REMOVE, nid):
                    self.removed.append(nid)
                    self.note("remove", "remove %d" % nid, node=nid)

    def heal(self, timeout_s=30):
        """Every fault off, every node up, every removed node a voter again."""
        cluster.faults(self.d)
        self.noise = {}
        self.heal_at = None
        self.note("heal", "heal everything", all=True)
        for nid in sorted(self.paused):
            self._resume(nid)
        for nid in sorted(self.down):
            cluster.start(self.d, nid)
        self.down = {}
        deadline = time.monotonic() + timeout_s
        while self.removed and time.monotonic() < deadline:
            nid = self.removed[0]
            if (self._admin(wire.A_ADD_LEARNER, nid, 5000)
                    and self._admin(wire.A_ADD_VOTER, nid, 5000)):
                self.removed.pop(0)
                self.note("rejoin", "node %d added back as learner, promoted to voter" % nid,
                          node=nid)
        self.ctl.close()
        return not self.removed


def progress(chaos, hist, seconds, fails):
    """One line on stderr: elapsed, operations by outcome, faults, failures.
    Failures so far are the nodes that printed a traceback; the history is
    checked once the run ends."""
    c = hist.counts
    sys.stderr.write("chaos: %.0f s of %.0f, %d ops (%d ok, %d fail, %d info), %d faults, "
                     "%d failures\n" % (time.monotonic() - chaos.t0, seconds, c["invoke"],
                                        c["ok"], c["fail"], c["info"],
                                        sum(chaos.counts.values()),
                                        len(fails) + len(tracebacks(chaos.d))))
    sys.stderr.flush()


def run(opts):
    d = opts["dir"] or tempfile.mkdtemp(prefix="mpraft-chaos-")
    cdir = os.path.join(d, "cluster")
    if os.path.exists(cdir):
        shutil.rmtree(cdir)
    rnd = random.Random(opts["seed"])
    res = {"seed": opts["seed"], "seconds": opts["seconds"], "clients": opts["clients"],
           "failures": []}
    fails = res["failures"]
    cluster.up(cdir, 5, "micropython", timeout_s=20, proxy=True)
    log = runlog.RunLog(os.path.join(cdir, "run.jsonl"), source="chaos", seed=opts["seed"],
                        seconds=opts["seconds"], clients=opts["clients"],
                        nodes=[n["id"] for n in cluster.load(cdir)["nodes"]],
                        command="python3 tools/ops/chaos.py --seconds %s --seed %d --clients %d%s"
                        % (opts["seconds"], opts["seed"], opts["clients"],
                           "" if opts["membership"] else " --no-membership"))
    poller = runlog.StatusPoller(log, cdir, max_s=opts["seconds"] + 300).start()
    hist = History(log)
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(cdir, p, hist, stop, KEYS,
                                                     rnd.randrange(1 << 30)))
               for p in range(opts["clients"])]
    chaos = None
    try:
        for t in threads:
            t.start()
        chaos = Chaos(cdir, rnd, opts["membership"], log)
        end = time.monotonic() + opts["seconds"]
        every = opts.get("progress", 10.0)
        shown = time.monotonic()
        while time.monotonic() < end:
            chaos.step()
            time.sleep(rnd.uniform(0.3, 1.5))
            if every > 0 and time.monotonic() - shown >= every:
                shown = time.monotonic()
                progress(chaos, hist, opts["seconds"], fails)
        if not chaos.heal():
            fails.append("removed nodes could not be added back: %s" % chaos.removed)
        # Writes go on for a moment on the healed cluster before they stop.
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    try:
        if any(t.is_alive() for t in threads):
            fails.append("a client thread did not stop")
        final_reads(cdir, hist, KEYS)
        ok, sts = converged(cdir)
        if not ok:
            fails.append("nodes did not converge: applied %s"
                         % [st and st["applied"] for st in sts])
        if opts.get("progress", 10.0) > 0:
            sys.stderr.write("chaos: healed; checking %d ops for linearizability\n"
                             % hist.counts["invoke"])
        lin = lincheck.check_events(hist.events, max_configs=2000000)
        res.update({"ops": lin["ops"], "ok": lin["ok"], "fail": lin["fail"],
                    "info": lin["info"], "linearizable": lin["linearizable"]})
        if lin["linearizable"] is not True:
            fails.append("history not linearizable: %s" % (lin.get("witness") or lin,))
        if lin["ok"] < 20:
            fails.append("only %d operations acknowledged: too few to mean anything" % lin["ok"])
    except ClientError as e:
        fails.append("final reads failed: %s" % e)
    finally:
        poller.stop()
        log.write("note", text="cluster down")
        log.close()
        cluster.down(cdir)
    bad = tracebacks(cdir)
    if bad:
        fails.append("tracebacks in %s" % ", ".join(bad))
    if chaos is not None:
        res["faults"] = chaos.counts
        res["schedule"] = chaos.log
    with open(os.path.join(d, "history.json"), "w") as f:
        json.dump(hist.events, f)
    res["dir"] = d
    res["run_log"] = log.path
    if opts.get("timeline"):
        import page
        import runview
        page.write(opts["timeline"], runview.load(cdir))
        res["timeline"] = opts["timeline"]
    return (1 if fails else 0), res


def parse(argv):
    opts = {"seconds": 60.0, "seed": 1, "clients": 6, "dir": None, "json": None,
            "membership": True, "timeline": None, "progress": 10.0}
    i = 0
    try:
        while i < len(argv):
            a = argv[i]
            if a == "--no-membership":
                opts["membership"] = False
                i += 1
                continue
            if a not in ("--seconds", "--seed", "--clients", "--dir", "--json", "--timeline",
                         "--progress") or i + 1 >= len(argv):
                return None
            v = argv[i + 1]
            key = a[2:]
            opts[key] = (float(v) if key in ("seconds", "progress") else int(v)
                         if key in ("seed", "clients") else v)
            i += 2
    except ValueError:
        return None
    if opts["seconds"] <= 0 or not 1 <= opts["clients"] <= 32 or opts["progress"] < 0:
        return None
    return opts


def main(argv):
    opts = parse(argv)
    if opts is None:
        print(USAGE)
        return 2
    code, res = run(opts)
    print("chaos seed %d, %.0f s, %d clients: %s ops (%s ok, %s fail, %s info), faults %s; "
          "history in %s" % (res["seed"], res["seconds"], res["clients"], res.get("ops", "-"),
                             res.get("ok", "-"), res.get("fail", "-"), res.get("info", "-"),
                             json.dumps(res.get("faults", {}), sort_keys=True), res["dir"]))
    for f in res["failures"]:
        print("FAIL: " + f)
    print("chaos %s" % ("FAILED" if code else "passed: linearizable, converged"))
    if opts["json"]:
        with open(opts["json"], "w") as f:
            json.dump(res, f, indent=1)
    print(json.dumps({k: v for k, v in res.items() if k != "schedule"}))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
