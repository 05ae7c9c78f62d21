"""Every rule of the execution layer has a test that fails without it.

Each case below is a plausible bug, written as a one-line mutation of the
shipped source (raftio/engine.py, raftio/storage.py), applied in-process,
and the test or simulator runs that must catch it. The simulator runs the
engine the boards run (tools/simulator/simnode.py), so the seed sweeps catch most of
these by themselves; the ones they do not are caught by a focused test.
A mutation that no longer matches the source fails loudly, so a refactor
cannot silently turn a case into one that tests nothing.
"""
import os

import pytest

from simrun import ROOT, run_inproc

ALL = ["drop", "dup", "reorder", "partition", "crash", "leader", "powercut"]


def _mutant_class(path, cls_name, old, new):
    """cls_name from path with `old` (exactly once in the file) replaced by `new`."""
    src = open(os.path.join(ROOT, path)).read()
    assert src.count(old) == 1, "mutation no longer matches %s: %r" % (path, old)
    ns = {"__name__": "mutant_" + cls_name}
    exec(compile(src.replace(old, new), path + " (mutant)", "exec"), ns)
    return ns[cls_name]


def mutate(monkeypatch, path, cls, old, new):
    """Replace every method of cls by the mutant's (modules that imported
    the class by name see the change too)."""
    m = _mutant_class(path, cls.__name__, old, new)
    for name, val in list(m.__dict__.items()):
        if callable(val) or isinstance(val, property):
            monkeypatch.setattr(cls, name, val)


def _engine(monkeypatch, old, new):
    from raftio.engine import Engine
    mutate(monkeypatch, "lib/raftio/engine.py", Engine, old, new)


def _bad(res):
    """What the simulator reports as broken: a safety violation, a history
    lincheck cannot order, or a write acknowledged and never executed."""
    return bool(res["violations"]) or res.get("linearizable") is False \
        or res.get("exactly_once") is False


def _first_failing(seeds, **kw):
    for seed in seeds:
        sim, res = run_inproc(seed=seed, **kw)
        if _bad(res):
            return seed, res
    return None, None


def _healthy(seeds, **kw):
    for seed in seeds:
        sim, res = run_inproc(seed=seed, **kw)
        assert not _bad(res), res


KV = dict(steps=3000, nodes=5, faults=ALL, clients=5, check_linear=True, reads="index")


def test_unmutated_engine_passes_the_same_runs():
    # The control: the runs below fail only because of the mutation.
    _healthy(range(1, 4), **KV)
    _healthy(range(1, 4), **dict(KV, reads="lease"))
    _healthy(range(1, 3), steps=5000, faults=ALL)


def test_read_served_before_the_read_index_is_applied(monkeypatch):
    """Thesis 6.4 step 4: wait until applied >= read index. Caught by the
    lease-read sweep: a new leader applies its backlog a few entries per
    Ready (--apply-bytes) while its lease already answers reads."""
    _engine(monkeypatch, "if index > applied:", "if False:")
    seed, res = _first_failing(range(1, 21), **dict(KV, reads="lease"))
    assert seed is not None, "20 seeds did not catch reads served before the read index"
    assert res.get("linearizable") is False, res


def test_client_answered_without_checking_the_entry_term(monkeypatch):
    """A deposed leader's lost proposal must not be reported done: the entry
    that answers a client must carry the term its proposal got. The sweeps
    rarely see it (the client has usually given up on that leader by the
    time it learns the new log); the scenario sets it up."""
    _engine(monkeypatch, "if p[0] == e[1] and res is not None:", "if res is not None:")
    import test_engine_rules
    with pytest.raises(AssertionError):
        test_engine_rules.test_a_lost_proposal_is_not_reported_done()


def test_vote_never_written_to_flash(monkeypatch):
    """Paper Figure 2: votedFor is persistent. A node that forgets its vote
    over a restart can vote twice in one term: two leaders. 30 seeds x
    5,000 steps of every fault did not reach it; the scenario does."""
    _engine(monkeypatch, "st.set_hard_state(hs)", "st.set_hard_state((hs[0], 0, hs[2]))")
    import test_engine_rules
    with pytest.raises(AssertionError) as e:
        test_engine_rules.test_a_restarted_voter_remembers_its_vote()
    assert "election safety" in str(e.value), e.value


def test_client_answered_before_its_entry_is_applied(monkeypatch):
    """An OK is the state machine's result for the applied entry, never an
    optimistic answer at proposal time."""
    _engine(monkeypatch, """        self.stats["proposed"] += 1
        if token is not None:
            self._pending[idx] = (r.term, token)""", """        self.stats["proposed"] += 1
        if token is not None:
            self.reply(token, OK, 0, b'\\x00')""")
    seed, res = _first_failing(range(1, 21), **KV)
    assert seed is not None, "20 seeds did not catch answers before apply"


def test_append_acknowledged_before_its_flush(monkeypatch):
    """Persist before you send what depends on it (append acks, votes): a
    power cut then loses entries a majority acknowledged."""
    _engine(monkeypatch, "            # 1. persist\n",
            "            for m in rd.persisted_messages:\n"
            "                self._send(m)\n"
            "            rd.persisted_messages = []\n")
    seed, res = _first_failing(range(1, 31), steps=5000, faults=ALL)
    assert seed is not None, "30 seeds did not catch acks sent before the flush"
    assert any("durable" in v or "completeness" in v or "safety" in v
               for v in res["violations"]), res


def test_membership_commit_not_durable_before_advance(monkeypatch):
    """The core counts on the commit of an applied membership change being
    durable (rawnode.py step 4): a node must not restart into an older
    configuration than one it applied."""
    _engine(monkeypatch, "(rd.sync_hard_state or hs[2]",
            "(hs[0] != self._hs[0] or hs[1] != self._hs[1] or hs[2]")
    import test_node_conf
    with pytest.raises(AssertionError):
        test_node_conf.test_applied_conf_change_commit_is_durable()


def test_stale_log_slot_left_valid_after_truncation(monkeypatch):
    """A follower that truncates a conflicting tail must make the old slots
    unreadable before writing new ones, or a reboot resurrects them."""
    from raftio.storage import FlashStorage
    mutate(monkeypatch, "lib/raftio/storage.py", FlashStorage,
           "                log.invalidate(i)\n                i -= 1\n            log.sync()\n"
           "            self._last = first - 1",
           "                i -= 1\n            log.sync()\n            self._last = first - 1")
    seed, res = _first_failing(range(1, 31), steps=5000, faults=ALL)
    assert seed is not None, "30 seeds did not catch stale slots after truncation"


def _paper_failures(module, backend="engine"):
    """Messages of the paper tests in module that fail on backend."""
    import importlib
    import raftnet
    mod = importlib.import_module(module)
    old = raftnet.BACKEND
    raftnet.BACKEND = backend
    out = []
    try:
        for name in sorted(dir(mod)):
            if name.startswith("test_") and callable(getattr(mod, name)):
                try:
                    getattr(mod, name)()
                except AssertionError as e:
                    out.append(str(e))
    finally:
        raftnet.BACKEND = old
    return out


def test_vote_granted_before_the_hard_state_is_written(monkeypatch):
    """The vote is durable before the grant leaves (persisted_messages):
    entries still go first here, only the hard state comes after the send.
    The cluster harness checks every grant against the sender's storage, so
    the election paper tests fail on the engine backend."""
    assert _paper_failures("test_paper_election") == []
    _engine(monkeypatch, "            hs = rd.hard_state\n",
            "            for m in rd.persisted_messages:\n"
            "                self._send(m)\n"
            "            rd.persisted_messages = []\n"
            "            hs = rd.hard_state\n")
    fails = _paper_failures("test_paper_election")
    assert any("granted its vote" in f for f in fails), fails
