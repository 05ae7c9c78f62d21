"""tools/ops/cluster.py: the cluster file's limits, copied into every node file."""
import json
import os
import subprocess
import sys

import pytest

import cluster
from paths import ROOT
from raftkv import limits


def _json(*p):
    with open(os.path.join(*p)) as f:
        return json.load(f)


def test_limits_default_fit_and_set_reach_every_node_file(tmp_path):
    unix = _json(ROOT, "boards", "unix", "board.json")
    esp32 = os.path.join(ROOT, "boards", "esp32", "board.json")
    for sub, kw, want in (
            ("a", {}, limits.of_board(unix)),
            ("b", {"board": esp32, "limits": "fit"}, limits.fit(_json(esp32))),
            ("c", {"limits": "max_keys=500,max_sessions=16"},
             dict(limits.of_board(unix), max_keys=500, max_sessions=16))):
        d = str(tmp_path / sub)
        cl = cluster.create(d, nodes=3, **kw)
        assert cl["limits"] == _json(d, "cluster.json")["limits"] == want
        for i in (1, 2, 3):
            assert _json(d, "node%d.json" % i)["limits"] == want
    d = str(tmp_path / "a")
    cluster.add_node(d, 4)
    assert _json(d, "node4.json")["limits"] == limits.of_board(unix)
    for bad in ("max_keys=0", "colour=3", "fits"):
        with pytest.raises(cluster.ClusterError):
            cluster.create(str(tmp_path / "x"), nodes=1, limits=bad)


def test_a_bad_limits_option_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "ops", "cluster.py"), "up",
                        "--limits", "max_keys=x", "--dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout.count("\n") == 1, r.stdout + r.stderr
    assert r.stdout.startswith("cluster: --limits: 'max_keys=x'"), r.stdout
    assert not os.path.exists(str(tmp_path / "d"))
