"""Focused scenarios for the engine's rules, on the simulator (the engine
the boards run, with a simulated network, clock and storage).

The seed sweeps find most broken rules by themselves (test_engine_teeth.py
says which); these scenarios pin down the ones a random schedule reaches
too rarely: each sets up, step by step, the one situation where the rule
decides the outcome.
"""
import sim as simmod
from raftio import wire
from raftkv import codec

_LIMIT = 2000  # steps any wait below may take


def _sim(nodes, seed=1, **kw):
    opts = simmod.parse_args([])
    opts.update(nodes=nodes, seed=seed, faults=[], shrink=False)
    opts.update(kw)
    s = simmod.Sim(opts)
    # No background proposals: each scenario proposes what it needs.
    s.clients = lambda: None
    return s


def _until(s, pred, what):
    for _ in range(_LIMIT):
        if pred():
            return
        s.step()
    assert False, "%s: not within %d steps" % (what, _LIMIT)


def _link(s, a, b, up):
    for pair in ((a, b), (b, a)):
        if up:
            s.net.blocked.discard(pair)
        else:
            s.net.blocked.add(pair)


def _isolate_all(s):
    for a in s.ids:
        for b in s.ids:
            if a != b:
                s.net.blocked.add((a, b))


def _restart(s, i):
    n = s.nodes[i]
    n.up = False
    s.net.drop_for(i)
    n.power_cycle()
    n.boot()
    s.checker.rebooted(n)


def _role(s, i):
    return s.nodes[i].engine.core.role


def _term(s, i):
    return s.nodes[i].engine.core.term


LEADER = 2


def test_a_restarted_voter_remembers_its_vote():
    """Paper Figure 2 (votedFor is persistent), 5.2: C votes for A in term
    t, restarts, and is then asked by B in the same term t: it must refuse,
    or A and B both lead term t."""
    s = _sim(3)
    _until(s, lambda: s.leader() is not None, "first leader")
    for _ in range(30):
        s.step()
    _isolate_all(s)
    for _ in range(60):   # everyone times out; pre-votes go nowhere
        s.step()
    t = _term(s, 1)
    assert _term(s, 2) == t and _term(s, 3) == t
    # A and C may talk: one of them wins term t + 1 with the other's vote.
    _link(s, 1, 3, True)
    _until(s, lambda: _role(s, 1) == LEADER or _role(s, 3) == LEADER, "A or C leads")
    a, c, b = (1, 3, 2) if _role(s, 1) == LEADER else (3, 1, 2)
    assert _term(s, a) == t + 1 and _term(s, b) == t
    # Before A's first append reaches C: C's log stays no newer than B's.
    _link(s, a, c, False)
    _restart(s, c)
    assert _term(s, c) == t + 1
    _link(s, b, c, True)
    s.nodes[b].engine.campaign()
    for _ in range(200):
        s.step()
        assert not s.checker.violations, s.checker.violations
    # B may lead only in a later term, with C's vote.
    assert not (_role(s, b) == LEADER and _term(s, b) == t + 1)


def test_a_lost_proposal_is_not_reported_done():
    """A leader cut off with proposals pending, deposed, then handed the new
    leader's entries at those indexes must answer RETRY: the entry at the
    index is not the one it proposed (its term differs), even if it is a
    command with a result of its own."""
    s = _sim(3)
    _until(s, lambda: s.leader() is not None, "first leader")
    for _ in range(30):
        s.step()
    old = s.leader()
    replies = []
    old.engine.reply = lambda token, code, lead, res: replies.append((token, code, res))
    for b in s.ids:
        if b != old.id:
            _link(s, old.id, b, False)
    # Two commands nobody else will see: the new leader's no-op takes the
    # first index, one of its own commands the second.
    reg = codec.encode_register()
    i1 = old.engine.propose(reg, "first")
    i2 = old.engine.propose(reg, "second")
    assert i2 == i1 + 1
    others = [i for i in s.ids if i != old.id]
    _until(s, lambda: any(_role(s, i) == LEADER for i in others), "a new leader")
    new = s.nodes[[i for i in others if _role(s, i) == LEADER][0]]
    assert new.engine.core.log.last == i1   # its no-op
    assert new.engine.propose(reg) == i2
    for b in others:
        _link(s, old.id, b, True)
    _until(s, lambda: old.engine.core.log.applied >= i2, "the old leader applies")
    assert ("first", wire.RETRY, b"") in replies, replies   # a no-op took it
    # A command with a result took the second index: still not ours.
    assert ("second", wire.RETRY, b"") in replies, replies
    assert [r for r in replies if r[1] == wire.OK] == [], replies


def test_a_membership_change_too_large_is_a_bad_request():
    """EntryTooLarge is a kind of ProposalDropped: it must be told apart
    (BAD_REQUEST: do not retry), not answered BUSY (retry later)."""
    from raft import confchange as CC
    s = _sim(3)
    _until(s, lambda: s.leader() is not None, "first leader")
    for _ in range(30):   # its no-op applied: no change is pending
        s.step()
    ld = s.leader()
    replies = []
    ld.engine.reply = lambda token, code, lead, res: replies.append((token, code))
    # 64 bytes of ctx (the most confchange takes) + 4 of header > max_entry_bytes 64.
    assert ld.engine.propose_conf_change(CC.ADD_LEARNER, 9, b"x" * 64, "big") == 0
    assert replies == [("big", wire.BAD_REQUEST)], replies
