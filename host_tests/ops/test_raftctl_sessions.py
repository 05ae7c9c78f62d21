"""raftctl keeps one client session per cluster across calls (issue 12 item 3).

On a cluster whose nodes keep 32 sessions, 1,000 CLI writes (raftctl's
main() in-process) leave a device client's session intact: it keeps writing
exactly-once with the seq it had. Without the kept session (a fresh state
folder per call, what raftctl did before) 40 calls evict it: the control.
Concurrent raftctl processes never share a session's seq.
"""
import json
import os
import subprocess
import sys

import pytest

import cluster
import ctlsession
import raftctl
from raftio.client import Client, SessionExpired

pytestmark = pytest.mark.skipif(not os.path.exists(cluster.micropython()) and
                                cluster.micropython() != "micropython",
                                reason="no micropython")

SESSIONS = 32


@pytest.fixture
def small(tmp_path):
    """Three nodes that keep SESSIONS client sessions."""
    with open(cluster.BOARD) as f:
        b = json.load(f)
    b["max_sessions"] = SESSIONS
    board = str(tmp_path / "board.json")
    with open(board, "w") as f:
        json.dump(b, f)
    d = str(tmp_path / "cl")
    cluster.up(d, 3, "micropython", timeout_s=20, board=board)
    try:
        yield d
    finally:
        cluster.down(d)


def device(d):
    cl = cluster.load(d)
    return Client(cl["cluster_id"], cl["key"],
                  [(n["id"], n["host"], n["port"]) for n in cl["nodes"]], timeout_ms=5000)


def test_1000_cli_writes_leave_a_device_session_intact(small, tmp_path, capsys, monkeypatch):
    d = small
    dev = device(d)
    try:
        dev.put("sensor", "0")
        cid = dev.cid
        state = str(tmp_path / "state")
        env = {"MPRAFT_STATE_DIR": state}
        monkeypatch.setenv("MPRAFT_STATE_DIR", state)
        for i in range(1000):
            assert raftctl.main(["--cluster", d, "put", "cli", str(i)]) == 0
            if i % 250 == 0:
                dev.put("sensor", str(i))  # the device keeps writing meanwhile
        assert capsys.readouterr()[0] == "OK\n" * 1000
        # The device's session survived: same client id, next seq, no expiry.
        dev.put("sensor", "done")
        assert dev.cid == cid and dev.seq == 6
        with open(os.path.join(state, os.listdir(state)[0].split(".")[0] + ".0")) as f:
            kept = json.load(f)
        assert kept["seq"] == 1000
        assert raftctl.main(["--cluster", d, "get", "cli"], env=env) == 0
        assert capsys.readouterr()[0] == "999\n"
        # The control: a session per call (no state kept) evicts the device.
        for i in range(SESSIONS + 8):
            monkeypatch.setenv("MPRAFT_STATE_DIR", str(tmp_path / ("fresh%d" % i)))
            assert raftctl.main(["--cluster", d, "put", "cli", "x"]) == 0
        with pytest.raises(SessionExpired):
            dev.put("sensor", "lost")
    finally:
        dev.close()


def test_an_evicted_cli_session_is_registered_again(small, tmp_path, capsys, monkeypatch):
    d = small
    monkeypatch.setenv("MPRAFT_STATE_DIR", str(tmp_path / "state"))
    assert raftctl.main(["--cluster", d, "put", "a", "1"]) == 0
    store = ctlsession.SessionStore(cluster.load(d)["cluster_id"], cluster.load(d)["key"])
    assert store.acquire(1)
    first = store.load()
    store.release()
    others = [device(d) for _ in range(SESSIONS)]
    try:
        for c in others:
            c.register()  # 32 newer sessions push raftctl's out
    finally:
        for c in others:
            c.close()
    assert raftctl.main(["--cluster", d, "put", "a", "2"]) == 0
    assert raftctl.main(["--cluster", d, "get", "a"]) == 0
    assert capsys.readouterr()[0] == "OK\nOK\n2\n"
    assert store.acquire(1)
    again = store.load()
    store.release()
    assert again[0] > first[0] and again[1] == 1, (first, again)


def test_concurrent_raftctl_processes_never_share_a_seq(small, tmp_path):
    d = small
    env = dict(os.environ, MPRAFT_STATE_DIR=str(tmp_path / "state"))
    script = ("import sys; sys.path.insert(0, %r); import paths; paths.setup(); import raftctl\n"
              "for i in range(25):\n"
              "    assert raftctl.main(['--cluster', %r, 'put', 'p' + sys.argv[1], str(i)]) == 0\n"
              % (os.path.dirname(os.path.dirname(cluster.TOOLS)) + "/tools", d))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(k)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for k in range(4)]
    for p in procs:
        err = p.communicate(timeout=120)[1]
        assert p.returncode == 0, err
    # 100 writes, every one applied under a seq of its own: the slots' seqs
    # add up to 100, and at most one session per slot was registered.
    cl = cluster.load(d)
    total = 0
    cids = set()
    for slot in range(ctlsession.SLOTS):
        store = ctlsession.SessionStore(cl["cluster_id"], cl["key"], str(tmp_path / "state"),
                                        slots=slot + 1)
        store._path = "%s.%d" % (store.base, slot)
        cid, seq = store.load()
        total += seq
        if cid:
            cids.add(cid)
    assert total == 100 and 1 <= len(cids) <= ctlsession.SLOTS
    c = device(d)
    try:
        assert [c.get("p%d" % k) for k in range(4)] == [b"24"] * 4
    finally:
        c.close()
