"""A real Prometheus scrapes a real cluster (`make test-prometheus`).

    python3 tools/cloud/prom_check.py [--dir DIR] [--prometheus /usr/bin/prometheus]

Boots five CPython nodes on loopback, each serving /metrics
(tools/ops/node_main.py --metrics-port), and the fleet exporter
(tools/cloud/exporter.py) over the same nodes; starts Prometheus (the
Debian package) with a 1 s scrape interval on both jobs; waits for two
scrapes of every target; then asks its HTTP API:
  1. sum(mpraft_has_leader{job="nodes"}) == 5, and the same through the exporter;
     every panel of deploy/grafana/mpraft-overview.json returns data;
  2. after the leader is SIGKILLed, mpraft_leader_changes_seen_total of every
     surviving node rises, and the exporter marks the dead node mpraft_up 0.
Stops everything it started, pass or fail; exit 0 only if every check
passed. Loopback only; every wait is bounded.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py
import paths  # noqa: E402
paths.setup()

import cluster  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


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


class Prom:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def query(self, q):
        url = self.base + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                d = json.loads(r.read())
        except (OSError, ValueError):
            return None
        if d.get("status") != "success":
            return None
        return d["data"]["result"]

    def scalar(self, q):
        """The single value of a query, or None (no answer, or not exactly one series)."""
        r = self.query(q)
        if not r or len(r) != 1:
            return None
        return float(r[0]["value"][1])


def wait(pred, seconds, what):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.25)
    raise SystemExit("prom_check: FAILED waiting for %s (%.0f s)" % (what, seconds))


def main(argv):
    prom_bin = "/usr/bin/prometheus"
    d = None
    i = 0
    while i < len(argv):
        if argv[i] == "--dir" and i + 1 < len(argv):
            d = argv[i + 1]
        elif argv[i] == "--prometheus" and i + 1 < len(argv):
            prom_bin = argv[i + 1]
        else:
            print("usage: prom_check.py [--dir DIR] [--prometheus PATH]")
            return 2
        i += 2
    if not os.path.exists(prom_bin):
        print("prom_check: %s not found (apt-get install -y prometheus; make test-prometheus "
              "does it)" % prom_bin)
        return 2
    own = d is None
    d = d or tempfile.mkdtemp(prefix="mpraft-prom-")
    procs = []
    t_start = time.monotonic()
    try:
        return _run(d, prom_bin, procs)
    finally:
        for p in procs:
            p.kill()
            p.wait(10)
        cluster.down(d)
        if own:
            shutil.rmtree(d, ignore_errors=True)
        print("prom_check: %.1f s" % (time.monotonic() - t_start))


def _run(d, prom_bin, procs):
    cl = cluster.create(d, 5)
    mports = free_tcp_ports(7)
    nodes = {n["id"]: mports[k] for k, n in enumerate(cl["nodes"])}
    exp_port, prom_port = mports[5], mports[6]
    for nid, p in sorted(nodes.items()):
        cluster.start(d, nid, "cpython", extra=["--metrics-port", str(p)])
    lead = cluster.wait_leader(d, 20)
    if not lead:
        raise SystemExit("prom_check: FAILED: no leader")
    log = open(os.path.join(d, "exporter.log"), "w")
    procs.append(subprocess.Popen(
        [sys.executable, os.path.join(HERE, "exporter.py"), "--cluster",
         os.path.join(d, "cluster.json"), "--port", str(exp_port), "--interval", "0.5",
         "--timeout-ms", "200", "--seconds", "300"], stdout=log, stderr=subprocess.STDOUT))
    cfg = {"global": {"scrape_interval": "1s", "scrape_timeout": "900ms",
                      "evaluation_interval": "1s"},
           "scrape_configs": [
               {"job_name": "nodes", "static_configs": [
                   {"targets": ["127.0.0.1:%d" % p for _, p in sorted(nodes.items())]}]},
               {"job_name": "exporter", "static_configs": [
                   {"targets": ["127.0.0.1:%d" % exp_port]}]}]}
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        json.dump(cfg, f)  # JSON is YAML
    plog = open(os.path.join(d, "prometheus.log"), "w")
    procs.append(subprocess.Popen(
        [prom_bin, "--config.file", os.path.join(d, "prometheus.yml"),
         "--storage.tsdb.path", os.path.join(d, "tsdb"),
         "--web.listen-address", "127.0.0.1:%d" % prom_port], stdout=plog,
        stderr=subprocess.STDOUT))
    prom = Prom(prom_port)
    print("prom_check: 5 nodes, exporter :%d, prometheus :%d, leader %d" % (
        exp_port, prom_port, lead))
    # Two scrapes of every target: 6 targets up, each with >= 2 samples.
    wait(lambda: prom.scalar('count(up == 1)') == 6, 30, "6 targets up")
    wait(lambda: prom.scalar('min(count_over_time(up[1m]))') is not None and
         prom.scalar('min(count_over_time(up[1m]))') >= 2, 30, "two scrapes")
    wait(lambda: prom.scalar('sum(mpraft_has_leader{job="nodes"})') == 5, 10,
             'sum(mpraft_has_leader{job="nodes"}) == 5')
    print("prom_check: sum(mpraft_has_leader{job=\"nodes\"}) == 5: ok")
    wait(lambda: prom.scalar('sum(mpraft_has_leader{job="exporter"})') == 5, 10,
         'sum(mpraft_has_leader{job="exporter"}) == 5')
    print("prom_check: sum(mpraft_has_leader{job=\"exporter\"}) == 5: ok")
    # Every panel of the Grafana dashboard gets data from this Prometheus.
    with open(os.path.join(paths.ROOT, "deploy", "grafana", "mpraft-overview.json")) as f:
        panels = json.load(f)["panels"]
    time.sleep(3)  # rate() over [1m] wants a few samples
    empty = [p["title"] for p in panels
             if not any(prom.query(t["expr"]) for t in p["targets"])]
    if empty:
        raise SystemExit("prom_check: FAILED: dashboard panels without data: %s" % empty)
    print("prom_check: all %d dashboard panels have data" % len(panels))
    survivors = [n for n in nodes if n != lead]
    q = 'mpraft_leader_changes_seen_total{job="nodes",node="%d"}'
    before = {n: prom.scalar(q % n) for n in survivors}
    if any(b is None for b in before.values()):
        raise SystemExit("prom_check: FAILED: no leader_changes series for %s" % before)
    cluster.kill(d, lead)
    new = cluster.wait_leader(d, 20, exclude=(lead,))
    if not new:
        raise SystemExit("prom_check: FAILED: no new leader after killing %d" % lead)
    t0 = time.monotonic()
    wait(lambda: all((prom.scalar(q % n) or 0) > before[n] for n in survivors), 20,
         "leader_changes_seen_total to rise on every survivor")
    print("prom_check: killed leader %d, new leader %d; mpraft_leader_changes_seen_total rose "
          "on nodes %s (%s -> %s) within %.1f s" % (
              lead, new, survivors, [before[n] for n in survivors],
              [prom.scalar(q % n) for n in survivors], time.monotonic() - t0))
    wait(lambda: prom.scalar('mpraft_up{job="exporter",node="%d"}' % lead) == 0, 20,
         "the exporter to mark node %d down" % lead)
    print("prom_check: exporter marks node %d mpraft_up 0: ok" % lead)
    wait(lambda: prom.scalar('up{job="nodes",instance="127.0.0.1:%d"}' % nodes[lead]) == 0, 20,
         "Prometheus to see node %d's target down" % lead)
    print("prom_check: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
