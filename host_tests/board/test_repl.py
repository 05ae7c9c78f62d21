"""The REPL on a virtual board: pause, inspect, resume, detach (firmware/README.md).

Node 1 of a three-node cluster runs on a virtual board (tools/board/vboard.py:
the unix build in the unix board's 256 KB heap, driven over its pty by real
mpremote); nodes 2 and 3 run as plain MicroPython processes, so the cluster
keeps committing while node 1 is paused at its REPL. docs/repl.md says what
went wrong before and why. Bounded: every subprocess has a timeout, the
board stops after its --seconds and the nodes are killed at the end.
"""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import cluster

from paths import ROOT
from test_vboard import stop_board
VBOARD = os.path.join(ROOT, "tools", "board", "vboard.py")
MPREMOTE = os.path.join(ROOT, ".venv", "bin", "mpremote")
RAFTCTL = os.path.join(ROOT, "tools", "ops", "raftctl.py")


def _exec(link, code, timeout=30):
    return subprocess.run([MPREMOTE, "connect", link, "resume", "exec", code],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("repl")
    build = str(tmp / "build")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "board", "build.py"), "unix",
                        "--out", build, "--no-budget"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    d = str(tmp / "cl")
    # Limits a unix board holds (make flash checks them) with room for the
    # 125 short keys the resume test writes: its key table must grow.
    cluster.create(d, nodes=3, limits="max_key=16,max_value=16,max_keys=200,max_sessions=8")
    flash, link = str(tmp / "flash"), str(tmp / "pty")
    p = subprocess.Popen([sys.executable, VBOARD, "--flash", flash, "--link", link,
                          "--heap", "256K", "--seconds", "150",
                          "--console", str(tmp / "console.log")],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("vboard: /dev/")
        for nid in (2, 3):
            cluster.start(d, nid)
        f = subprocess.run([sys.executable, VBOARD, "flash", "--build", build, "--port", link,
                            "--node", "1", "--cluster", os.path.join(d, "cluster.json")],
                           capture_output=True, text=True, timeout=120)
        assert f.returncode == 0, f.stdout + f.stderr
        assert cluster.wait_leader(d, timeout_s=30)
        yield d, link, str(tmp)
    finally:
        stop_board(p)
        cluster.down(d)


def _bulk_load(d, tmp, first, n):
    path = os.path.join(tmp, "pairs%d.txt" % first)
    with open(path, "w") as f:
        for i in range(first, first + n):
            f.write("key%d value-%d\n" % (i, i))
    r = subprocess.run([sys.executable, RAFTCTL, "--cluster", os.path.join(d, "cluster.json"),
                        "bulk-load", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_resume_after_pause_keeps_the_heap_whole(board):
    # Pause (mpremote's Ctrl-C) and inspect, let the others commit 40 keys,
    # resume for 300 turns: three times. Before run() collected at an eighth
    # of the free heap, the largest free block fell from ~70 KB to ~8 KB in
    # the first resume and a 2 KB table growth failed soon after (docs/repl.md).
    d, link, tmp = board
    for k in range(3):
        r = _exec(link, "import mpraft; mpraft.status()")
        assert r.returncode == 0 and "role " in r.stdout, r.stdout + r.stderr
        _bulk_load(d, tmp, 40 * k, 40)
        r = _exec(link, "import mpraft, micropython\nmpraft.run(300)\nmicropython.mem_info()\n"
                        "print('KEYS', mpraft.node.status()['keys'])")
        out = r.stdout + r.stderr
        assert r.returncode == 0 and "Error" not in out, out
        free = int(re.search(r"max free sz: (\d+)", out).group(1))
        print("repl: resume %d: largest free block %d blocks of 32 bytes" % (k + 1, free))
        # GC blocks of 32 bytes on the 64-bit unix port: 16 KB in one piece.
        assert free >= 512, (k, out)
    assert "KEYS 12" in out, out  # 120 keys plus the client sessions: caught up


def test_reachable_after_detach(board):
    # Detach: mpremote runs the loop and is interrupted (a person's Ctrl-C,
    # a closed terminal); the board keeps serving. mpremote must reach it
    # again: its Ctrl-C interrupts the loop as a board's UART does.
    d, link, tmp = board
    m = subprocess.Popen([MPREMOTE, "connect", link, "resume", "exec",
                          "import mpraft; mpraft.run()"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _bulk_load(d, tmp, 1000, 5)
        m.send_signal(signal.SIGINT)
        m.communicate(timeout=20)
    finally:
        if m.poll() is None:
            m.kill()
            m.wait(timeout=10)
    # Still serving while nobody is attached: it applies what the others commit.
    _bulk_load(d, tmp, 2000, 5)
    r = _exec(link, "import mpraft; mpraft.status()")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = r.stdout.splitlines()
    commit = [ln.split()[1] for ln in rows if ln.startswith("commit ")]
    applied = [ln.split()[1] for ln in rows if ln.startswith("applied ")]
    assert commit and commit == applied, r.stdout
    r = _exec(link, "print(6 * 7)")
    assert r.returncode == 0 and r.stdout.strip() == "42", r.stdout + r.stderr


CONSOLE = """
import asyncio
from raftio import console
st = [0]
async def tick():
    while True:
        st[0] += 1
        await asyncio.sleep_ms(10)
async def main():
    asyncio.create_task(tick())
    await console.task(globals())
asyncio.run(main())
print("END", st[0])
"""


def test_console_task_reads_stdin_while_other_tasks_run(tmp_path):
    # raftio/console.py with its default reader, asyncio's stream on stdin,
    # under the unix port: a task beside it keeps running between lines.
    script = str(tmp_path / "console_main.py")
    with open(script, "w") as f:
        f.write(CONSOLE)
    env = dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "lib"))
    p = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "micropython"), script],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env)
    try:
        time.sleep(0.3)
        p.stdin.write(b"st[0]\n")
        p.stdin.flush()
        time.sleep(0.3)
        out = p.communicate(b"st[0]\n\x04", timeout=10)[0].decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    m = re.match(r"--> st\[0\]\n(\d+)\n--> st\[0\]\n(\d+)\n--> \nEND (\d+)\n$", out)
    assert m, out
    assert 0 < int(m.group(1)) < int(m.group(2)) <= int(m.group(3)), out
