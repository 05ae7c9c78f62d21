"""The "processes" backend of the cluster fixture (clusterfix.py)."""
from clusterfix import Cluster, Unavailable, _s


# -- "processes": real MicroPython node processes ------------------------------------

class ProcessCluster(Cluster):
    """Five MicroPython unix-port node processes on 127.0.0.1 behind the
    fault proxy (tools/ops/cluster.py up --proxy); CPython only.

    crash(i) and power_cut(i) are both SIGKILL: a process cannot lose power.
    That is the closest honest equivalent: the node gets no chance to run
    any code, and what it had not handed to the OS is gone; what it had
    written but not flushed (fsync on the unix port) survives in the page
    cache, where a real power cut would lose it. Partitions are the proxy's
    (node to node traffic only; clients reach every node). step(n) sleeps n
    of the board's ticks. close() stops every process this fixture started.
    """

    backend = "processes"
    WAIT = 1500   # 15 s at 10 ms ticks: process starts and elections are real time

    def __init__(self, nodes=5, d=None, runtime="micropython"):
        Cluster.__init__(self)
        import json
        import os
        import tempfile
        import time
        import cluster
        self._cluster = cluster
        self._time = time
        self.runtime = runtime
        self._own = d is None
        self.dir = d or tempfile.mkdtemp(prefix="mpraft-clusterfix-")
        self.client = None
        self._vias = {}
        try:
            cluster.up(self.dir, nodes, runtime, timeout_s=30, proxy=True)
            with open(os.path.join(self.dir, "board.json")) as f:
                self.tick_ms = json.load(f)["tick_ms"]
            self.cl = cluster.load(self.dir)
            self.ids = [n["id"] for n in self.cl["nodes"]]
            self.client = cluster.client(self.dir, timeout_ms=self.WAIT * self.tick_ms)
        except BaseException:
            cluster.down(self.dir)
            raise
        self._t0 = time.monotonic()
        self._status = None

    def now(self):
        return int((self._time.monotonic() - self._t0) * 1000 / self.tick_ms)

    def step(self, n=1):
        self._time.sleep(n * self.tick_ms / 1000.0)

    def _statuses(self):
        return self._cluster.statuses(self.dir, self.client, 100)

    def views(self):
        out = {}
        for i, st in self._statuses():
            if st:
                out[i] = (st["role"] == "leader", st["term"], st["leader"])
        return out

    def applied(self, i):
        st = self.client.status(i, 300)
        assert st is not None, "node %d does not answer" % i
        return st["applied"]

    def _via(self, i):
        """A client that talks to node i only, in the main client's session."""
        from raftio.client import Client
        c = self._vias.get(i)
        if c is None:
            n = [n for n in self.cl["nodes"] if n["id"] == i][0]
            c = self._vias[i] = Client(self.cl["cluster_id"], self.cl["key"],
                                       [(i, n["host"], n["port"])])
        if not self.client.cid:
            self.client.register()
        c.cid = self.client.cid
        c.seq = self.client.seq
        return c

    def put(self, key, value, via=None, within=None):
        from raftio.client import ClusterUnavailable
        within = self.WAIT if within is None else within
        self.client.timeout_ms = within * self.tick_ms
        c = self.client
        try:
            if via is not None:
                c = self._via(via)   # may register the session first
                c.timeout_ms = within * self.tick_ms
            c.put(key, value)
            return True
        except ClusterUnavailable:
            return False
        finally:
            if c is not self.client:
                self.client.seq = c.seq   # the seq is spent either way

    def get(self, key, via=None, within=None):
        from raftio.client import ClusterUnavailable
        within = self.WAIT if within is None else within
        self.client.timeout_ms = within * self.tick_ms
        try:
            c = self.client if via is None else self._via(via)
            c.timeout_ms = within * self.tick_ms
            v = c.get(key)
        except ClusterUnavailable:
            raise Unavailable("processes backend: no read of %r served within %d ticks"
                              % (key, within))
        return None if v is None else _s(v)

    def partition(self, *groups):
        self._cluster.faults(self.dir, partition=self._groups(groups))

    def heal(self):
        self._cluster.faults(self.dir)

    def crash(self, i):
        assert self._cluster.kill(self.dir, i), "node %d was not running" % i

    def power_cut(self, *ids):
        for i in ids:
            self.crash(i)

    def restart(self, i):
        assert self._cluster.pid(self.dir, i) is None, "node %d is running" % i
        self._cluster.start(self.dir, i, self.runtime)

    def check(self):
        """No node printed a traceback."""
        import os
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name)) as f:
                    text = f.read()
                assert "Traceback" not in text, "%s:\n%s" % (name, text[-2000:])

    def close(self):
        """Stop every process (nodes and proxy); a folder this fixture made
        itself (no d= given) is removed too."""
        try:
            self._cluster.down(self.dir)
        finally:
            for c in [self.client] + list(self._vias.values()):
                if c is not None:
                    try:
                        c.close()
                    except Exception:
                        pass
            if self._own:
                import shutil
                shutil.rmtree(self.dir, ignore_errors=True)
