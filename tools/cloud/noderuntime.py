"""The CPython runtime around a node: /metrics, /healthz, /readyz, JSON logs.

Host-only: the board firmware carries none of this. tools/ops/node_main.py
runs a node with it when given --metrics-port or --log-json (CPython only).
It plugs into the engine's injected infrastructure and changes nothing in
it:

  - the flash (raftio.fs.RealFS) is wrapped so every write and the flush
    that makes it durable are timed: mpraft_flash_write_seconds;
  - the transport is wrapped so a heartbeat sent to a peer and the peer's
    response time a round trip: mpraft_peer_round_trip_seconds{peer};
  - the node's events (raft/events.py, Node.on_event, level INFO) feed the
    counting observer (metrics.Counting) and the JSON log, as
    events.to_dict; where a node has no events API, role, leader and
    election events are derived from the core after each turn (same shape);
  - an HTTP server (httpd.py) polled once per turn without blocking.

The loop: server.run_once() (waits at most until the next tick), then
poll the HTTP server and the event watcher. So a scrape waits at most one
tick (10 ms on the unix board) and never delays the node by more than the
time to format the answer (well under a millisecond).

Readiness (/readyz): the node knows a leader and has applied everything
up to the commit index it saw when it first learned a leader (a restarted
node is ready once it caught up to where the cluster was when it came
back). Liveness (/healthz): the loop turned within the last 2 s.
"""
import json
import os
import socket
import time

import httpd
import metrics
from raft import msg as M
from raft.roles import ROLE_NAMES

try:
    from raft import events as _events
except ImportError:  # the events API not there: derived from state below
    _events = None



class TimedFile:
    """A file whose write() and flush() time goes to a histogram, observed
    at each flush (the point where the writes are durable)."""

    def __init__(self, f, hist):
        self._f = f
        self._h = hist
        self._acc = 0.0

    def write(self, b):
        t = time.perf_counter()
        n = self._f.write(b)
        self._acc += time.perf_counter() - t
        return n

    def flush(self):
        t = time.perf_counter()
        self._f.flush()
        self._h.observe(self._acc + time.perf_counter() - t)
        self._acc = 0.0

    def close(self):
        if self._acc:
            self._h.observe(self._acc)
            self._acc = 0.0
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


class TimedFS:
    """raftio.fs.RealFS with every file opened for writing timed."""

    def __init__(self, fs, hist):
        self._fs = fs
        self._h = hist

    def open(self, name, mode):
        f = self._fs.open(name, mode)
        return f if mode == "rb" else TimedFile(f, self._h)

    def __getattr__(self, name):
        return getattr(self._fs, name)


class RoundTripTransport:
    """The node's transport, passed through, timing heartbeat round trips:
    the leader's HEARTBEAT to a peer and that peer's HEARTBEAT_RESP."""

    def __init__(self, t, counting):
        self._t = t
        self._c = counting
        self._sent = {}  # peer -> perf_counter of the last heartbeat not yet answered

    def send(self, peer_id, writer):
        sent = self._sent

        def timed(buf, off):
            n = writer(buf, off)
            if n > 0 and buf[off] == M.HEARTBEAT and peer_id not in sent:
                sent[peer_id] = time.perf_counter()
            return n
        return self._t.send(peer_id, timed)

    def recv(self):
        got = self._t.recv()
        if got is not None:
            p = self._t.last_peer
            if p and got[2] > 0 and got[0][got[1]] == M.HEARTBEAT_RESP:
                t0 = self._sent.pop(p, None)
                if t0 is not None:
                    self._c.round_trip(p, time.perf_counter() - t0)
        return got

    def __getattr__(self, name):
        return getattr(self._t, name)


class JsonLog:
    """One JSON object per line: t (ms since start), time (UTC, RFC 3339),
    node, level, event and the event's fields (raft.events.to_dict)."""

    def __init__(self, out, node_id, t0):
        self.out = out
        self.node = node_id
        self.t0 = t0

    def write(self, d, level="info"):
        now = time.time()
        rec = {"t": round((time.monotonic() - self.t0) * 1000.0, 3),
               "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) +
               ".%03dZ" % int((now % 1) * 1000),
               "node": self.node, "level": level}
        rec.update(d)
        try:
            self.out.write(json.dumps(rec, sort_keys=False) + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass  # a closed log never stops the node


class Runtime:
    """Runs a raftio.node.Node with metrics, probes and JSON logs."""

    def __init__(self, node, counting, http_host=None, http_port=None, log=None,
                 peer_hosts=None):
        self.node = node
        self.engine = node.engine
        self.counting = counting
        self.labels = {"node": str(node.id)}
        self.t0 = time.monotonic()
        self.last_turn = self.t0
        self.log = JsonLog(log, node.id, self.t0) if log is not None else None
        # Readiness: the commit index seen when a leader was first known.
        self.ready_target = None
        self._state = (None, 0, 0)  # role, leader, term as last seen
        # Peers by host name (containers, Kubernetes): re-resolved now and
        # then, as a restarted container or pod may come back elsewhere.
        self.peer_hosts = sorted((peer_hosts or {}).items())
        self._next_resolve = self.t0 + 5.0
        self._resolve_i = 0
        self._resolved = {}  # peer id -> address last resolved here
        for pid, (host, port) in self.peer_hosts:
            try:
                self._resolved[pid] = socket.getaddrinfo(host, port, socket.AF_INET,
                                                         socket.SOCK_DGRAM)[0][-1]
            except OSError:
                pass
        # The node's events (raft/events.py) at INFO: roles, leaders,
        # elections, membership, snapshots, failed proposals; not every
        # commit (DEBUG) or apply (TRACE). Without the events API, watch().
        self.events = _events is not None and hasattr(node, "on_event")
        if self.events:
            node.on_event(self.event)
            node.set_event_level(_events.INFO)
        t = RoundTripTransport(node.transport, counting)
        node.engine.transport = t
        node.server.transport = t
        self.http = None
        if http_port is not None:
            self.http = httpd.HttpServer(http_host or "127.0.0.1", http_port, self.handle)
        self.emit({"event": "start", "term": node.engine.core.term,
                   "commit": node.engine.core.log.committed})

    # -- events ---------------------------------------------------------------
    def emit(self, d, level="info"):
        self.counting.event(d)
        if self.log is not None:
            self.log.write(d, level)

    def event(self, ev):
        """The engine's observer hook (raft.events tuples)."""
        d = _events.to_dict(ev)
        self.emit(d, d.pop("level", "info"))

    def watch(self):
        """Role, leader and term changes derived from the core after a turn
        (used where the engine reports no events)."""
        r = self.engine.core
        st = (r.role, r.lead, r.term)
        old = self._state
        if st == old:
            return
        self._state = st
        if st[0] != old[0]:
            name = ROLE_NAMES[r.role]
            self.emit({"event": "role", "term": r.term, "role": name, "lead": r.lead},
                      "essential")
            if name in ("candidate", "pre-candidate"):
                self.emit({"event": "election", "term": r.term,
                           "pre": 1 if name == "pre-candidate" else 0}, "info")
        elif st[1] != old[1]:
            self.emit({"event": "leader", "term": r.term, "lead": r.lead}, "essential")

    # -- HTTP -----------------------------------------------------------------
    def ready(self):
        r = self.engine.core
        if not r.lead:
            return False, "no leader known"
        if self.ready_target is None:
            self.ready_target = r.log.committed
        if r.log.applied < self.ready_target:
            return False, "applied %d < %d" % (r.log.applied, self.ready_target)
        return True, "ready: leader %d, applied %d" % (r.lead, r.log.applied)

    def metrics_text(self):
        st = self.node.status()
        st["pending"] = st.get("pending", len(getattr(self.engine, "_pending", ())))
        fams = metrics.from_status(st, self.labels)
        fams += self.counting.families(self.labels)
        rss = _rss_bytes()
        if rss is not None:
            fams.append(metrics.Family("process_resident_memory_bytes").add(self.labels, rss))
        return metrics.exposition(fams)

    def handle(self, path):
        if path == "/metrics":
            return 200, httpd.CONTENT_TYPE, self.metrics_text().encode()
        if path == "/healthz":
            age = time.monotonic() - self.last_turn
            if age < 2.0:
                return 200, "text/plain", b"ok\n"
            return 503, "text/plain", ("loop stalled %.1f s\n" % age).encode()
        if path == "/readyz":
            ok, why = self.ready()
            return (200 if ok else 503), "text/plain", (why + "\n").encode()
        if path == "/status":
            return 200, "application/json", json.dumps(self.node.status()).encode()
        return 404, "text/plain", b"not found: /metrics /healthz /readyz /status\n"

    # -- the loop -------------------------------------------------------------
    def _resolve_one(self, now):
        if not self.peer_hosts or now < self._next_resolve:
            return
        self._next_resolve = now + 2.0
        pid, (host, port) = self.peer_hosts[self._resolve_i % len(self.peer_hosts)]
        self._resolve_i += 1
        try:
            addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][-1]
        except OSError:
            return  # not resolvable right now (the peer's pod is gone): keep the old one
        old = self._resolved.get(pid)
        self._resolved[pid] = addr
        if old is not None and old != addr:
            self.node.transport.set_peer(pid, host, port)
            self.emit({"event": "peer_moved", "peer": pid, "addr": "%s:%d" % addr}, "info")

    def run_once(self):
        self.node.run_once()
        now = time.monotonic()
        self.last_turn = now
        if not self.events:
            self.watch()
        if self.http is not None:
            self.http.poll(0)
        self._resolve_one(now)
        self.ready()

    def run(self, seconds=-1):
        end = None if seconds < 0 else time.monotonic() + seconds
        while not self.node.stopped and (end is None or time.monotonic() < end):
            self.run_once()

    def close(self):
        if self.http is not None:
            self.http.close()
        self.node.close()


def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
