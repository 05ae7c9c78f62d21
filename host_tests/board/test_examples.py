"""examples/: the counter and sensor-log apps on five virtual boards each.

Each board is what `make flash EXAMPLE=...` writes: the unix board built
with the optional modules (the in-process API, asyncio serving, the app
machines) and the example's main.py, run by the MicroPython unix port in
its own folder as a board's root. The apps' own code writes through the
leader; once every board has said its write was acknowledged, the test
makes /GO on every board and each reads back, linearizably, what the
others wrote. Loopback only; every wait is bounded; every process killed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

import cluster
from paths import ROOT

MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
# As on a board: the frozen modules (asyncio) and /lib.
ENV = dict(os.environ, MICROPYPATH=":.frozen:lib")
NODES = 5


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fw") / "unix")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "board", "build.py"), "unix",
                        "--out", out, "--no-budget", "--with-optional"], capture_output=True,
                       text=True, timeout=180, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def _boards(build, tmp_path, example):
    d = str(tmp_path / "cl")
    cl = cluster.create(d, nodes=NODES)
    roots = {}
    for n in cl["nodes"]:
        root = str(tmp_path / ("b%d" % n["id"]))
        shutil.copytree(build, root)
        shutil.copy(os.path.join(d, "node%d.json" % n["id"]), os.path.join(root, "node.json"))
        shutil.copy(os.path.join(ROOT, "examples", example, "main.py"),
                    os.path.join(root, "main.py"))
        roots[n["id"]] = root
    return roots


def _console(root):
    with open(os.path.join(root, "console.log")) as f:
        return f.read()


def _wait_all(roots, pattern, timeout_s):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = {}
        for i, root in roots.items():
            m = re.findall(pattern, _console(root))
            if m:
                found[i] = m
        if len(found) == len(roots):
            return found
        time.sleep(0.2)
    raise AssertionError("%r not on every board within %d s:\n%s" % (
        pattern, timeout_s, "\n".join("--- board %d\n%s" % (i, _console(r)[-1500:])
                                      for i, r in roots.items())))


def _run(roots, check):
    procs = []
    try:
        for i, root in roots.items():
            log = open(os.path.join(root, "console.log"), "w")
            procs.append((subprocess.Popen([MICROPYTHON, "main.py"], cwd=root, env=ENV,
                                           stdout=log, stderr=subprocess.STDOUT), log))
        check()
    finally:
        for p, log in procs:
            p.kill()
            p.wait(timeout=10)
            log.close()
    for root in roots.values():
        text = _console(root)
        assert "Traceback" not in text, text


def test_counter_app_on_five_boards(build, tmp_path):
    roots = _boards(build, tmp_path, "counter")

    def check():
        added = _wait_all(roots, r"counter: added (\d+) \(value now (\d+)\)", 60)
        for i, m in added.items():
            assert int(m[0][0]) == i
        # Every add was acknowledged before any read starts: each read sees all.
        for root in roots.values():
            open(os.path.join(root, "GO"), "w").close()
        final = _wait_all(roots, r"counter: final (-?\d+)", 30)
        total = sum(roots)
        for i, m in final.items():
            assert int(m[0]) == total, (i, m, total)

    _run(roots, check)


def test_sensorlog_app_on_five_boards(build, tmp_path):
    roots = _boards(build, tmp_path, "sensorlog")

    def check():
        wrote = _wait_all(roots, r"sensorlog: wrote \d+ last=(\S+) worst lateness (\d+) ms", 60)
        for root in roots.values():
            open(os.path.join(root, "GO"), "w").close()
        done = _wait_all(roots, r"sensorlog: done, sensor worst lateness (\d+) ms over (\d+)", 30)
        for i, root in roots.items():
            saw = dict(re.findall(r"sensorlog: saw (\d+) (\S+)", _console(root)))
            for j, m in wrote.items():
                if j != i:
                    # Another board's own write, read back linearizably here.
                    assert saw.get(str(j)) == m[0][0], (i, j, saw, m)
        worst = max(int(m[0][0]) for m in done.values())
        print("sensorlog: worst sensor lateness on five boards %d ms" % worst)

    _run(roots, check)
