"""Cluster limits at flash time and after it, on a virtual board (issue 12 item 1).

A laptop cluster (tools/ops/cluster.py, the unix board's limits: 128 B keys,
512 B values, 8,192 keys, 256 sessions) has two nodes running; the third
is a virtual board with smaller settings (an esp32s3's sizes and heap on
the unix port). `vboard.py flash` (what `make flash` runs) refuses it in
one line with the numbers and copies nothing. With --force it is flashed
with its capacity; the cluster holds more client sessions than that, so
the node meets state it cannot hold: it stays up, reports "over-limit" in
the status protocol, keeps voting, and never resets (no fatal error, no
hard reset, no /CRASHES) during a bounded run.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import cluster
from raftkv import limits
from test_vboard import VBOARD, build_firmware, stop_board


def _small(build, tmp_path):
    small = str(tmp_path / "build-small")
    shutil.copytree(build, small)
    with open(os.path.join(small, "board.json")) as f:
        b = json.load(f)
    b.update(name="small", heap_budget_bytes=153600, max_entry_bytes=768, max_key=64,
             max_value=320, max_sessions=32)
    with open(os.path.join(small, "board.json"), "w") as f:
        json.dump(b, f)
    return small


def _flash(build, link, d, *extra):
    return subprocess.run([sys.executable, VBOARD, "flash", "--build", build, "--port", link,
                           "--node", "3", "--cluster", os.path.join(d, "cluster.json")]
                          + list(extra), capture_output=True, text=True, timeout=180)


def test_a_smaller_board_is_refused_and_forced_on_it_stays_up_and_reports(tmp_path):
    small = _small(build_firmware(tmp_path, "unix"), tmp_path)
    d = str(tmp_path / "cl")
    cluster.create(d, nodes=3)
    flash, link = str(tmp_path / "flash"), str(tmp_path / "pty")
    os.makedirs(flash)
    console = str(tmp_path / "console.log")
    # 256K heap: the firmware's code and the node on 64 bits (the model's
    # budget, a quarter of 150 KB, is what the capacity was fitted to).
    board = subprocess.Popen([sys.executable, VBOARD, "--flash", flash, "--link", link,
                              "--heap", "256K", "--seconds", "200", "--console", console],
                             stdout=subprocess.PIPE, text=True)
    assert board.stdout.readline().startswith("vboard: /dev/")
    try:
        r = _flash(small, link, d)
        assert r.returncode == 2, r.stdout + r.stderr
        line = r.stdout.strip()
        assert line.startswith("flash: refused: cluster limits need entries of 1167 B"), line
        assert "board small takes 768 B" in line and "--force" in line, line
        assert len(line.splitlines()) == 1 and not os.listdir(flash), (line, os.listdir(flash))

        for nid in (1, 2):
            cluster.start(d, nid)
        assert cluster.wait_leader(d, timeout_s=30)
        with open(os.path.join(small, "board.json")) as f:
            cap = limits.fit(json.load(f), cluster.load(d)["limits"])
        assert cap["max_sessions"] < 20
        # More client sessions than the forced board holds.
        clients = []
        c = cluster.client(d)
        try:
            for _ in range(20):
                k = cluster.client(d)
                k.register()
                clients.append(k)
            clients[0].put(b"k", b"v")
        finally:
            for k in clients:
                k.close()

        r = _flash(small, link, d, "--force")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "flash: --force: refused: cluster limits" in r.stdout, r.stdout
        assert "the node holds %d keys/%d sessions" % (cap["max_keys"], cap["max_sessions"]) \
            in r.stdout, r.stdout
        with open(os.path.join(flash, "node.json")) as f:
            nf = json.load(f)
        assert nf["capacity"] == cap and nf["limits"]["max_sessions"] == 256

        st = None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            st = c.status(3, 300)
            if st and st["state"] != "ok":
                break
            time.sleep(0.3)
        assert st and st["state"] == ("over-limit: log needs %d sessions, this node holds %d"
                                      % (cap["max_sessions"] + 1, cap["max_sessions"])), st
        applied = st["applied"]
        # The two healthy voters still commit; the halted node drops the
        # appends (counted) so its flash log cannot fill.
        w = cluster.client(d)
        try:
            w.register()
            w.put(b"after", b"forced")
        finally:
            w.close()
        # Bounded run: still up, still a follower of the same cluster, not reset.
        time.sleep(8)
        st2 = c.status(3, 500)
        assert st2 and st2["state"] == st["state"] and st2["role"] == "follower", st2
        assert st2["uptime_ms"] > st["uptime_ms"] and st2["applied"] >= applied, (st, st2)
        assert st2["n_halted"] > 0, st2
        c.close()
    finally:
        for nid in (1, 2):
            cluster.kill(d, nid)
        alive = board.poll() is None
        stop_board(board)
    assert alive
    with open(console, errors="replace") as f:
        out = f.read()
    # Booted once after the flash's reset, served, never a fatal error.
    assert out.count("mpraft: node 3 serving") == 1, out
    # (mpremote's copy probes files before it; the node's own output after.)
    after = out.split("mpraft: node 3 serving", 1)[1]
    assert "fatal" not in after and "Traceback" not in after, after
    assert not os.path.exists(os.path.join(flash, "CRASHES"))
