"""The real cluster in network namespaces (tools/ops/cluster.py --netns, tools/ops/netns.py). Root only.

Run by `make test-netns`, not `make test`. Not being root, or a kernel
without network namespaces or nftables, FAILS these tests with one line
saying so: they never skip.

1. Five MicroPython nodes, one namespace each on a bridge: writes and reads
   through raftctl.py; the leader's link set down -> a new leader, writes go
   on; healed; 10% of node-to-node datagrams dropped by nftables -> writes
   still commit and the drop counters move; `down` leaves no namespace,
   veth, bridge or nft table behind.
2. `down` cleans up what a crash left: namespaces with a process inside,
   no pids.json.
3. Not root: one line naming the problem, exit 3, nothing created.

Every name carries a tag derived from the (unique) test folder, and the
subnet is chosen under a lock, so parallel runs don't collide. Every wait
is bounded.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

import cluster
import netns

PY = sys.executable
CLUSTER = os.path.join(cluster.TOOLS, "cluster.py")
NETNS = os.path.join(cluster.TOOLS, "netns.py")
RAFTCTL = os.path.join(cluster.TOOLS, "raftctl.py")


def _require_netns():
    if os.geteuid() != 0:
        pytest.fail("test_netns needs root (CAP_NET_ADMIN) for network namespaces: "
                    "run `make test-netns` as root")
    try:
        netns.check()
    except netns.NetnsError as e:
        pytest.fail("test_netns: this machine cannot run netns clusters: %s" % e)


def _run(*args, timeout=60):
    p = subprocess.run([PY] + list(args), capture_output=True, text=True, timeout=timeout,
                       cwd=cluster.ROOT)
    assert "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr
    return p.returncode, p.stdout.strip()


def _ctl(d, *args):
    p = subprocess.run([PY, RAFTCTL, "--cluster", os.path.join(d, "cluster.json"),
                        "--timeout", "5000"] + list(args),
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout.strip() + p.stderr.strip()


def _names_left(tag):
    """What `ip netns list`, `ip link` and `nft list tables` still show of this cluster."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            timeout=10)
    return ([line for line in ns.stdout.splitlines() if "mpr-%s-" % tag in line] +
            [line for line in links.stdout.splitlines() if tag in line] +
            [line for line in tables.stdout.splitlines() if tag in line])


def _caught_up(d, nid, timeout_s=15):
    c = cluster.client(d, timeout_ms=2000)
    try:
        deadline = time.monotonic() + timeout_s
        st = None
        while time.monotonic() < deadline:
            st = c.status(nid, 200)
            lead = cluster.leader(d, c, 200)
            ls = c.status(lead, 200) if lead else None
            if st and ls and st["leader"] == lead and st["applied"] >= ls["commit"]:
                return st
            time.sleep(0.1)
        return st
    finally:
        c.close()


def test_netns_cluster_survives_link_cut_and_packet_loss(tmp_path):
    _require_netns()
    t0 = time.monotonic()
    d = str(tmp_path / "nc")
    rc, out = _run(CLUSTER, "up", "--nodes", "5", "--dir", d, "--netns")
    assert rc == 0, out
    cl = cluster.load(d)
    spec = cl["netns"]
    tag = spec["tag"]
    try:
        # Each node listens on its own namespace's address, and the host reaches it.
        assert [n["host"] for n in cl["nodes"]] == \
            [spec["nodes"][str(i)]["addr"] for i in range(1, 6)]
        assert all(n["host"].startswith("10.213.") for n in cl["nodes"])
        pids = json.load(open(os.path.join(d, "pids.json")))
        for nid, ent in pids.items():
            p = subprocess.run(["ip", "netns", "identify", str(ent["pid"])],
                               capture_output=True, text=True, timeout=10)
            assert p.stdout.strip() == spec["nodes"][nid]["ns"], (nid, p.stdout, p.stderr)

        assert _ctl(d, "put", "k1", "v1") == (0, "")
        assert _ctl(d, "get", "k1") == (0, "v1")

        # Cut the leader's veth: the others elect a new leader and keep committing.
        lead = cluster.wait_leader(d, 10)
        assert lead
        rc, out = _run(NETNS, "cut", str(lead), "--dir", d)
        assert rc == 0, out
        new = cluster.wait_leader(d, 15, exclude=(lead,))
        assert new and new != lead, "no new leader after cutting node %d's link" % lead
        assert _ctl(d, "put", "k2", "after-cut") == (0, "")
        assert _ctl(d, "get", "k2") == (0, "after-cut")
        c = cluster.client(d, timeout_ms=2000)
        assert c.status(lead, 300) is None, "node %d still reachable with its link down" % lead
        c.close()

        # Heal (faults with no options): the old leader rejoins and catches up.
        rc, out = _run(CLUSTER, "faults", "--dir", d)
        assert rc == 0 and "healed" in out, out
        st = _caught_up(d, lead)
        assert st and st["role"] == "follower", st

        # 10% of node-to-node datagrams dropped: writes still commit.
        rc, out = _run(CLUSTER, "faults", "--dir", d, "--drop", "0.1")
        assert rc == 0, out
        c = cluster.client(d, timeout_ms=10000)
        try:
            for i in range(40):
                c.put("loss%d" % (i % 8), "v%d" % i)
            time.sleep(0.5)
            for i in range(32, 40):
                assert c.get("loss%d" % (i % 8)) == ("v%d" % i).encode()
        finally:
            c.close()
        dropped = netns.drops(spec)
        assert sum(dropped.values()) > 0, dropped
        assert _ctl(d, "get", "loss7") == (0, "v39")

        # No netem: a clear one-line refusal.
        rc, out = _run(CLUSTER, "faults", "--dir", d, "--dup", "0.1")
        assert rc == 2 and len(out.splitlines()) == 1 and "netem" in out, out
    finally:
        rc, out = _run(CLUSTER, "down", "--dir", d)
    assert rc == 0, out
    assert _names_left(tag) == []
    # Idempotent.
    assert _run(CLUSTER, "down", "--dir", d)[0] == 0
    for name in sorted(os.listdir(d)):
        if name.endswith(".log"):
            text = open(os.path.join(d, name)).read()
            assert "Traceback" not in text, "%s:\n%s" % (name, text[-2000:])
    print("netns cluster test: %.1f s" % (time.monotonic() - t0))


def test_down_cleans_up_after_a_crash(tmp_path):
    _require_netns()
    d = str(tmp_path / "crashed")
    os.makedirs(d)
    spec = netns.allocate(d, 12345, [1, 2, 3])
    tag = spec["tag"]
    try:
        # A "node" still running in its namespace, no pids.json: as after a crash.
        p = subprocess.Popen(netns.exec_prefix(spec, 2) + ["sleep", "60"],
                             start_new_session=True)
        with open(os.path.join(d, "cluster.json"), "w") as f:
            json.dump({"cluster_id": 12345, "key": "00" * 32, "netns": spec,
                       "nodes": [{"id": i, "host": spec["nodes"][str(i)]["addr"],
                                  "port": 7000 + i} for i in (1, 2, 3)]}, f)
        assert _names_left(tag)
        rc, out = _run(CLUSTER, "down", "--dir", d)
        assert rc == 0, out
        assert p.wait(10) != 0
    finally:
        netns.destroy(tag)
    assert _names_left(tag) == []


def test_not_root_is_one_clear_line():
    _require_netns()
    d = tempfile.mkdtemp(prefix="mpr-nonroot-")
    os.chmod(d, 0o777)
    try:
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            PY, CLUSTER, "up", "--dir", os.path.join(d, "c"), "--netns"],
                           capture_output=True, text=True, timeout=30, cwd=cluster.ROOT)
        assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
        assert p.stdout.strip() == "cluster.py: --netns needs root (CAP_NET_ADMIN)", p.stdout
        assert p.stderr == "", p.stderr
        assert not os.path.exists(os.path.join(d, "c", "cluster.json"))
    finally:
        shutil.rmtree(d)
