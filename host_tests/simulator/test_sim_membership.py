"""Layer 3 with membership changes: the simulator's `reconfig` fault on top of
every other fault. The leader removes voters (down to 3), adds removed nodes
back as learners and promotes them once caught up; the checker verifies
durability against the voters that committed each entry and that every
node's membership matches the committed log at its applied index.
"""
import pytest

from simrun import MICROPYTHON, run_cli, run_inproc

import sim as simmod

ALL_RECONFIG = list(simmod.FAULTS) + ["reconfig"]


@pytest.mark.parametrize("seed", range(1, 21))
def test_reconfig_sweep_all_faults(seed):
    s, res = run_inproc(seed=seed, steps=3000, faults=ALL_RECONFIG, shrink=False)
    assert res["violations"] == [], res
    # Membership really changed, and the cluster kept committing through it.
    assert res["conf_changes_committed"] >= 5, res
    assert res["commits"] > 1500, res
    assert 3 <= len(res["voters"]) <= 5


@pytest.mark.parametrize("seed", [1, 2])
def test_reconfig_with_clients_is_linearizable(seed):
    s, res = run_inproc(seed=seed, steps=2500, faults=ALL_RECONFIG, clients=4,
                        check_linear=True, shrink=False)
    assert res["violations"] == [], res
    assert res["linearizable"] is True, res
    assert res["conf_changes_committed"] >= 5, res


def test_reconfig_digest_identical_on_micropython():
    args = ["--nodes", "5", "--seed", "3", "--steps", "3000", "--faults", "all,reconfig",
            "--no-shrink"]
    rc1, a, _ = run_cli(args)
    rc2, b, _ = run_cli(args, interp=MICROPYTHON)
    assert rc1 == 0 and rc2 == 0, (a, b)
    assert a["digest"] == b["digest"], (a, b)
    assert a["conf_changes_committed"] == b["conf_changes_committed"] >= 5
    # Joint changes too, entered and left alike on both interpreters.
    assert a["joint_entered"] == b["joint_entered"] >= 1
    assert a["joint_left"] == b["joint_left"]
    assert a["voters"] == b["voters"]


@pytest.mark.parametrize("seed", [1, 6])
def test_reconfig_makes_joint_changes_and_leaves_them(seed):
    s, res = run_inproc(seed=seed, steps=3000, faults=ALL_RECONFIG, shrink=False)
    assert res["violations"] == [], res
    assert res["joint_entered"] >= 1, res
    # Each one is left (by the leader, or when the simulator asks), unless
    # the run ends inside the last one.
    assert res["joint_entered"] - res["joint_left"] in (0, 1), res
    assert res["joint_entered"] == res["joint_left"] or res["voters_out"], res


def test_all_means_the_classic_faults_and_reconfig_is_opt_in():
    assert simmod.parse_faults("all") == list(simmod.FAULTS)
    assert "reconfig" not in simmod.FAULTS
    assert simmod.parse_faults("all,reconfig") == ALL_RECONFIG
    assert simmod.parse_faults("reconfig,drop") == ["reconfig", "drop"]
    _, res = run_inproc(seed=4, steps=300, faults=list(simmod.FAULTS))
    assert "reconfigs" not in res


def _sim(**kw):
    opts = simmod.parse_args([])
    opts.update(kw)
    return simmod.Sim(opts)


def test_checker_flags_a_node_with_the_wrong_membership():
    s = _sim(seed=5, faults=["reconfig"], shrink=False)
    for _ in range(3000):
        s.step()
        assert not s.checker.violations, s.checker.violations
        if s.checker.conf_changes >= 2:
            break
    assert s.checker.conf_changes >= 2
    # A node that believes in a configuration the log never had.
    n = s.nodes[s.ids[0]]
    v, ln = n.engine.rawnode.conf_state()
    n.engine.core._switch_config((tuple(s.ids), (), (), False))
    assert (v, ln) != n.engine.rawnode.conf_state()
    s.step()
    assert any("membership" in x for x in s.checker.violations), s.checker.violations


def test_checker_flags_a_commit_only_the_old_voters_hold():
    # Durability is judged against the voters that committed an entry: an
    # entry held only by removed nodes is lost.
    s = _sim(seed=6, faults=["reconfig"], shrink=False)
    for _ in range(3000):
        s.step()
        assert not s.checker.violations, s.checker.violations
        if len(s.checker.conf_at(s.checker.commit_count())[0]) == 3:
            break
    voters = s.checker.conf_at(s.checker.commit_count())[0]
    assert len(voters) == 3
    ck = s.checker
    c = ck.commit_count()
    # Pretend the newest committed entry has a term none of the voters holds.
    slot = ck.committed[c % ck.W]
    ck.committed[c % ck.W] = (slot[0], slot[1] + 1000) + slot[2:]
    ck.check_step()
    assert any("durable on only" in x for x in ck.violations), ck.violations
