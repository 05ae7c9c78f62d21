"""Run every data-driven interaction script in host_tests/testdata (tools/simulator/interact.py).

A mismatch fails with a unified diff between the file and the actual output;
accept intended changes with `python3 tools/simulator/interact.py FILE --rewrite` and
review the diff. The same scripts also run under MicroPython (checked here
once for all files through the `micropython` launcher, when present).
"""
import difflib
import glob
import os
import subprocess

import pytest

import interact

from paths import ROOT as _ROOT
_FILES = sorted(glob.glob(os.path.join(_ROOT, "host_tests", "testdata", "*.txt")))
# Interaction scripts are the ones that start with a command or a comment
# and contain a ---- separator (other testdata files may live alongside).
_SCRIPTS = [f for f in _FILES if "\n----\n" in open(f).read()]


def test_there_are_scripts():
    assert len(_SCRIPTS) >= 6, _SCRIPTS


@pytest.mark.parametrize("path", _SCRIPTS, ids=[os.path.basename(f) for f in _SCRIPTS])
def test_script(path):
    with open(path) as f:
        text = f.read()
    new, bad = interact.run_text(text, path)
    if new != text:
        diff = "".join(difflib.unified_diff(
            text.splitlines(True), new.splitlines(True), "expected " + path, "actual"))
        pytest.fail("%s differs (%d commands); rerun tools/simulator/interact.py %s --rewrite "
                    "if intended:\n%s" % (os.path.basename(path), len(bad), path, diff))


def test_scripts_identical_on_micropython():
    mp = os.path.join(_ROOT, ".venv", "bin", "micropython")
    if not os.path.exists(mp):
        pytest.skip("no micropython launcher in .venv")
    r = subprocess.run([mp, os.path.join(_ROOT, "tools", "simulator", "interact.py")] + _SCRIPTS,
                       capture_output=True, text=True, timeout=300, cwd=_ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mismatch_is_reported():
    text = "add-nodes 1\n----\nnot what it prints\n"
    new, bad = interact.run_text(text, "t")
    assert len(bad) == 1 and new != text
    new2, bad2 = interact.run_text(new, "t")
    assert bad2 == [] and new2 == new


def test_script_errors_are_output_not_crashes():
    new, bad = interact.run_text("campaign 1\n\nadd-nodes 2\n\nfrobnicate 3\n\npropose 9 x\n", "t")
    assert "script error: no nodes yet" in new
    assert "script error: unknown command 'frobnicate'" in new
    assert "script error: no node 9" in new
