"""Five MicroPython nodes with stock boards' parameters and network stacks
(tools/bench/bench_boards.py, tools/board/netprofile.py), under six clients;
each history with final reads must be linearizable and the nodes converge.

- rp2 (receive queue 4) and esp32 (queue 6, ENOMEM on sends to a dead peer,
  firmware without recv flags): a leader kill, failover within the target;
- Wi-Fi: the leader's access point vanishes for 3 s; its station reconnects
  with back-off and the node rejoins with its term and log;
- clock wrap: every node's 2**30 ms clock starts 3 s before the wrap; the
  term does not change.
Loopback only; every run is bounded (about 10-15 s each).
"""
import os

import pytest

import bench_boards
import cluster

pytestmark = pytest.mark.skipif(not os.path.exists(cluster.micropython()) and
                                cluster.micropython() != "micropython",
                                reason="no micropython")


def _run(tmp_path, profile, scenario, seconds, **kw):
    r = bench_boards.run(profile, seconds, scenario, d=str(tmp_path / "cl"), **kw)
    print(r)
    assert r["failures"] == [], r
    assert r["linearizable"] is True
    return r


def test_rp2_profile_leader_kill(tmp_path):
    r = _run(tmp_path, "rp2", "kill", 8)
    assert r["failover_ms"] <= r["failover_target_ms"] + 500


def test_esp32_old_firmware_profile_leader_kill_backs_off_on_enomem(tmp_path):
    r = _run(tmp_path, "esp32-1.25", "kill", 8)
    # The dead leader's address stopped resolving: its peers' sends hit ENOMEM
    # and backed off instead of retrying at once.
    assert r["drops"].get("enomem", 0) > 0 and r["drops"].get("send_backoff", 0) > 0, r


def test_wifi_drop_and_return(tmp_path):
    r = _run(tmp_path, "esp32", "wifi", 10, outage=3.0)
    assert r["terms"][1] - r["terms"][0] <= 1, r   # pre-vote: the returning node disrupts nothing
    assert r["drops"].get("link_drops", 0) + r["drops"].get("send_unreach", 0) > 0, r


def test_clock_wrap_on_real_nodes(tmp_path):
    _run(tmp_path, "esp32", "wrap", 7)
