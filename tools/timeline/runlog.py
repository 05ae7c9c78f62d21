"""The run log of a real cluster run: what a tool saw, one JSON object a line.

    log = RunLog(os.path.join(d, "run.jsonl"), source="chaos", nodes=[1, 2, 3, 4, 5])
    poller = StatusPoller(log, d)            # a thread: status of every node
    poller.start()
    log.write("fault", fault="kill", node=3, text="kill 3 (leader)")
    log.write("op", process=1, type="invoke", f="put", key="a", value="p1-1")
    poller.stop(); log.close()

Every line has "t" (milliseconds since the log was opened, monotonic) and
"kind"; the first is kind "meta" with "t0_unix" (the wall clock then, to line
up the nodes' own JSON event logs) and whatever the tool says about the run.
Kinds read by tools/timeline/runview.py (docs/timeline.md):
  status  node, up, and when up: role, term, leader, commit, applied,
          snapshot, voters, learners (written when any of them changed)
  fault   fault (kill, restart, pause, resume, partition, heal, noise,
          transfer, remove, rejoin, ...), text, and node or nodes
  net     the fault proxy's running totals (tools/ops/udp_proxy.py:
          forwarded, dropped, duplicated, delayed, cut), when it runs
  op      a client event in tools/history/lincheck.py's format
  note    text: anything else worth a mark on the page
CPython only (threads); the tools that write it run on the host.
"""
import json
import threading
import time

_STATUS_KEYS = ("role", "term", "leader", "commit", "applied", "snapshot", "voters", "learners")


class RunLog:
    def __init__(self, path, **meta):
        self.path = path
        self.f = open(path, "w")
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        rec = {"t": 0.0, "kind": "meta", "t0_unix": time.time()}
        rec.update(meta)
        self._put(rec)

    def ms(self):
        return round((time.monotonic() - self.t0) * 1000.0, 1)

    def _put(self, rec):
        with self.lock:
            if self.f is not None:
                self.f.write(json.dumps(rec) + "\n")
                self.f.flush()

    def write(self, kind, **fields):
        rec = {"t": self.ms(), "kind": kind}
        rec.update(fields)
        self._put(rec)

    def close(self):
        with self.lock:
            if self.f is not None:
                self.f.close()
                self.f = None


class StatusPoller:
    """Asks every node for its status every `every_s` seconds, from its own
    client, and logs what changed. Bounded: stops on stop() or after
    max_s seconds, whichever comes first."""

    def __init__(self, log, d, every_s=0.1, max_s=3600.0, timeout_ms=150):
        self.log = log
        self.d = d
        self.every_s = every_s
        self.max_s = max_s
        self.timeout_ms = timeout_ms
        self.last = {}
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        import cluster  # tools/ops: this module is used from there
        c = cluster.client(self.d)
        deadline = time.monotonic() + self.max_s
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    ids = [n["id"] for n in cluster.load(self.d)["nodes"]]
                except (OSError, ValueError, KeyError):
                    ids = []  # cluster.json rewritten under us: next round
                for nid in ids:
                    # One at a time, each logged when its answer came.
                    self.record(nid, c.status(nid, self.timeout_ms))
                self.record_net()
                self.polls += 1
                self._stop.wait(self.every_s)
        finally:
            c.close()

    def record_net(self):
        import os
        try:
            with open(os.path.join(self.d, "proxy_stats.json")) as f:
                st = json.load(f)
        except (OSError, ValueError):
            return  # no proxy, or caught mid-rename
        key = json.dumps(st, sort_keys=True)
        if self.last.get("net") != key:
            self.last["net"] = key
            self.log.write("net", **st)

    def record(self, nid, st):
        if st is None:
            rec = {"node": nid, "up": False}
        else:
            rec = {"node": nid, "up": True}
            for k in _STATUS_KEYS:
                if k in st:
                    rec[k] = st[k]
        key = json.dumps(rec, sort_keys=True)
        if self.last.get(nid) != key:
            self.last[nid] = key
            self.log.write("status", **rec)
