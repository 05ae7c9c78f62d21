"""The fleet exporter (tools/cloud/exporter.py) against three MicroPython
nodes (what a board runs, no HTTP server of their own): every node's
metrics in one valid exposition, an unreachable node marked, leader
changes counted from successive polls, bad arguments in one line."""
import os
import subprocess
import sys

import pytest

import cluster
import exporter
from test_node_http import free_tcp_ports, get, samples, wait

EXPORTER = os.path.join(cluster.ROOT, "tools", "cloud", "exporter.py")


@pytest.fixture
def fleet(tmp_path):
    d = str(tmp_path / "c")
    cluster.up(d, 3, "micropython", timeout_s=20)
    port = free_tcp_ports(1)[0]
    p = subprocess.Popen([sys.executable, EXPORTER, "--cluster", os.path.join(d, "cluster.json"),
                          "--port", str(port), "--interval", "0.3", "--timeout-ms", "200",
                          "--seconds", "120"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait(lambda: get(port, "/metrics")[0] == 200, 10)
        yield d, port
    finally:
        p.kill()
        p.wait(10)
        p.stdout.close()
        cluster.down(d)


def scrape(port):
    st, text = get(port, "/metrics")
    assert st == 200
    return samples(text)


def by_node(got, name):
    return {dict(k[1])["node"]: v for k, v in got.items() if k[0] == name}


def test_the_exporter_serves_every_node_and_marks_the_unreachable(fleet):
    d, port = fleet
    assert wait(lambda: by_node(scrape(port), "mpraft_up") == {"1": 1, "2": 1, "3": 1}, 10)
    got = scrape(port)
    assert sum(by_node(got, "mpraft_has_leader").values()) == 3
    assert sum(by_node(got, "mpraft_is_leader").values()) == 1
    # MicroPython nodes report their heap; the exporter passes it on.
    assert all(v > 0 for v in by_node(got, "mpraft_heap_used_bytes").values())
    assert len(by_node(got, "mpraft_heap_used_bytes")) == 3
    lead = cluster.leader(d)
    victim = [n for n in (1, 2, 3) if n != lead][0]
    cluster.kill(d, victim)
    assert wait(lambda: by_node(scrape(port), "mpraft_up").get(str(victim)) == 0, 10)
    got = scrape(port)
    stale = [k for k in got if dict(k[1]).get("node") == str(victim) and k[0] != "mpraft_up"]
    assert stale == []
    assert sum(by_node(got, "mpraft_has_leader").values()) == 2


def test_leader_changes_are_counted_across_polls(fleet):
    d, port = fleet
    assert wait(lambda: len(by_node(scrape(port), "mpraft_leader_changes_seen_total")) == 3, 10)
    lead = cluster.leader(d)
    before = by_node(scrape(port), "mpraft_leader_changes_seen_total")
    cluster.kill(d, lead)
    new = cluster.wait_leader(d, 15, exclude=(lead,))
    assert new
    others = [str(n) for n in (1, 2, 3) if n != lead]
    assert wait(lambda: all(by_node(scrape(port), "mpraft_leader_changes_seen_total")[n] >
                            before[n] for n in others), 10)


def test_bad_arguments_are_one_line(tmp_path):
    for argv in ([], ["--cluster"], ["--cluster", "x", "--port", "nine"]):
        r = subprocess.run([sys.executable, EXPORTER] + argv, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 2 and r.stdout.startswith("usage:"), r
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    r = subprocess.run([sys.executable, EXPORTER, "--cluster", str(bad)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and r.stdout.count("\n") == 1 and "cannot use" in r.stdout


def test_fleet_marks_a_silent_node_without_other_series():
    class Silent:
        def status(self, nid, timeout_ms):
            return None if nid == 2 else {"role": "follower", "leader": 1, "term": 3,
                                          "drops": {}}

        def close(self):
            pass
    f = exporter.Fleet({"nodes": [{"id": 1}, {"id": 2}]}, client=Silent())
    f.poll_all()
    got = samples(f.text())
    assert got[("mpraft_up", (("node", "1"),))] == 1
    assert got[("mpraft_up", (("node", "2"),))] == 0
    assert [k for k in got if k[1] == (("node", "2"),)] == [("mpraft_up", (("node", "2"),))]
