"""The CPython node runtime (tools/cloud/noderuntime.py) on real processes:
/metrics parses, /healthz and /readyz say what they promise, a stuck HTTP
client does not stall the node, JSON logs record the leader changes the
counters count. Three CPython nodes on loopback; every wait is bounded."""
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import cluster


def free_tcp_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def get(port, path, timeout=2.0):
    """(status, body text); status 0 if nothing answered."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def samples(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(port, name, **labels):
    st, text = get(port, "/metrics")
    assert st == 200, text
    return samples(text).get((name, tuple(sorted(labels.items()))))


def wait(pred, seconds=15.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r = pred()
        if r:
            return r
        time.sleep(0.05)
    return pred()


class Three:
    def __init__(self, d):
        self.d = d
        cluster.create(d, 3)
        self.ports = dict(zip((1, 2, 3), free_tcp_ports(3)))

    def start(self, nid):
        cluster.start(self.d, nid, "cpython",
                      extra=["--metrics-port", str(self.ports[nid]), "--log-json"])
        assert wait(lambda: get(self.ports[nid], "/healthz")[0] == 200, 10), \
            open(os.path.join(self.d, "n%d.log" % nid)).read()

    def log(self, nid):
        with open(os.path.join(self.d, "n%d.log" % nid)) as f:
            return f.read()


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    c = Three(str(tmp_path_factory.mktemp("cloud") / "c"))
    try:
        yield c
    finally:
        cluster.down(c.d)
    for nid in (1, 2, 3):
        if os.path.exists(os.path.join(c.d, "n%d.log" % nid)):
            assert "Traceback" not in c.log(nid), c.log(nid)


def test_a_lone_node_is_live_but_not_ready(three):
    three.start(1)
    p = three.ports[1]
    assert get(p, "/healthz") == (200, "ok\n")
    st, body = get(p, "/readyz")
    assert st == 503 and "no leader" in body
    assert value(p, "mpraft_has_leader", node="1") == 0
    assert get(p, "/nope")[0] == 404
    # A request line that is no HTTP gets 400, and the node keeps serving.
    s = socket.create_connection(("127.0.0.1", p), timeout=2)
    s.sendall(b"\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.0 400")
    s.close()
    assert get(p, "/healthz")[0] == 200


def test_the_cluster_becomes_ready_and_its_metrics_parse(three):
    three.start(2)
    three.start(3)
    ports = three.ports
    assert wait(lambda: all(get(ports[i], "/readyz")[0] == 200 for i in ports)), \
        [get(ports[i], "/readyz") for i in ports]
    c = cluster.client(three.d)
    try:
        for i in range(20):
            c.put("k%d" % i, "v%d" % i)
    finally:
        c.close()
    lead = cluster.leader(three.d)
    assert lead
    has = leaders = 0
    for nid, p in ports.items():
        st, text = get(p, "/metrics")
        assert st == 200
        got = samples(text)  # raises on anything that is not the exposition format
        n = (("node", str(nid)),)
        has += got[("mpraft_has_leader", n)]
        leaders += got[("mpraft_is_leader", n)]
        assert got[("mpraft_applied_index", n)] >= 20
        # Every node wrote the 20 entries to its flash and flushed them.
        assert got[("mpraft_flash_write_seconds_count", n)] >= 1
        assert got[("mpraft_flash_write_seconds_sum", n)] > 0
    assert has == 3 and leaders == 1
    # The leader timed heartbeat round trips to both followers.
    for peer in ports:
        if peer != lead:
            key = (("node", str(lead)), ("peer", str(peer)))
            assert wait(lambda: value(ports[lead], "mpraft_peer_round_trip_seconds_count",
                                      node=str(lead), peer=str(peer)), 5), key


def test_a_stuck_http_client_does_not_stall_the_node(three):
    # Connections that send half a request and wait: the node still commits.
    stuck = []
    for nid, p in three.ports.items():
        s = socket.create_connection(("127.0.0.1", p), timeout=2)
        s.sendall(b"GET /metrics HTTP/1.0\r\n")
        stuck.append(s)
    try:
        c = cluster.client(three.d, timeout_ms=3000)
        try:
            t0 = time.monotonic()
            for i in range(20):
                c.put("s%d" % i, "x")
            assert time.monotonic() - t0 < 3.0
        finally:
            c.close()
        assert all(get(p, "/healthz")[0] == 200 for p in three.ports.values())
    finally:
        for s in stuck:
            s.close()


def test_a_leader_kill_is_counted_and_logged(three):
    lead = cluster.leader(three.d)
    survivors = [n for n in three.ports if n != lead]
    before = {n: value(three.ports[n], "mpraft_leader_changes_seen_total", node=str(n))
              for n in survivors}
    cluster.kill(three.d, lead)
    new = cluster.wait_leader(three.d, 15, exclude=(lead,))
    assert new in survivors
    for n in survivors:
        p = three.ports[n]
        assert wait(lambda: value(p, "mpraft_leader_changes_seen_total", node=str(n)) >
                    before[n], 5), n
    # The JSON log: one object per line, with the new leader's event.
    seen = False
    for line in three.log(survivors[0]).splitlines():
        if not line.startswith("{"):
            continue  # the plain start-up lines go to stderr, the same file here
        rec = json.loads(line)
        for k in ("t", "time", "node", "level", "event"):
            assert k in rec, rec
        assert rec["node"] == survivors[0]
        if rec["event"] in ("leader", "role") and rec.get("lead") == new:
            seen = True
    assert seen
    three.start(lead)
    assert wait(lambda: get(three.ports[lead], "/readyz")[0] == 200)
