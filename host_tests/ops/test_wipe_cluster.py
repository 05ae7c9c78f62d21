"""A wiped board on a live cluster of five MicroPython nodes (issue 12's
acceptance; docs/incarnation.md).

Clients write all along. A follower is killed, its flash (its data folder,
identity included) deleted, and it is started again: it boots as a new
incarnation. For 3 s its datagrams to the leader are cut (the fault proxy),
so it hears the leader but the leader cannot hear it: it says "rejoining"
in its status, with the incarnation the membership knows, and votes for
nobody. Healed, the leader hears the new incarnation, counts none of its
acks, proposes REJOIN by itself and promotes it once caught up: it is a
voter again, bound to its new incarnation, within 30 s. The history is checked for
linearizability. Loopback only, every wait bounded, every process stopped.
"""
import json
import os
import shutil
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


def _oks(hist):
    return sum(1 for e in hist.events if e["type"] == "ok" and e["f"] != "get")


def test_a_wiped_follower_rejoins_as_a_new_incarnation(tmp_path):
    d = str(tmp_path / "cl")
    cluster.up(d, 5, "micropython", timeout_s=20, proxy=True)
    cl = cluster.load(d)
    # Every founder is bound, and its data folder was provisioned once.
    assert sorted(cl["provisioned"]) == [1, 2, 3, 4, 5] and len(cl["incs"]) == 5, cl
    for i in range(1, 6):
        with open(os.path.join(d, "node%d.json" % i)) as f:
            assert "inc" not in json.load(f)   # first-boot provisioning is spent
    hist = chaos.History()
    stop = threading.Event()
    threads = [threading.Thread(target=chaos.worker, args=(d, p, hist, stop, chaos.KEYS,
                                                           500 + p, 3000))
               for p in range(3)]
    c = cluster.client(d, timeout_ms=2000)
    seen = []
    try:
        lead = cluster.wait_leader(d, 10)
        assert lead
        for t in threads:
            t.start()
        time.sleep(1.0)
        victim = [i for i in range(1, 6) if i != lead][0]
        old = cl["incs"][str(victim)]
        cluster.kill(d, victim)
        shutil.rmtree(os.path.join(d, "n%d" % victim))
        cluster.faults(d, cut=[[victim, lead]])
        cluster.start(d, victim)
        # A re-started node is not provisioned again: its flash is blank.
        assert cluster.load(d)["provisioned"].count(victim) == 1
        t1 = time.monotonic()
        while time.monotonic() - t1 < 3:
            st = c.status(victim, 300)
            if st is not None:
                seen.append((st.get("role"), st.get("rejoining"), st.get("vote"), st["inc"]))
                assert st["role"] == "rejoining" and st["vote"] == 0, st
                assert st["rejoining"] == "incarnation %d, the membership knows %d" % (
                    st["inc"], old), st
            time.sleep(0.1)
        assert seen, "the wiped node never answered"
        lst = c.status(lead, 300)
        assert lst["incs"][str(victim)] == old and victim in lst["voters"], lst
        t0 = time.monotonic()
        cluster.faults(d)
        back = None
        while time.monotonic() - t0 < 30:
            st = c.status(victim, 300)
            ld = cluster.leader(d, c)
            lst = c.status(ld, 300) if ld else None
            if st is not None:
                seen.append((st.get("role"), st.get("rejoining"), st.get("vote"), st["inc"]))
                assert st["inc"] != old, st
                if "membership knows" in (st.get("rejoining") or ""):
                    # Not bound: it has voted for nobody, and the leader
                    # counts none of its acks.
                    assert st["vote"] == 0, st
                    if lst is not None and lst.get("incs", {}).get(str(victim)) == old:
                        assert lst["match"].get(str(victim), 0) == 0, lst
            if (st is not None and lst is not None and victim in lst["voters"]
                    and lst["incs"].get(str(victim)) == st["inc"] and not lst["rejoin"]
                    and st["applied"] > 0 and st.get("role") in ("follower", "leader")):
                back = time.monotonic() - t0
                break
            time.sleep(0.1)
        assert back is not None, seen[-5:]
        print("node %d: wiped, back as a caught-up voter in %.1f s (incarnation %d -> %d)"
              % (victim, back, old, seen[-1][3]))
        assert any(s[0] == "rejoining" for s in seen), seen[:5]
        rc, out, err = _ctl(d, "member", "list", "--json")
        rows = dict((r["id"], r) for r in json.loads(out))
        assert rc == 0 and rows[victim]["role"] == "voter", rows
        assert rows[victim]["inc"] == seen[-1][3], rows
        # Writes go on with the rejoined voter counted.
        before = _oks(hist)
        deadline = time.monotonic() + 10
        while _oks(hist) < before + 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _oks(hist) >= before + 20, (before, _oks(hist))
    finally:
        stop.set()
        for t in threads:
            if t.is_alive() or t.ident:
                t.join(30)
        try:
            if not any(t.is_alive() for t in threads):
                chaos.final_reads(d, hist, chaos.KEYS)
        finally:
            c.close()
            cluster.down(d)
    assert not any(t.is_alive() for t in threads)
    res = lincheck.check_events(hist.events, max_configs=2000000)
    print("history: %d ops, %d ok, %d fail, %d info" % (
        res["ops"], res["ok"], res["fail"], res["info"]))
    assert res["linearizable"] is True, res
    assert chaos.tracebacks(d) == []
