"""The joint consensus rules have teeth: each is broken on purpose, as a
one-line mutation of the shipped core (lib/raft/core.py), and a test must
fail. The pattern is test_engine_teeth.py's (a mutation that no longer
matches the source fails loudly).
"""
from simrun import run_inproc
from test_engine_teeth import mutate

import test_paper_joint as P

RECONFIG = ["drop", "dup", "reorder", "partition", "crash", "leader", "powercut", "reconfig"]
COMMIT = "mci = joint_committed_index(self.voters, self.voters_out, acked, self._scratch)"
VOTE = "res = joint_vote_result(r.voters, r.voters_out, r.votes)"


def _core(monkeypatch, old, new):
    from raft.core import Raft
    mutate(monkeypatch, "lib/raft/core.py", Raft, old, new)


def _fails(fn):
    try:
        fn()
    except AssertionError:
        return True
    return False


def test_unmutated_core_passes_the_same_checks():
    # The control: what fails below fails only because of the mutation.
    P.test_joint_commit_needs_both_majorities()
    P.test_joint_election_needs_both_majorities()
    for seed in (1, 2):
        _, res = run_inproc(seed=seed, steps=5000, faults=RECONFIG, shrink=False)
        assert res["violations"] == [] and res["joint_entered"] >= 1, res


def test_commit_counting_only_the_incoming_half(monkeypatch):
    """Thesis 4.3: a joint conf commits on majorities of both halves. A
    leader that counts only C_new commits what C_old may lose: the paper
    test fails, and the simulator's checker (a quorum of both halves holds
    every committed entry) flags it within a few seeds."""
    _core(monkeypatch, COMMIT, COMMIT.replace("self.voters_out", "()"))
    assert _fails(P.test_joint_commit_needs_both_majorities)
    for seed in range(1, 11):
        _, res = run_inproc(seed=seed, steps=5000, faults=RECONFIG, shrink=False)
        if any("no quorum of" in v for v in res["violations"]):
            break
    else:
        raise AssertionError("10 seeds did not catch a commit by the incoming half only")


def test_votes_counting_only_the_incoming_half(monkeypatch):
    """Thesis 4.3: elections need majorities of both halves too."""
    _core(monkeypatch, VOTE, VOTE.replace("r.voters_out", "()"))
    assert _fails(P.test_joint_election_needs_both_majorities)
