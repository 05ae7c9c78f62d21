"""Replacing a dead board on a live cluster of MicroPython nodes, in one joint
change (thesis 4.3), while clients write (issue 14's acceptance test).

Five voters (1..5) serve four clients. Node 3 is killed for good; node 6
(a new id, its own address) starts; `raftctl member replace 3 6 HOST:PORT`
swaps them through a joint configuration, so the cluster never has an even
number of voters; then one more node (the leader) is killed, and writes go
on with four of five voters. The whole history is checked for
linearizability. Loopback only, every wait bounded, every process stopped.
"""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

import chaos
import cluster
import lincheck

pytestmark = pytest.mark.skipif(not os.path.exists(cluster.micropython()) and
                                cluster.micropython() != "micropython",
                                reason="no micropython")


def _ctl(d, *args):
    p = subprocess.run([sys.executable, os.path.join(cluster.TOOLS, "raftctl.py"), "--cluster",
                        os.path.join(d, "cluster.json"), "--timeout", "8000"] + list(args),
                       capture_output=True, text=True, timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def _leader_status(d):
    lead = cluster.leader(d)
    return dict(cluster.statuses(d)).get(lead) if lead else None


def _wait(pred, timeout_s=15):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def _oks(hist):
    return sum(1 for e in hist.events if e["type"] == "ok" and e["f"] != "get")


def test_replace_a_dead_node_then_lose_one_more(tmp_path):
    d = str(tmp_path / "cl")
    cluster.up(d, 6, "micropython", timeout_s=20, voters=5)
    hist = chaos.History()
    stop = threading.Event()
    threads = [threading.Thread(target=chaos.worker, args=(d, p, hist, stop, chaos.KEYS,
                                                           300 + p, 3000))
               for p in range(4)]
    try:
        # Node 6 is a new board: it starts only once 3 is gone.
        cluster.kill(d, 6)
        assert cluster.wait_leader(d, 10)
        for t in threads:
            t.start()
        time.sleep(1.0)
        cluster.kill(d, 3)          # for good
        time.sleep(0.5)
        cluster.start(d, 6)
        n6 = [n for n in cluster.load(d)["nodes"] if n["id"] == 6][0]
        addr = "%s:%d" % (n6["host"], n6["port"])
        # Invalid replacements are refused in one line, exit 2.
        for bad in (("9", "6", addr), ("3", "1", addr), ("3", "6", "nohost")):
            rc, _, err = _ctl(d, "member", "replace", *bad)
            assert rc == 2 and len(err.splitlines()) == 1, (bad, rc, err)
        rc, out, err = _ctl(d, "member", "replace", "3", "6", addr)
        assert rc == 0, (out, err)
        assert "replaced by 6" in out, out
        assert _wait(lambda: (_leader_status(d) or {}).get("voters") == [1, 2, 4, 5, 6]
                     and not _leader_status(d).get("voters_out"))
        # Node 6 catches up and is listed as a voter; 3 is gone.
        assert _wait(lambda: (dict(cluster.statuses(d)).get(6) or {}).get("applied", 0) > 0)
        rc, out, _ = _ctl(d, "member", "list", "--json")
        rows = json.loads(out)
        assert rc == 0 and [r["id"] for r in rows] == [1, 2, 4, 5, 6], rows
        assert all(r["role"] == "voter" for r in rows), rows
        assert [r["reachable"] for r in rows if r["id"] == 6] == [True], rows
        rc, _, err = _ctl(d, "member", "promote", "6")       # not a learner
        assert rc == 2 and len(err.splitlines()) == 1, err
        time.sleep(0.5)
        before = _oks(hist)
        # One more failure: the leader. Four of the five voters elect and
        # commit (node 6 counts); writes go on.
        lead = cluster.wait_leader(d, 10)
        assert lead in (1, 2, 4, 5, 6)
        cluster.kill(d, lead)
        assert cluster.wait_leader(d, 10, exclude=(lead,))
        assert _wait(lambda: _oks(hist) >= before + 30, 20), (before, _oks(hist))
    finally:
        stop.set()
        for t in threads:
            if t.is_alive() or t.ident:
                t.join(30)
        try:
            if not any(t.is_alive() for t in threads):
                chaos.final_reads(d, hist, chaos.KEYS)
        finally:
            cluster.down(d)
    assert not any(t.is_alive() for t in threads)
    res = lincheck.check_events(hist.events, max_configs=2000000)
    print("history: %d ops, %d ok, %d fail, %d info" % (
        res["ops"], res["ok"], res["fail"], res["info"]))
    assert res["linearizable"] is True, res
    assert chaos.tracebacks(d) == []
