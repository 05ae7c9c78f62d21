"""The simulator's wipe fault (docs/incarnation.md): a node loses its whole
flash, identity included, and boots with its id as a new incarnation.

A small sweep runs in make test (the acceptance one, 100 seeds with every
fault, is `make sim-sweep-wipe`); the teeth tests break the rules one line
at a time (test_engine_teeth.mutate) and show what catches each.
"""
from simrun import MICROPYTHON, run_cli, run_inproc
from test_engine_teeth import mutate

import test_paper_incarnation as P

WIPE = ["drop", "dup", "reorder", "partition", "crash", "leader", "powercut", "wipe"]
VOTE = "if can_vote and not self.mismatch and self.log.is_up_to_date(m.index, m.log_term):"
CAMPAIGN = "return self.id in self._voter_ids and not self.mismatch"
FOREIGN = "            if ci and ci != m.commit:"


def _core(monkeypatch, old, new):
    from raft.core import Raft
    mutate(monkeypatch, "lib/raft/core.py", Raft, old, new)


def _fails(fn):
    try:
        fn()
    except AssertionError:
        return True
    return False


def test_a_small_wipe_sweep_is_clean_and_wiped_nodes_come_back():
    wipes = promoted = 0
    for seed in range(1, 11):
        _, res = run_inproc(seed=seed, steps=3000, faults=WIPE, shrink=False)
        assert res["violations"] == [], (seed, res["violations"])
        wipes += res["wipes"]
        promoted += res["promoted"]
        # Every REJOIN committed was followed by the promotion, but for a
        # wipe still under way when the run ended.
        assert res["rejoins"] - res["promoted"] <= 1, res
        assert len(res["rejoining"]) <= 1, res
    assert wipes >= 20 and promoted >= wipes - 10, (wipes, promoted)


def test_wipe_with_membership_changes_and_clients_is_clean():
    for seed in (1, 2):
        _, res = run_inproc(seed=seed, steps=4000, faults=WIPE + ["reconfig"], clients=3,
                            check_linear=True, shrink=False)
        assert res["violations"] == [] and res["linearizable"] is True, res
        assert res["wipes"] >= 1, res


def test_wipe_digest_identical_on_cpython_and_micropython():
    # New incarnations come from the seed: the same run on both interpreters.
    args = ["--nodes", "5", "--seed", "4", "--steps", "3000", "--faults", "all,wipe"]
    rc1, a, _ = run_cli(args)
    rc2, b, _ = run_cli(args, interp=MICROPYTHON)
    assert rc1 == 0 and rc2 == 0 and a["wipes"] >= 1, a
    assert (a["digest"], a["wipes"], a["promoted"]) == (b["digest"], b["wipes"], b["promoted"])


def test_runs_without_wipe_draw_what_they_drew_before():
    # The wipe fault has its own generator: without it nobody is bound to
    # an incarnation and no message carries one that counts.
    sim, res = run_inproc(seed=3, steps=2000, shrink=False)
    assert "wipes" not in res and sim.incs == {}
    for i in sim.ids:
        assert sim.nodes[i].engine.core.incs == {}


def test_a_wiped_voter_that_votes_again_is_caught(monkeypatch):
    """Break "a node the configuration does not bind never grants a vote":
    the paper test fails, and the checker finds a wiped voter voting a
    second time in a term within 10 seeds (3 nodes; the fault wipes a voter
    in mid-election now and then, the case the rule exists for)."""
    _core(monkeypatch, VOTE, VOTE.replace("not self.mismatch and ", ""))
    assert _fails(P.test_a_wiped_voter_grants_no_vote_in_a_term_it_voted_in_before)
    for seed in range(1, 11):
        _, res = run_inproc(seed=seed, steps=5000, nodes=3, faults=WIPE, shrink=False)
        if any("double vote" in v or "election safety" in v for v in res["violations"]):
            return
    raise AssertionError("10 seeds did not catch a wiped voter voting again")


def test_a_wiped_voter_that_campaigns_is_caught(monkeypatch):
    """Break "... never campaigns": the paper test fails."""
    _core(monkeypatch, CAMPAIGN, CAMPAIGN.replace(" and not self.mismatch", ""))
    assert _fails(P.test_a_wiped_voter_never_campaigns)


def test_acks_of_an_old_incarnation_must_not_count(monkeypatch):
    """Break "a response from an incarnation the configuration does not
    bind counts for nothing" for acks: a late ack of the old incarnation
    raises the leader's match for the rejoined voter, and an entry only
    the leader stores is committed (paper test). The sweeps do not reach
    it: a late datagram would have to outlive a REJOIN and a promotion."""
    _core(monkeypatch, FOREIGN, FOREIGN.replace(
        "ci != m.commit:", "ci != m.commit and t != M.APP_RESP:"))
    assert _fails(P.test_a_late_ack_of_the_old_incarnation_never_counts)
