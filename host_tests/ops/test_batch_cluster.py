"""Client batches on the real cluster: raftctl bulk-load, Client.put_many, a bad batch.

5 MicroPython node processes on 127.0.0.1; one cluster for the module's
checks; every wait is bounded.
"""
import os
import subprocess
import sys

import pytest

import cluster
from raftio import wire
from raftio.udp import UdpEndpoint, resolve

pytestmark = pytest.mark.skipif(not os.path.exists(cluster.micropython()) and
                                cluster.micropython() != "micropython",
                                reason="no micropython")


def _raftctl(d, *args):
    p = subprocess.run([sys.executable, os.path.join(cluster.TOOLS, "raftctl.py"), "--cluster",
                        os.path.join(d, "cluster.json")] + list(args),
                       capture_output=True, text=True, timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def _leader_status(d, c):
    return c.status(cluster.wait_leader(d, 10))


def test_batches_on_a_live_cluster(tmp_path):
    d = str(tmp_path / "cl")
    cluster.up(d, 5, "micropython", timeout_s=20)
    c = cluster.client(d, timeout_ms=10000)
    try:
        # raftctl bulk-load: every line lands, in far fewer entries than lines.
        src = tmp_path / "pairs.txt"
        src.write_text("# a comment\n\n" + "".join("bk%d value-%d\n" % (i, i) for i in range(300)))
        st0 = _leader_status(d, c)
        p = _raftctl(d, "bulk-load", str(src))
        assert p.returncode == 0, p.stderr
        assert "loaded 300 keys" in p.stdout
        st1 = _leader_status(d, c)
        assert st1["n_applied"] - st0["n_applied"] < 300 // 8
        assert c.get("bk0") == b"value-0" and c.get("bk299") == b"value-299"

        # put_many: sessions registered once, then batches of 16.
        pairs = [("pm%d" % i, "v%d" % i) for i in range(500)]
        assert c.put_many(pairs, sessions=16) == 500
        st2 = _leader_status(d, c)
        assert st2["n_applied"] - st1["n_applied"] < 500 // 8 + 16
        assert st2["dgrams_in"] - st1["dgrams_in"] < 500
        for k in (0, 17, 499):
            assert c.get("pm%d" % k) == ("v%d" % k).encode()

        # A bad line is one error line and exit 2.
        bad = tmp_path / "bad.txt"
        bad.write_text("onlykey\n")
        p = _raftctl(d, "bulk-load", str(bad))
        assert p.returncode == 2 and "line 1" in p.stderr

        # A malformed batch (count says 2, one command inside) and a batch
        # holding a REGISTER: BAD_REQUEST, and the node keeps serving.
        cl = cluster.load(d)
        ep = UdpEndpoint(cl["cluster_id"], bytes.fromhex(cl["key"]), bind_host="0.0.0.0")
        try:
            lead = cluster.wait_leader(d, 10)
            addr = [resolve(n["host"], n["port"]) for n in cl["nodes"] if n["id"] == lead][0]
            buf = bytearray(200)
            for cmd in (b"\x00B\x01\x02\x01\x00\x01", b"\x00B\x01\x01\x01\x00\x01"):
                n = wire.encode_request_into(buf, 0, 77, cmd)
                ep.send_payload_to(addr, buf, n)
                got = None
                for _ in range(100):
                    if ep.poll(50):
                        r = ep.recv()
                        if r is not None:
                            got = wire.decode_reply(r[0], r[1], r[2])
                            break
                assert got is not None and got[2] == wire.BAD_REQUEST, got
        finally:
            ep.close()
        assert c.get("pm1") == b"v1"
    finally:
        c.close()
        cluster.down(d)
    for name in sorted(os.listdir(d)):
        if name.endswith(".log"):
            with open(os.path.join(d, name)) as f:
                assert "Traceback" not in f.read(), name
