"""The benchmark's CPU accounting (tools/bench/benchcpu.py) and the profile tool's smoke run."""
import os
import subprocess

import benchcpu
import cluster


def test_cpu_split_reads_this_process():
    u, s = benchcpu.cpu_split(os.getpid())
    assert u > 0 and s >= 0
    assert benchcpu.cpu_split(1 << 30) is None  # no such process


def test_per_put_by_role():
    c0 = {1: (1.0, 0.5), 2: (2.0, 0.1), 3: (2.0, 0.1)}
    c1 = {1: (1.5, 0.6), 2: (2.1, 0.2), 3: (2.2, 0.2)}
    r = benchcpu.per_put(c0, c1, 1000, lead=1)
    assert abs(r["leader_us"] - 600) < 1e-6
    assert abs(r["follower_us"] - 250) < 1e-6  # (200 + 300) / 2
    assert abs(r["all_us"] - 1100) < 1e-6
    assert abs(r["leader_sys_us"] - 100) < 1e-6
    assert benchcpu.per_put(c0, c1, 0, 1)["leader_us"] is None


def test_work_per_put_and_missing_counters():
    st0 = {"n_applied": 100, "dgrams_in": 10, "macs": 20}
    st1 = {"n_applied": 300, "dgrams_in": 410, "macs": 820}
    w = benchcpu.work_per_put(st0, st1)
    assert w["dgrams_in"] == 2.0 and w["macs"] == 4.0
    assert w["flushes"] is None  # an older node does not report it
    # A batch of 16 puts is one entry: per put is per entry / 16.
    wb = benchcpu.work_per_put(st0, st1, 16)
    assert wb["dgrams_in"] == 0.125 and wb["applied"] == 3200


def test_rounds_merge_to_medians_and_ratios_match_levels():
    rows = [{"inflight": 64, "batch": 1, "puts_per_s": v, "p50_ms": 1.0, "leader_us": v}
            for v in (3.0, 1.0, 2.0)]
    m = benchcpu.merge_rounds(rows)
    assert len(m) == 1 and m[0]["leader_us"] == 2.0 and m[0]["rounds"] == 3
    new = [{"inflight": 64, "batch": 16, "leader_us": 1.0, "follower_us": 1.0, "all_us": 1.0,
            "puts_per_s": 4.0, "p50_ms": 1.0}]
    old = [{"inflight": 64, "batch": 1, "leader_us": 2.0, "follower_us": 4.0, "all_us": 2.0,
            "puts_per_s": 2.0, "p50_ms": 2.0}]
    q = benchcpu.ratios(new, old)[0]
    assert (q["leader_us"], q["follower_us"], q["puts_per_s"]) == (0.5, 0.25, 2.0)


def test_profile_path_runs_under_micropython(tmp_path):
    p = subprocess.run([cluster.micropython(), "-X", "heapsize=64M",
                        os.path.join(cluster.ROOT, "tools", "bench", "profile_path.py"),
                        "--rounds", "3", "--batch", "8", "--group", "4", "--dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "leader: total without the flush" in p.stdout
    assert "follower: apply (KV)" in p.stdout
    assert os.listdir(str(tmp_path)) == []  # its flash folders are removed
