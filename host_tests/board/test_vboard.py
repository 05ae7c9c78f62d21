"""tools/board/vboard.py: five virtual boards flashed with real mpremote form a cluster.

Each board is a pty with the MicroPython unix port behind it and a folder as
its flash. `vboard.py flash` (what `make flash` runs) copies the unix build
and the node file; the boards reset, boot main.py from their flash, elect a
leader over UDP on 127.0.0.1 and serve raftctl; `mpremote resume exec
"import mpraft; mpraft.status()"` prints a board's live state. Bounded:
every subprocess has a timeout and the boards stop on their own.
"""
import json
import os
import re
import signal
import subprocess
import sys

import cluster
import vboard

from paths import ROOT
VBOARD = os.path.join(ROOT, "tools", "board", "vboard.py")
MPREMOTE = os.path.join(ROOT, ".venv", "bin", "mpremote")
RAFTCTL = os.path.join(ROOT, "tools", "ops", "raftctl.py")
N = 5


def start_board(flash, link):
    p = subprocess.Popen([sys.executable, VBOARD, "--flash", flash, "--link", link,
                          "--heap", "256K", "--seconds", "240"],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("vboard: /dev/"), line
    return p


def build_firmware(tmp_path, board):
    build = str(tmp_path / "build")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "board", "build.py"), board,
                        "--out", build, "--no-budget"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return build


def stop_board(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
    p.stdout.close()


def test_five_flashed_boards_serve_raftctl(tmp_path):
    build = build_firmware(tmp_path, "unix")
    d = str(tmp_path / "cl")
    cluster.create(d, nodes=N, limits="fit")  # limits a unix board holds (make flash checks)
    boards = []
    try:
        for i in range(1, N + 1):
            flash = str(tmp_path / ("flash%d" % i))
            os.makedirs(flash)
            # A stale source that would shadow the firmware's .mpy (the build
            # merges the firmware into mpraft.mpy): flash must remove it.
            with open(os.path.join(flash, "mpraft.py"), "w") as f:
                f.write("raise ImportError('stale')\n")
            link = str(tmp_path / ("pty%d" % i))
            boards.append((start_board(flash, link), flash, link))
        flashes = [subprocess.Popen([sys.executable, VBOARD, "flash", "--build", build,
                                     "--port", link, "--node", str(i + 1), "--cluster",
                                     os.path.join(d, "cluster.json")],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for i, (_, _, link) in enumerate(boards)]
        for i, f in enumerate(flashes):
            out = f.communicate(timeout=180)[0]
            assert f.returncode == 0, out
            assert "cp %s :main.py" % os.path.join(build, "main.py") in out, out
            assert "removed stale /mpraft.py" in out, out
        for _, flash, _ in boards:
            assert not os.path.exists(os.path.join(flash, "mpraft.py"))
            assert os.path.exists(os.path.join(flash, "mpraft.mpy"))
            assert os.path.exists(os.path.join(flash, "node.json"))
        cluster.wait_leader(d, timeout_s=30)
        # Each founder's first boot adopted the incarnation the cluster file
        # binds it to, and the file records it as provisioned, once: a
        # second flash gets no "inc" (docs/incarnation.md).
        from raftio import identity
        from raftio.fs import RealFS
        cl = cluster.load(d)
        assert sorted(cl["provisioned"]) == list(range(1, N + 1)), cl
        for i, (_, flash, _) in enumerate(boards):
            assert identity.load(RealFS(os.path.join(flash, "raft")), i + 1) == \
                cl["incs"][str(i + 1)]
        assert "inc" not in vboard.node_config(os.path.join(d, "cluster.json"), 1,
                                               json.load(open(os.path.join(build, "board.json"))))
        ctl = [sys.executable, RAFTCTL, "--cluster", os.path.join(d, "cluster.json")]
        r = subprocess.run(ctl + ["put", "board", "flashed"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        r = subprocess.run(ctl + ["get", "board"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "flashed", r.stdout + r.stderr
        lead = cluster.wait_leader(d, timeout_s=30)
        follower = 1 if lead != 1 else 2
        # The follower first: mpremote's Ctrl-C pauses a node, and a paused
        # leader would soon be replaced.
        for nid in (follower, lead):
            r = subprocess.run([MPREMOTE, "connect", boards[nid - 1][2], "resume", "exec",
                                "import mpraft; mpraft.status(); mpraft.events(5)"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stdout + r.stderr
            rows = r.stdout.splitlines()
            assert "role         %s" % ("leader" if nid == lead else "follower") in rows, r.stdout
            assert any(ln.startswith("commit       ") for ln in rows), r.stdout
            assert any(ln.startswith("heap_free    ") for ln in rows), r.stdout
            assert any(" essential leader " in ln for ln in rows), r.stdout
            # peers(): on the leader one row per other node with its progress
            # as the core keeps it; on a follower who leads.
            if nid == lead:
                assert sum(bool(re.match(r"\d +\d+ +\d+  (probe|replicate|snapshot) +\d+$", ln))
                           for ln in rows) == 4, r.stdout
            else:
                assert "follower of %d; replication state is the leader's" % lead in rows, r.stdout
        # The same board after a soft reset (mpremote's default) is a plain REPL.
        r = subprocess.run([MPREMOTE, "connect", boards[0][2], "exec", "print(6 * 7)"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "42", r.stdout + r.stderr
    finally:
        for p, _, _ in boards:
            stop_board(p)


def test_a_fatal_error_in_the_loop_resets_the_board_and_the_node_recovers(tmp_path):
    # A one-node cluster on one board. An error the loop cannot handle (here
    # the RawNode replaced by None) must not leave the node dead at the
    # REPL: main() prints it, resets the board, and the node boots again from
    # flash with what it acknowledged.
    build = build_firmware(tmp_path, "unix")
    d = str(tmp_path / "cl")
    cluster.create(d, nodes=1, limits="fit")
    flash, link = str(tmp_path / "flash"), str(tmp_path / "pty")
    console = str(tmp_path / "console.log")
    p = subprocess.Popen([sys.executable, VBOARD, "--flash", flash, "--link", link,
                          "--heap", "256K", "--seconds", "120", "--console", console],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("vboard: /dev/")
        f = subprocess.run([sys.executable, VBOARD, "flash", "--build", build, "--port", link,
                            "--node", "1", "--cluster", os.path.join(d, "cluster.json")],
                           capture_output=True, text=True, timeout=120)
        assert f.returncode == 0, f.stdout + f.stderr
        # Flashing ends with `mpremote reset`: the first hard reset.
        assert p.stdout.readline().strip() == "vboard: hard reset"
        cluster.wait_leader(d, timeout_s=30)
        ctl = [sys.executable, RAFTCTL, "--cluster", os.path.join(d, "cluster.json")]
        r = subprocess.run(ctl + ["put", "kept", "yes"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        # Run the loop as main() does, broken. The board resets instead of
        # finishing the exec, so mpremote is stopped once vboard reports it.
        m = subprocess.Popen([MPREMOTE, "connect", link, "resume", "exec",
                              "import mpraft; mpraft.node.server = None; "
                              "mpraft.run(reset=True)"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # Bounded: vboard exits after its --seconds.
            assert p.stdout.readline().strip() == "vboard: hard reset"
        finally:
            m.kill()
            m.wait(timeout=10)
        cluster.wait_leader(d, timeout_s=30)
        r = subprocess.run(ctl + ["get", "kept"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "yes", r.stdout + r.stderr
        r = subprocess.run(ctl + ["put", "after", "reset"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        stop_board(p)
    with open(console, errors="replace") as h:
        text = h.read()
    assert "AttributeError" in text and "mpraft: fatal; reset in 3 s" in text, text[-2000:]
    # Booted twice from flash: at power-up and after the reset.
    assert text.count("mpraft: node 1 serving") == 2, text[-2000:]


def test_romfs_flash_runs_the_esp32_build_within_its_100k_heap(tmp_path):
    # The esp32 build on a board with a ROMFS partition, heap capped at the
    # esp32 budget (vboard raises the cap by the partition's own bytearray
    # only, since a board maps it from flash). Flashed with --romfs, the
    # firmware runs in place from /rom and the node serves. (Flashed to the
    # file system, the same build at this cap dies importing itself on this
    # 64-bit port; boards/README.md has the figures.)
    build = build_firmware(tmp_path, "esp32")
    d = str(tmp_path / "cl")
    # Limits an esp32 holds (make flash refuses the laptop's).
    cluster.create(d, nodes=1, board=os.path.join(build, "board.json"), limits="fit")
    ctl = [sys.executable, RAFTCTL, "--cluster", os.path.join(d, "cluster.json")]
    flash, link = str(tmp_path / "flash"), str(tmp_path / "pty")
    console = str(tmp_path / "console.log")
    os.makedirs(flash)
    # A copy on the file system would shadow /rom: flash must remove it.
    with open(os.path.join(flash, "mpraft.mpy"), "wb") as f:
        f.write(b"stale")
    p = subprocess.Popen([sys.executable, VBOARD, "--flash", flash, "--link", link,
                          "--heap", "100K", "--romfs", "64K", "--seconds", "90",
                          "--console", console], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("vboard: /dev/")
        f = subprocess.run([sys.executable, VBOARD, "flash", "--build", build, "--port", link,
                            "--node", "1", "--cluster", os.path.join(d, "cluster.json"),
                            "--romfs"], capture_output=True, text=True, timeout=120)
        assert f.returncode == 0, f.stdout + f.stderr
        assert p.stdout.readline().strip() == "vboard: hard reset"
        assert "ROMFS image deployed" in f.stdout, f.stdout
        assert "removed shadowing /mpraft.mpy" in f.stdout, f.stdout
        assert "cp %s" % os.path.join(build, "mpraft.mpy") not in f.stdout, f.stdout
        assert not os.path.exists(os.path.join(flash, "mpraft.mpy"))
        cluster.wait_leader(d, timeout_s=30)
        r = subprocess.run(ctl + ["put", "rom", "fits"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        r = subprocess.run(ctl + ["get", "rom"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "fits", r.stdout + r.stderr
        r = subprocess.run([MPREMOTE, "connect", link, "resume", "exec",
                            "import mpraft; print(mpraft.__file__); mpraft.status()"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.startswith("/rom/mpraft.mpy"), r.stdout
        assert "role         leader" in r.stdout.splitlines(), r.stdout
    finally:
        stop_board(p)
    with open(console, errors="replace") as h:
        text = h.read()
    assert "mpraft: node 1 serving" in text and "MemoryError" not in text, text[-2000:]
