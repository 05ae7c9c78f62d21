"""Membership changes on a live cluster of MicroPython nodes, through raftctl.

Six nodes run; only 1..5 are members at first (`cluster.py up --voters 5`).
Node 6 joins as a learner, catches up, is promoted to voter; a voter is
removed and the cluster keeps committing with the new majority; invalid
changes are refused in one line. Loopback only, every wait bounded.
"""
import json
import os
import subprocess
import sys
import time

import pytest

import cluster


@pytest.fixture
def six(tmp_path):
    d = str(tmp_path / "cl")
    cluster.up(d, 6, "micropython", timeout_s=20, voters=5)
    try:
        yield d
    finally:
        cluster.down(d)


def _ctl(d, *args):
    p = subprocess.run([sys.executable, os.path.join(cluster.TOOLS, "raftctl.py"), "--cluster",
                        os.path.join(d, "cluster.json"), "--timeout", "5000"] + list(args),
                       capture_output=True, text=True, timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def _status(d, nid):
    return dict(cluster.statuses(d))[nid]


def _wait(pred, timeout_s=10):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_learner_joins_is_promoted_and_a_voter_leaves(six):
    d = six
    lead = cluster.wait_leader(d, 10)
    assert _status(d, lead)["voters"] == [1, 2, 3, 4, 5]
    for i in range(20):
        assert _ctl(d, "put", "k%d" % i, "v%d" % i)[0] == 0
    # Node 6 runs but is no member: it has nothing.
    assert _status(d, 6)["applied"] == 0
    assert _ctl(d, "add-learner", "6") == (0, "add-learner 6: applied", "")
    st = _status(d, lead)
    assert st["learners"] == [6] and st["voters"] == [1, 2, 3, 4, 5]
    # The learner catches up from the leader without voting.
    assert _wait(lambda: _status(d, 6)["applied"] >= _status(d, lead)["commit"])
    assert _status(d, 6)["role"] == "learner"
    assert _ctl(d, "add-voter", "6")[0] == 0
    assert _wait(lambda: _status(d, 6)["voters"] == [1, 2, 3, 4, 5, 6])
    # Remove a follower that is not node 6: six voters become five.
    gone = [n for n in (1, 2, 3, 4, 5) if n != cluster.leader(d)][0]
    assert _ctl(d, "remove", str(gone))[0] == 0
    want = sorted(set([1, 2, 3, 4, 5, 6]) - {gone})
    assert _wait(lambda: _status(d, cluster.leader(d))["voters"] == want)
    # The removed node can be stopped for good; two more failures are still
    # survivable only with node 6 counted: kill one more, writes go on.
    cluster.kill(d, gone)
    other = [n for n in want if n != cluster.leader(d)][0]
    cluster.kill(d, other)
    assert _ctl(d, "put", "after", "x")[0] == 0
    assert _ctl(d, "get", "k7") == (0, "v7", "")
    # Invalid or impossible changes: one line each.
    rc, _, err = _ctl(d, "add-voter", "6")           # already a voter
    assert rc == 2 and len(err.splitlines()) == 1, err
    rc, _, err = _ctl(d, "add-learner", "9")         # no address known
    assert rc == 2 and "HOST:PORT" in err, err
    rc, _, err = _ctl(d, "remove", "x")
    assert rc == 2


def test_status_json_lists_membership(six):
    d = six
    cluster.wait_leader(d, 10)
    rc, out, _ = _ctl(d, "status", "--json")
    rows = json.loads(out)
    assert rc == 0 and [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6]
