"""Quorum math over plain lists. Knows nothing about Raft (etcd raft/quorum).

A majority config is a tuple of voter ids. A joint config is two of them; the
joint result is the more conservative of the halves. An empty config commits
everything and wins every vote, so a joint config with an empty half behaves
like a plain majority.
"""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

VOTE_PENDING = const(0)
VOTE_LOST = const(1)
VOTE_WON = const(2)

# Larger than any index: what an empty config "commits".
_INF = const(0x7FFFFFFF)


def majority_size(n):
    return n // 2 + 1


def committed_index(voters, acked, scratch):
    """Highest index acknowledged by a majority of voters.

    acked maps id -> acknowledged index (missing ids count as 0). scratch is a
    preallocated list reused to avoid allocation; it is overwritten.
    """
    n = len(voters)
    if n == 0:
        return _INF
    del scratch[:]
    for v in voters:
        scratch.append(acked.get(v, 0))
    scratch.sort()
    # The (n - q)-th smallest is acknowledged by q voters or more.
    return scratch[n - majority_size(n)]


def joint_committed_index(voters, voters_out, acked, scratch):
    # Thesis 4.3: in a joint conf an entry commits on majorities of both.
    a = committed_index(voters, acked, scratch)
    b = committed_index(voters_out, acked, scratch)
    return a if a < b else b


def vote_result(voters, votes):
    """votes maps id -> True (granted) / False (rejected); missing = pending."""
    n = len(voters)
    if n == 0:
        return VOTE_WON
    granted = rejected = 0
    for v in voters:
        r = votes.get(v)
        if r is None:
            continue
        if r:
            granted += 1
        else:
            rejected += 1
    q = majority_size(n)
    if granted >= q:
        return VOTE_WON
    if n - rejected >= q:
        return VOTE_PENDING
    return VOTE_LOST


def joint_vote_result(voters, voters_out, votes):
    a = vote_result(voters, votes)
    b = vote_result(voters_out, votes)
    if a == b:
        return a
    if a == VOTE_LOST or b == VOTE_LOST:
        return VOTE_LOST
    return VOTE_PENDING
