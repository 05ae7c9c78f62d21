"""A slow subset of the cluster scenarios on real MicroPython node processes.

The scenario functions are host_tests/portable/simulator/test_cluster_scenarios.py's,
imported, not copied; clusterfix's "processes" backend runs them against 5
MicroPython unix-port nodes on 127.0.0.1 behind the fault proxy
(tools/ops/cluster.py up --proxy). Crashes and power cuts are SIGKILL (see
clusterfix.ProcessCluster). Each test boots its own cluster in its tmp_path
and stops every process it started, pass or fail.
"""
import os

import pytest

import clusterfix
import cluster
import test_cluster_scenarios as scenarios

pytestmark = pytest.mark.skipif(not os.path.exists(cluster.micropython()) and
                                cluster.micropython() != "micropython",
                                reason="no micropython")


def _run(tmp_path, scenario):
    c = clusterfix.make("processes", d=str(tmp_path / "cl"))
    try:
        scenario(c)
        c.check()
    finally:
        c.close()


def test_writes_survive_a_leader_crash(tmp_path):
    _run(tmp_path, scenarios.scenario_writes_survive_a_leader_crash)


def test_a_minority_cannot_acknowledge_writes(tmp_path):
    _run(tmp_path, scenarios.scenario_a_minority_cannot_acknowledge_writes)


def test_a_power_cut_of_every_node_keeps_acknowledged_writes(tmp_path):
    _run(tmp_path, scenarios.scenario_a_power_cut_of_every_node_keeps_acknowledged_writes)
