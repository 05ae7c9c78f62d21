"""The fleet exporter: polls every node of a cluster.json over the
authenticated status protocol and serves /metrics for all of them.

    python3 tools/cloud/exporter.py --cluster DIR/cluster.json [--port 9100] [--host 127.0.0.1]
                                    [--interval 1.0] [--timeout-ms 300] [--seconds N]

Boards carry no HTTP server: this host process asks each node for its
status (raftio.client.Client.status, HMAC-authenticated like every
datagram) one node at a time, keeps the last answer, and turns it into the
same families a CPython node serves itself (metrics.from_status), labelled
node="N". A node that did not answer its last query is
mpraft_up{node="N"} 0 and has no other series, so a dashboard shows it
missing rather than frozen at old values. Leader changes and elections are
counted from successive answers (a change between two polls that comes back
is not seen: the CPython runtime counts every one). mpraft_status_seconds is
the query's round trip from the exporter.

Bounded: one query of at most --timeout-ms per loop turn, the HTTP server
polled between queries; --seconds N stops it after N seconds. Exit 2 on a
bad argument or an unreadable cluster file, in one line.
"""
import json
import sys
import time

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py
import paths  # noqa: E402
paths.setup()

import httpd  # noqa: E402
import metrics  # noqa: E402
from raftio.client import Client  # noqa: E402

USAGE = ("usage: exporter.py --cluster FILE [--port 9100] [--host 127.0.0.1] [--interval 1.0]\n"
         "                   [--timeout-ms 300] [--seconds N]")


class Fleet:
    """The last status of every node and what was counted between polls."""

    def __init__(self, cl, timeout_ms=300, client=None):
        self.nodes = [n["id"] for n in cl["nodes"]]
        self.client = client or Client(cl["cluster_id"], cl["key"],
                                       [(n["id"], n["host"], n["port"]) for n in cl["nodes"]])
        self.timeout_ms = timeout_ms
        self.last = {}      # id -> status dict, None if the last query went unanswered
        self.took = {}      # id -> seconds the last answered query took
        self.counting = {}  # id -> metrics.Counting fed from successive answers
        self._role = {}
        self._i = 0

    def poll_one(self):
        nid = self.nodes[self._i % len(self.nodes)]
        self._i += 1
        t0 = time.perf_counter()
        st = self.client.status(nid, self.timeout_ms)
        if st is None:
            self.last[nid] = None
            return nid, None
        self.took[nid] = time.perf_counter() - t0
        c = self.counting.get(nid)
        if c is None:
            c = self.counting[nid] = metrics.Counting()
        c.event({"event": "leader", "term": st.get("term", 0), "lead": st.get("leader", 0)})
        role = st.get("role")
        if role == "candidate" and self._role.get(nid) != "candidate":
            c.event({"event": "election", "term": st.get("term", 0)})
        self._role[nid] = role
        self.last[nid] = st
        return nid, st

    def poll_all(self):
        for _ in self.nodes:
            self.poll_one()

    def families(self):
        fams = []
        for nid in self.nodes:
            labels = {"node": str(nid)}
            st = self.last.get(nid)
            fams.append(metrics.Family("mpraft_up").add(labels, 0 if st is None else 1))
            if st is None:
                continue
            fams += metrics.from_status(st, labels)
            c = self.counting[nid]
            fams.append(metrics.Family("mpraft_leader_changes_seen_total").add(
                labels, c.leader_changes))
            fams.append(metrics.Family("mpraft_elections_total").add(labels, c.elections))
            fams.append(metrics.Family("mpraft_status_seconds").add(labels, self.took[nid]))
        return fams

    def text(self):
        return metrics.exposition(self.families())

    def handle(self, path):
        if path == "/metrics":
            return 200, httpd.CONTENT_TYPE, self.text().encode()
        if path in ("/healthz", "/readyz"):
            return 200, "text/plain", b"ok\n"
        return 404, "text/plain", b"not found: /metrics\n"

    def close(self):
        self.client.close()


def parse(argv):
    opts = {"cluster": None, "port": "9100", "host": "127.0.0.1", "interval": "1.0",
            "timeout-ms": "300", "seconds": "-1"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("--") or a[2:] not in opts or i + 1 >= len(argv):
            return None
        opts[a[2:]] = argv[i + 1]
        i += 2
    if opts["cluster"] is None:
        return None
    try:
        return (opts["cluster"], opts["host"], int(opts["port"]), float(opts["interval"]),
                int(opts["timeout-ms"]), float(opts["seconds"]))
    except ValueError:
        return None


def main(argv):
    p = parse(argv)
    if p is None:
        print(USAGE)
        return 2
    path, host, port, interval, timeout_ms, seconds = p
    try:
        with open(path) as f:
            cl = json.load(f)
        fleet = Fleet(cl, timeout_ms)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("exporter: cannot use %s: %s" % (path, e))
        return 2
    try:
        srv = httpd.HttpServer(host, port, fleet.handle)
    except OSError as e:
        print("exporter: cannot listen on %s:%d: %s" % (host, port, e))
        return 2
    print("exporter: %d nodes, http://%s:%d/metrics" % (len(fleet.nodes), host, srv.port))
    sys.stdout.flush()
    end = None if seconds < 0 else time.monotonic() + seconds
    # One query per turn, spaced so a full round takes about `interval`.
    gap = interval / max(1, len(fleet.nodes))
    nxt = time.monotonic()
    try:
        while end is None or time.monotonic() < end:
            now = time.monotonic()
            if now >= nxt:
                fleet.poll_one()
                nxt = now + gap
            srv.poll(max(0.0, min(0.05, nxt - time.monotonic())))
    except KeyboardInterrupt:
        pass
    srv.close()
    fleet.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
