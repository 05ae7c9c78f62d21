"""Layer 3: the deterministic simulator over many seeds with every fault."""
import pytest

from simrun import MICROPYTHON, run_cli, run_inproc

SEEDS = range(1, 51)


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_sweep_all_faults(seed):
    import sim as simmod
    sim, res = run_inproc(seed=seed, steps=5000, faults=list(simmod.FAULTS))
    assert res["violations"] == [], res
    # The run did real work: a cluster that never commits proves nothing.
    assert res["commits"] > 1000, res
    assert res["elections"] >= 1


def test_fault_free_run_commits_nearly_everything():
    sim, res = run_inproc(seed=3, steps=3000, faults=[])
    assert res["violations"] == []
    assert res["elections"] == 1
    assert res["commits"] >= res["proposed"] - 10


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_digest_identical_on_cpython_and_micropython(seed):
    args = ["--nodes", "5", "--seed", str(seed), "--steps", "3000", "--faults", "all"]
    rc1, a, _ = run_cli(args)
    rc2, b, _ = run_cli(args, interp=MICROPYTHON)
    assert rc1 == 0 and rc2 == 0
    assert a["digest"] == b["digest"], (a, b)
    assert a["commits"] == b["commits"] and a["elections"] == b["elections"]


def test_cli_contract_and_usage_errors():
    rc, res, out = run_cli(["--nodes", "3", "--seed", "9", "--steps", "500", "--faults",
                            "drop,partition"])
    assert rc == 0
    for k in ("seed", "nodes", "steps", "commits", "elections", "violations", "digest"):
        assert k in res
    assert res["nodes"] == 3 and res["steps"] == 500 and res["faults"] == "drop,partition"
    import subprocess
    import sys
    from simrun import ROOT
    p = subprocess.run([sys.executable, "tools/simulator/sim.py", "--faults", "bogus"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "unknown fault 'bogus'" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr


def test_sweep_prints_progress_on_stderr_without_changing_results():
    # A long sweep shows how far it is (elapsed, seeds done, faults, failed)
    # on stderr every --progress seconds; the results on stdout are the same.
    import json
    import re
    import subprocess
    import sys
    from simrun import ROOT
    cmd = [sys.executable, "tools/simulator/sweep.py", "--seeds", "3", "--steps", "1500",
           "--jobs", "1"]
    runs = [subprocess.run(cmd + ["--progress", p], cwd=ROOT, capture_output=True, text=True,
                           timeout=120) for p in ("0.2", "0")]
    for r in runs:
        assert r.returncode == 0, r.stdout + r.stderr
    lines = runs[0].stderr.splitlines()
    assert lines and all(re.match(r"sweep: \d+ s, [0-3]/3 seeds, \d+ faults, 0 failed$", ln)
                         for ln in lines), lines
    assert any(re.match(r"sweep: \d+ s, [12]/3 seeds, [1-9]\d* faults", ln) for ln in lines), lines
    assert runs[1].stderr == ""
    a, b = (json.loads(r.stdout.splitlines()[-1]) for r in runs)
    a.pop("seconds")
    b.pop("seconds")
    assert a == b and a["commits"] > 1000, (a, b)
