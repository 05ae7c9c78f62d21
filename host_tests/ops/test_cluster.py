"""The real cluster: 5 MicroPython unix-port node processes on 127.0.0.1 (tools/ops/cluster.py).

1. Concurrent clients while leaders are SIGKILLed and restarted and a
   minority is cut off, with loss, duplication and reordering between nodes
   (tools/ops/udp_proxy.py): the history is linearizable (tools/history/lincheck.py) and
   no acknowledged write is lost (final reads are part of the checked history).
2. 10,000 junk datagrams (random, truncated, bit-flipped, wrong key,
   oversized, replayed) at a live node: it keeps serving and counts the drops.
3. A node started with the wrong key never joins and changes nothing.
4. A follower stopped while the log was compacted catches up from a snapshot.

Loopback only; every wait is bounded; each test boots its own cluster.
"""
import os
import shutil
import random
import re
import signal
import socket
import threading
import time

import pytest

import chaos
import cluster
import lincheck
from raftio.client import Client
from raftio.frame import HEADER, MAX_DATAGRAM, Framer
from raftio import wire
from raftkv import codec
from raft import msg as M

pytestmark = pytest.mark.skipif(not os.path.exists(cluster.micropython()) and
                                cluster.micropython() != "micropython",
                                reason="no micropython")


@pytest.fixture
def five(tmp_path):
    d = str(tmp_path / "cl")
    cluster.up(d, 5, "micropython", timeout_s=20)
    try:
        yield d
    finally:
        cluster.down(d)
    _no_tracebacks(d)


def _no_tracebacks(d):
    for name in sorted(os.listdir(d)):
        if name.endswith(".log"):
            with open(os.path.join(d, name)) as f:
                text = f.read()
            assert "Traceback" not in text, "%s:\n%s" % (name, text[-2000:])


def _drops(st):
    return sum(st["drops"][k] for k in ("malformed", "bad_mac", "wrong_cluster", "unknown_peer"))


# -- 1. linearizability under leader crashes -----------------------------------

def test_concurrent_clients_survive_leader_kills_and_partitions(tmp_path):
    d = str(tmp_path / "cl")
    cluster.up(d, 5, "micropython", timeout_s=20, proxy=True)
    try:
        _run_history(d)
    finally:
        cluster.down(d)
    _no_tracebacks(d)


def _run_history(d):
    hist = chaos.History()
    stop = threading.Event()
    keys = chaos.KEYS
    threads = [threading.Thread(target=chaos.worker, args=(d, p, hist, stop, keys, 100 + p,
                                                           2000))
               for p in range(6)]
    for t in threads:
        t.start()
    killed = []
    ids = [n["id"] for n in cluster.load(d)["nodes"]]
    try:
        # Loss, duplication and reordering between nodes all along.
        cluster.faults(d, drop=0.05, dup=0.05, reorder=0.05)
        for rnd in range(2):
            time.sleep(1.2)
            lead = cluster.wait_leader(d, 10)
            assert lead, "no leader"
            cluster.kill(d, lead)
            killed.append(lead)
            time.sleep(0.8)
            cluster.start(d, lead)
            time.sleep(0.8)
            # Cut a minority off: in round 0 the leader and one follower
            # (the majority elects a new leader), in round 1 two followers.
            lead = cluster.wait_leader(d, 10)
            assert lead, "no leader"
            others = [i for i in ids if i != lead]
            minority = [lead, others[0]] if rnd == 0 else others[:2]
            majority = [i for i in ids if i not in minority]
            cluster.faults(d, drop=0.05, dup=0.05, reorder=0.05,
                           partition=[minority, majority])
            time.sleep(1.2)
            cluster.faults(d, drop=0.05, dup=0.05, reorder=0.05)
        time.sleep(1.0)
        cluster.faults(d)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    # Final reads: every acknowledged write must still be visible (or overwritten
    # by a later one) -- lincheck decides.
    chaos.final_reads(d, hist, keys)
    ev = hist.events
    oks = sum(1 for e in ev if e["type"] == "ok" and e["f"] != "get")
    assert oks > 50, "too few acknowledged writes (%d) to mean anything" % oks
    res = lincheck.check_events(ev, max_configs=2000000)
    print("history: %d ops, %d ok, %d fail, %d info; killed %s" % (
        res["ops"], res["ok"], res["fail"], res["info"], killed))
    assert res["linearizable"] is True, res
    # The restarted nodes caught up with the rest.
    ok, sts = chaos.converged(d, timeout_s=15)
    assert ok, sts


def test_random_chaos_with_membership_changes_stays_linearizable(tmp_path, capsys):
    # tools/ops/chaos.py's random schedule (kills, partitions, noise, transfers,
    # remove + re-add of followers) for 15 s; `make chaos` runs it longer.
    code, res = chaos.run({"seconds": 15.0, "seed": 11, "clients": 4,
                           "dir": str(tmp_path / "chaos"), "json": None, "membership": True,
                           "progress": 3.0})
    # A long run shows progress on stderr: elapsed, ops, faults, failures.
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("chaos: ")]
    ticks = [ln for ln in lines if re.match(r"chaos: \d+ s of 15, \d+ ops \(\d+ ok, \d+ fail, "
                                            r"\d+ info\), \d+ faults, 0 failures$", ln)]
    assert 2 <= len(ticks) <= 6, lines
    assert int(ticks[-1].split(", ")[1].split()[0]) > 0, ticks
    assert lines[-1].startswith("chaos: healed; checking "), lines
    print(res.get("faults"), res.get("ops"), res.get("ok"))
    assert code == 0, res["failures"]
    assert res["linearizable"] is True and res["ok"] > 100, res
    assert sum(res["faults"].values()) >= 5, res["faults"]


# -- 2. junk datagrams -----------------------------------------------------------

def _frame(cluster_id, key, payload):
    buf = bytearray(MAX_DATAGRAM)
    buf[HEADER:HEADER + len(payload)] = payload
    return bytes(buf[:Framer(cluster_id, key).seal(buf, len(payload))])


def test_junk_datagrams_are_dropped_and_counted(five):
    d = five
    cl = cluster.load(d)
    key = bytes.fromhex(cl["key"])
    cid = cl["cluster_id"]
    c = cluster.client(d, timeout_ms=5000)
    c.put("before", "1")
    lead = cluster.leader(d, c)
    target = next(n for n in cl["nodes"] if n["id"] == lead)
    addr = ("127.0.0.1", target["port"])
    before = c.status(lead)
    rnd = random.Random(5)
    # A valid raft message and a valid client request, to mutate and replay.
    m = M.Message(M.APP, lead, 1, 99, 0, 0, 0)
    raft_ok = _frame(cid, key, M.encode(m))
    # A replay of an old put: after the newer put below, applying it again
    # would roll "before" back to "1".
    cmd = codec.encode_put(c.cid, c.seq, b"before", b"1")
    c.put("before", "2")
    req = bytearray(64)
    req_ok = _frame(cid, key, bytes(req[:wire.encode_request_into(req, 0, 1, cmd)]))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    sent_bad = 0
    replays = 0
    try:
        for i in range(10000):
            kind = i % 8
            if kind == 0:
                dg = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 200)))
            elif kind == 1:
                dg = raft_ok[:rnd.randrange(0, len(raft_ok))]
            elif kind == 2:
                b = bytearray(raft_ok)
                b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
                dg = bytes(b)
            elif kind == 3:
                dg = _frame(cid, b"wrong key of 32 bytes...........", M.encode(m))
            elif kind == 4:
                dg = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1401, 1600)))
            elif kind == 5:
                dg = raft_ok  # authentic, but not from a peer address
            elif kind == 6:
                dg = _frame(cid, key, bytes([64 + rnd.randrange(4)]) +
                            bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 40))))
            else:
                dg = req_ok  # replayed old client request: refused as a stale seq
                replays += 1
            if kind != 7:
                sent_bad += 1
            s.sendto(dg, addr)
            if i % 20 == 19:
                # Paced so the kernel's socket buffer does not overflow: a
                # datagram the kernel drops is never seen, so never counted.
                time.sleep(0.005)
    finally:
        s.close()
    time.sleep(0.3)
    after = c.status(lead)
    assert after is not None, "node stopped answering"
    counted = _drops(after) - _drops(before)
    # Random payloads from kind 6 may decode as a request; everything else is dropped.
    assert counted >= 0.8 * sent_bad, (counted, sent_bad, after["drops"])
    assert after["drops"]["bad_mac"] > before["drops"]["bad_mac"]
    assert after["drops"]["unknown_peer"] > before["drops"]["unknown_peer"]
    assert after["drops"]["malformed"] > before["drops"]["malformed"]
    assert after["role"] == "leader" and after["term"] == before["term"]
    # Still serving, and the replayed put was not applied again.
    c.put("after", "2")
    assert c.get("before") == b"2" and c.get("after") == b"2"
    c.close()


# -- 3. a node with the wrong key ---------------------------------------------------

def test_node_with_wrong_key_never_joins(five):
    d = five
    cl = cluster.load(d)
    c = cluster.client(d, timeout_ms=5000)
    c.put("x", "1")
    lead = cluster.leader(d, c)
    victim = next(n["id"] for n in cl["nodes"] if n["id"] != lead)
    others = [n["id"] for n in cl["nodes"] if n["id"] != victim]
    cluster.kill(d, victim)
    before = dict((nid, c.status(nid)) for nid in others)
    bad_key = "ab" * 32
    conf = cluster.write_node_file(d, cl, victim, key=bad_key, name="rogue.json")
    # The rogue keeps the victim's identity (docs/incarnation.md): a blank
    # flash would be a new incarnation, which never campaigns at all.
    os.makedirs(os.path.join(d, "rogue"))
    shutil.copy(os.path.join(d, "n%d" % victim, "raft.id"), os.path.join(d, "rogue"))
    cluster.start(d, victim, config=conf, data=os.path.join(d, "rogue"))
    rogue = Client(cl["cluster_id"], bad_key,
                   [(victim, "127.0.0.1", next(n["port"] for n in cl["nodes"]
                                               if n["id"] == victim))])
    try:
        # Several election timeouts: the rogue campaigns over and over.
        t = time.monotonic()
        k = 0
        while time.monotonic() - t < 2.5:
            c.put("x", str(k))
            k += 1
            time.sleep(0.01)
        st = rogue.status(victim)
        assert st is not None, "rogue node is not running"
        assert st["role"] != "leader" and st["leader"] == 0 and st["commit"] == 0, st
        assert st["drops"]["bad_mac"] > 0
        for nid in others:
            now = c.status(nid)
            assert now["term"] == before[nid]["term"], (nid, before[nid], now)
            assert now["leader"] == lead
            assert now["drops"]["bad_mac"] > before[nid]["drops"]["bad_mac"]
        assert c.get("x") == str(k - 1).encode()
    finally:
        rogue.close()
        cluster.kill(d, victim)
    # The real node comes back with its own data and catches up.
    cluster.start(d, victim)
    deadline = time.monotonic() + 15
    st = None
    while time.monotonic() < deadline:
        st = c.status(victim)
        ls = c.status(lead)
        if st and ls and st["applied"] >= ls["commit"]:
            break
        time.sleep(0.1)
    assert st and st["leader"] == lead and st["applied"] >= ls["commit"], st
    c.close()


# -- 4. a follower that fell behind the compacted log gets a snapshot ---------------

def test_lagging_follower_catches_up_from_a_snapshot(tmp_path):
    import json
    d = str(tmp_path / "cl")
    with open(cluster.BOARD) as f:
        board = json.load(f)
    # Snapshot every 40 entries and keep 32: 150 writes leave a stopped
    # follower behind the compacted log. A flash ring of 48 slots fills
    # before the next regular snapshot, so the forced snapshot runs too.
    board.update({"snapshot_entries": 40, "ring_capacity": 16, "flash_log_slots": 48})
    bpath = str(tmp_path / "board.json")
    with open(bpath, "w") as f:
        json.dump(board, f)
    cluster.up(d, 5, "micropython", timeout_s=20, board=bpath)
    try:
        c = cluster.client(d, timeout_ms=5000)
        c.put("k", "0")
        lead = cluster.leader(d, c)
        victim = next(n["id"] for n in cluster.load(d)["nodes"] if n["id"] != lead)
        cluster.kill(d, victim)
        for i in range(150):
            c.put("key%d" % (i % 30), "v%d" % i)
        ls = c.status(lead)
        assert ls["first"] > 20 and ls["snapshot"] >= 120, ls
        assert ls["n_forced"] > 0, ls
        cluster.start(d, victim)
        deadline = time.monotonic() + 15
        st = None
        while time.monotonic() < deadline:
            st = c.status(victim)
            ls = c.status(lead)
            if st and st["applied"] >= ls["commit"]:
                break
            time.sleep(0.1)
        assert st and st["applied"] >= ls["commit"] and st["keys"] == ls["keys"] == 31, (st, ls)
        # The follower installed a snapshot: its log starts after entries it never received.
        assert st["first"] > 20, st
        assert st["snapshot"] > 0, st
        # The cluster keeps every value after losing the leader, with the
        # restored follower as one of the four voters left.
        cluster.kill(d, lead)
        assert cluster.wait_leader(d, 10)
        for i in range(30):
            assert c.get("key%d" % i) is not None
        assert c.get("key29") == b"v149"
        c.close()
    finally:
        cluster.down(d)
    _no_tracebacks(d)


# -- 5. raftctl against a live cluster ---------------------------------------------------

def _raftctl(d, timeout_ms, *args):
    """Run tools/ops/raftctl.py on d's cluster; never a traceback."""
    import subprocess
    import sys
    p = subprocess.run([sys.executable, os.path.join(cluster.TOOLS, "raftctl.py"), "--cluster",
                        os.path.join(d, "cluster.json"), "--timeout", str(timeout_ms)] +
                       list(args), capture_output=True, text=True, timeout=30)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_raftctl_exit_codes_and_status(five):
    import json
    d = five

    def ctl(*args):
        p = _raftctl(d, 1500, *args)
        assert len(p.stderr.strip().splitlines()) <= 2, p.stderr  # error line (+ usage)
        return p.returncode, p.stdout.strip()

    assert ctl("put", "k", "v1") == (0, "OK")
    assert ctl("get", "k") == (0, "v1")
    assert ctl("get", "nope")[0] == 1
    assert ctl("cas", "k", "v1", "v2")[0] == 0
    assert ctl("cas", "k", "v1", "v3")[0] == 1
    assert ctl("cas", "new", "--absent", "x")[0] == 0
    assert ctl("cas", "new", "--absent", "y")[0] == 1
    assert ctl("delete", "new")[0] == 0
    assert ctl("delete", "new")[0] == 1
    assert ctl("frobnicate")[0] == 2
    assert ctl("put", "only-key")[0] == 2
    rc, out = ctl("status", "--json")
    rows = json.loads(out)
    assert rc == 0 and [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    for r in rows:
        for f in ("id", "reachable", "role", "term", "leader", "commit", "applied"):
            assert f in r
        assert r["reachable"] and r["role"] in ("leader", "follower")
    assert sum(1 for r in rows if r["role"] == "leader") == 1
    rc, out = ctl("status")
    assert rc == 0 and "leader" in out
    cluster.kill(d, 1)
    # A live node busy with the election node 1's death may start can miss one
    # 300 ms status query on a loaded machine: ask again, a bounded few times.
    for _ in range(10):
        rows = json.loads(ctl("status", "--json")[1])
        if [r["reachable"] for r in rows] == [False, True, True, True, True]:
            break
        time.sleep(0.3)
    assert [r["reachable"] for r in rows] == [False, True, True, True, True], rows
    cluster.down(d)
    assert ctl("get", "k")[0] == 3
    assert ctl("status")[0] == 3


def test_raftctl_transfer_hands_leadership_over(five):
    d = five

    def ctl(*args):
        p = _raftctl(d, 3000, *args)
        return p.returncode, p.stdout.strip()

    lead = cluster.wait_leader(d, 10)
    to = 1 if lead != 1 else 2
    assert ctl("put", "before", "x")[0] == 0
    rc, out = ctl("transfer", str(to))
    assert rc == 0 and out.startswith("node %d leads" % to), out
    assert cluster.leader(d) == to
    # The new leader serves at once, with everything the old one committed.
    assert ctl("get", "before") == (0, "x")
    assert ctl("put", "after", "y")[0] == 0
    assert ctl("transfer", "9")[0] == 2       # not in the cluster file
    assert ctl("transfer", "two")[0] == 2
    assert ctl("transfer", str(to)) == (0, "node %d leads (term %d)" % (
        to, [st for nid, st in cluster.statuses(d) if nid == to][0]["term"]))


# -- 6. the client is portable: a MicroPython process as the client -----------------

_MP_CLIENT = r"""
import sys
sys.path.insert(0, LIB)
from raftio.client import Client
c = Client(CID, KEY, NODES, timeout_ms=5000)
c.put("mp", "one")
print(c.get("mp"))
print(c.cas("mp", "one", "two"))
print(c.cas("mp", "one", "three"))
print(c.delete("mp"), c.delete("mp"), c.get("mp"))
print("cid", c.cid > 0, "seq", c.seq)
c.close()
"""


def test_client_runs_under_micropython(five):
    import subprocess
    cl = cluster.load(five)
    nodes = [(n["id"], n["host"], n["port"]) for n in cl["nodes"]]
    script = (_MP_CLIENT.replace("LIB", repr(os.path.join(cluster.ROOT, "lib")))
              .replace("CID", str(cl["cluster_id"])).replace("KEY", repr(cl["key"]))
              .replace("NODES", repr(nodes)))
    p = subprocess.run([cluster.micropython(), "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.split("\n")[:5] == ["b'one'", "(True, None)", "(False, b'two')",
                                        "True False None", "cid True seq 5"], p.stdout
