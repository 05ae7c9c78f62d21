"""Differential test of raft/quorum.py against brute force (etcd quorum/quick_test.go).

The fast functions (sort and pick; count) are compared with definitions
written straight from the meaning, over thousands of seeded random majority
and joint configurations, acknowledgements and votes.
"""
from raft.quorum import (VOTE_LOST, VOTE_PENDING, VOTE_WON, committed_index,
                         joint_committed_index, joint_vote_result, majority_size,
                         vote_result)
from raftnet import Rand

_INF = 0x7FFFFFFF


def _slow_committed(voters, acked):
    """The largest index that a majority of voters has acknowledged."""
    if not voters:
        return _INF
    best = 0
    for cand in [0] + [acked.get(v, 0) for v in voters]:
        n = 0
        for v in voters:
            if acked.get(v, 0) >= cand:
                n += 1
        if 2 * n > len(voters) and cand > best:
            best = cand
    return best


def _slow_vote(voters, votes):
    """WON if granted is a majority whatever the rest say; LOST if no outcome
    of the pending votes can make one; PENDING otherwise."""
    if not voters:
        return VOTE_WON
    yes = [v for v in voters if votes.get(v) is True]
    maybe = [v for v in voters if votes.get(v) is None]
    if 2 * len(yes) > len(voters):
        return VOTE_WON
    if 2 * (len(yes) + len(maybe)) > len(voters):
        return VOTE_PENDING
    return VOTE_LOST


def _slow_joint_vote(a, b, votes):
    ra = _slow_vote(a, votes)
    rb = _slow_vote(b, votes)
    if ra == VOTE_LOST or rb == VOTE_LOST:
        return VOTE_LOST
    if ra == VOTE_WON and rb == VOTE_WON:
        return VOTE_WON
    return VOTE_PENDING


def _rand_config(rnd, pool):
    # Each id of the pool is in with probability 1/2 (often the empty config).
    out = []
    for v in range(1, pool + 1):
        if rnd.chance(500):
            out.append(v)
    return tuple(out)


def test_majority_size():
    assert [majority_size(n) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]


def test_committed_index_differential():
    rnd = Rand(101)
    scratch = []
    for k in range(4000):
        pool = 1 + rnd.below(10)
        voters = _rand_config(rnd, pool)
        acked = {}
        for v in range(1, pool + 1):
            if rnd.chance(800):
                # Small indexes make ties common, large ones check ordering.
                acked[v] = rnd.below(5) if rnd.chance(500) else rnd.below(1000)
        got = committed_index(voters, acked, scratch)
        assert got == _slow_committed(voters, acked), (k, voters, acked, got)


def test_joint_committed_index_differential():
    rnd = Rand(102)
    scratch = []
    for k in range(4000):
        pool = 1 + rnd.below(10)
        a = _rand_config(rnd, pool)
        b = _rand_config(rnd, pool)
        acked = {}
        for v in range(1, pool + 1):
            if rnd.chance(850):
                acked[v] = rnd.below(8)
        got = joint_committed_index(a, b, acked, scratch)
        want = min(_slow_committed(a, acked), _slow_committed(b, acked))
        assert got == want, (k, a, b, acked, got, want)
        # A joint config with an empty half is a plain majority.
        assert joint_committed_index(a, (), acked, scratch) == _slow_committed(a, acked)
        assert joint_committed_index((), a, acked, scratch) == _slow_committed(a, acked)


def _rand_votes(rnd, pool):
    votes = {}
    for v in range(1, pool + 1):
        x = rnd.below(3)
        if x == 1:
            votes[v] = True
        elif x == 2:
            votes[v] = False
    return votes


def test_vote_result_differential():
    rnd = Rand(103)
    for k in range(4000):
        pool = 1 + rnd.below(10)
        voters = _rand_config(rnd, pool)
        votes = _rand_votes(rnd, pool)
        got = vote_result(voters, votes)
        assert got == _slow_vote(voters, votes), (k, voters, votes, got)


def test_joint_vote_result_differential():
    rnd = Rand(104)
    for k in range(4000):
        pool = 1 + rnd.below(10)
        a = _rand_config(rnd, pool)
        b = _rand_config(rnd, pool)
        votes = _rand_votes(rnd, pool)
        got = joint_vote_result(a, b, votes)
        assert got == _slow_joint_vote(a, b, votes), (k, a, b, votes, got)
        assert joint_vote_result(a, (), votes) == _slow_vote(a, votes)


def test_scratch_is_reused():
    scratch = [99, 98, 97, 96, 95, 94, 93, 92]
    assert committed_index((1, 2, 3), {1: 5, 2: 7}, scratch) == 5
    assert committed_index((1, 2, 3), {3: 2}, scratch) == 0
    assert committed_index((), {1: 5}, scratch) == _INF


def test_votes_from_non_voters_ignored():
    assert vote_result((1, 2, 3), {4: True, 5: True, 1: True}) == VOTE_PENDING
    assert committed_index((1, 2, 3), {4: 9, 5: 9, 1: 9}, []) == 0
