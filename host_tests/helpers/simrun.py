"""Helpers for tests that run tools/simulator/sim.py in-process or as a subprocess."""
import json
import os
import subprocess
import sys

from paths import ROOT
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")


def run_inproc(**kw):
    import sim
    opts = sim.parse_args([])
    opts.update(kw)
    s = sim.Sim(opts)
    return s, s.run()


def run_cli(args, interp=None, timeout=600):
    cmd = [interp or sys.executable, os.path.join(ROOT, "tools", "simulator", "sim.py")] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    last = p.stdout.strip().splitlines()[-1]
    return p.returncode, json.loads(last), p.stdout
