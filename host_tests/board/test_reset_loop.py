"""A virtual board resets on a fatal error as a real board does, and a reset loop shows.

firmware/mpraft.py resets the board (machine.reset) after an error its loop
cannot handle; tools/board/vboard.py restarts the board's boot.py and main.py
then, as a board does. Here the loop fails at every boot (boot.py plants the
bug before main.py runs), so the board would reset for ever without the
crash-loop guard: three fatal resets, and the fourth boot writes /SAFE and
stays at the REPL. vboard itself stops a board after --max-resets quick
resets in a row, so a broken guard fails a test instead of hanging it.
Bounded: vboard stops after --seconds; each boot waits 3 s before its reset.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import cluster

from paths import ROOT
from test_vboard import stop_board
VBOARD = os.path.join(ROOT, "tools", "board", "vboard.py")

BUG = "import mpraft\nmpraft.Node.run_once = lambda self: 1 // 0  # fails at every boot\n"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fw") / "unix")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "board", "build.py"), "unix",
                        "--out", out, "--no-budget"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def _flash(build, tmp_path):
    # What `make flash` leaves on a board, plus the bug.
    d = str(tmp_path / "cl")
    cluster.create(d, nodes=1)
    flash = str(tmp_path / "flash")
    shutil.copytree(build, flash)
    shutil.copyfile(os.path.join(d, "node1.json"), os.path.join(flash, "node.json"))
    with open(os.path.join(flash, "boot.py"), "w") as f:
        f.write(BUG)
    with open(os.path.join(flash, "node.json")) as f:
        assert json.load(f)["node_id"] == 1
    return flash


def _board(flash, tmp_path, *extra):
    console = str(tmp_path / "console.log")
    p = subprocess.Popen([sys.executable, VBOARD, "--flash", flash, "--heap", "256K",
                          "--seconds", "60", "--console", console] + list(extra),
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().startswith("vboard: /dev/")
    return p, console


def _read(console):
    with open(console, errors="replace") as f:
        return f.read()


def test_fatal_error_at_every_boot_resets_three_times_then_safe_mode(build, tmp_path):
    flash = _flash(build, tmp_path)
    p, console = _board(flash, tmp_path)
    try:
        for _ in range(3):
            assert p.stdout.readline().strip() == "vboard: hard reset"
        deadline = time.monotonic() + 20
        while "/SAFE written" not in _read(console) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(4)  # longer than the 3 s before a reset: none comes
        assert p.poll() is None
    finally:
        stop_board(p)
    text = _read(console)
    assert text.count("ZeroDivisionError") == 3, text[-3000:]
    assert text.count("mpraft: fatal; reset in 3 s") == 3, text[-3000:]
    assert text.count("mpraft: 3 fatal errors in a row; /SAFE written") == 1, text[-3000:]
    assert text.count("mpraft: node 1 serving") == 3, text[-3000:]
    assert os.path.exists(os.path.join(flash, "SAFE"))
    assert not os.path.exists(os.path.join(flash, "CRASHES"))
    assert os.path.isdir(os.path.join(flash, "raft"))  # the flash kept for inspection


def test_vboard_stops_a_reset_loop(build, tmp_path):
    # With a bound below the firmware's guard, vboard ends the loop itself:
    # what a test sees if a board would reset for ever.
    flash = _flash(build, tmp_path)
    p, console = _board(flash, tmp_path, "--max-resets", "2")
    try:
        out = p.communicate(timeout=40)[0]
    finally:
        stop_board(p)
    assert p.returncode == 3, out
    assert out.splitlines()[-3:] == [
        "vboard: hard reset", "vboard: hard reset",
        "vboard: reset loop: 2 hard resets in a row, each within 30 s of its boot; "
        "board stopped"], out
    assert not os.path.exists(os.path.join(flash, "SAFE"))
