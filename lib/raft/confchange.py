# mpraft: lazy conf
"""Membership changes: single-server (thesis 4.1, etcd ConfChange v1) and
joint consensus (thesis 4.3, etcd ConfChangeV2).

An ENTRY_CONF entry's data is either a single-server change,
``encode(op, node_id, ctx)``:

    op u8 | node_id u16 | ctx_len u8 | ctx

or several steps at once, ``encode_v2(transition, steps, ctx)``:

    JOINT u8 | transition u8 | n u8 | n x (op u8, node_id u16) | ctx_len u8 | ctx

ctx is opaque to the core (the runtime carries new nodes' addresses in it).
A V2 change with no steps leaves the joint configuration. ``REJOIN`` (a
single-server change, ctx = the new incarnation as u32 little-endian) binds
a member's id to a new incarnation of it (a wiped node, docs/incarnation.md):
a voter becomes a learner, a learner stays one. Like etcd's
confchange package, ``apply``/``apply_conf`` return a new configuration
instead of mutating one, so the leader can validate a change before
proposing it and every node computes the same result when applying.

A configuration ("conf") is the tuple (voters, voters_out, learners,
auto_leave): voters_out is empty unless joint. etcd's LearnersNext (voters
of the outgoing half demoted by the change, learners once it is left) are
folded into learners: in a joint conf, learners & voters_out is exactly
LearnersNext, so leaving only drops voters_out. Invariant: voters and
learners are disjoint sorted tuples and voters is never empty.
"""
import struct

from raft.errors import ConfigError, DecodeError

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# Add a voter, or promote a learner to voter.
ADD_VOTER = const(1)
# Add a learner: it receives the log but neither votes nor counts in any
# quorum. On a voter this demotes it (etcd allows the same).
ADD_LEARNER = const(2)
# Remove a voter or a learner.
REMOVE = const(3)

# The member is a new incarnation (ctx: its inc, u32): a voter becomes a
# learner (one voter removed: a safe single-server change), promoted by the
# leader once caught up; a learner keeps its role.
REJOIN = const(5)

MAX_CTX = const(64)
# The first byte of a V2 change (after the V1 ops).
JOINT = const(4)
# V2 transitions (etcd ConfChangeTransition): AUTO is a simple change for
# one step and a joint one left automatically for several; IMPLICIT and
# EXPLICIT always enter a joint conf, left automatically by the leader once
# the entry is applied (IMPLICIT) or by an explicit empty change (EXPLICIT).
AUTO = const(0)
IMPLICIT = const(1)
EXPLICIT = const(2)
MAX_STEPS = const(8)


def encode(op, node_id, ctx=b""):
    if not 0 < op < 6 or op == JOINT:
        raise ConfigError("conf change: op must be ADD_VOTER, ADD_LEARNER, REMOVE or REJOIN")
    if not isinstance(node_id, int) or not 0 < node_id < 0x10000:
        raise ConfigError("conf change: node id must be in 1..65535")
    n = len(ctx)
    if n > MAX_CTX or (op == REJOIN and n != 4):
        raise ConfigError("conf change: bad ctx")
    return struct.pack("<BHB", op, node_id, n) + bytes(ctx)


def encode_v2(transition, steps, ctx=b""):
    """steps: ((op, node_id), ...); none leaves the joint configuration."""
    if not 0 <= transition <= EXPLICIT:
        raise ConfigError("conf change: transition must be AUTO, IMPLICIT or EXPLICIT")
    n = len(steps)
    if n > MAX_STEPS:
        raise ConfigError("conf change: more than 8 steps")
    b = bytearray(struct.pack("<BBB", JOINT, transition, n))
    for op, nid in steps:
        if op == REJOIN:
            raise ConfigError("conf change: bad op")
        b += encode(op, nid)[:3]
    if len(ctx) > MAX_CTX:
        raise ConfigError("conf change: ctx over 64 bytes")
    return bytes(b) + struct.pack("<B", len(ctx)) + bytes(ctx)


def decode(data):
    """-> (op, node_id, ctx) for a single-server change, (JOINT,
    (transition, steps), ctx) for a V2 one; DecodeError on anything the
    encoders cannot produce."""
    if len(data) >= 3 and data[0] == JOINT:
        return _decode_v2(data)
    op = nid = 0
    if len(data) >= 4:
        op, nid, n = struct.unpack_from("<BHB", data, 0)
    if (not 0 < op < 6 or nid == 0 or n > MAX_CTX or len(data) != 4 + n
            or (op == REJOIN and n != 4)):
        raise DecodeError("bad conf change")
    return op, nid, bytes(data[4:])


def _decode_v2(data):
    tr = data[1]
    n = data[2]
    p = 3 + 3 * n
    if tr > EXPLICIT or n > MAX_STEPS or len(data) < p + 1 or len(data) != p + 1 + data[p]:
        raise DecodeError("bad conf change")
    steps = ()
    for k in range(3, p, 3):
        op, nid = struct.unpack_from("<BH", data, k)
        if not 0 < op < 4 or nid == 0:
            raise DecodeError("bad conf change")
        steps += ((op, nid),)
    if data[p] > MAX_CTX:
        raise DecodeError("bad conf change")
    return JOINT, (tr, steps), bytes(data[p + 1:])


def apply(voters, learners, op, node_id):
    """-> (voters, learners) after the change, sorted tuples; voters and
    learners must be sorted tuples and op valid (decode checked it). Raises
    ConfigError for a change that does nothing or removes the last voter."""
    return _apply(voters, learners, ((op, node_id),))


def _apply(voters, learners, steps):
    v = list(voters)
    ln = list(learners)
    for op, nid in steps:
        if nid in v:
            v.remove(nid)
        if nid in ln:
            ln.remove(nid)
        if op == ADD_VOTER:
            v.append(nid)
        elif op == ADD_LEARNER:
            # In a joint conf, a voter of the outgoing half stays one until
            # the conf is left (etcd LearnersNext), then it is a plain learner.
            ln.append(nid)
    v.sort()
    ln.sort()
    v = tuple(v)
    ln = tuple(ln)
    if v == voters and ln == learners:
        raise ConfigError("conf change: no-op for node %d" % nid)
    if not v:
        raise ConfigError("conf change: node %d is the last voter" % nid)
    return v, ln


def apply_conf(conf, op, arg):
    """-> the conf after a decoded change (op, arg as decode() returns them;
    arg is the node id of a V1 change). etcd's rules: a simple change (V1,
    or V2 AUTO with one step) and entering a joint conf need a conf that is
    not joint; leaving needs one that is. Raises ConfigError otherwise, for
    a change that does nothing, or one that leaves no voter."""
    voters, out, learners, _ = conf
    if op == JOINT:
        tr, steps = arg
        if not steps:
            if not out:
                raise ConfigError("conf change: not joint, nothing to leave")
            return voters, (), learners, False
        if tr != AUTO or len(steps) > 1:
            if out:
                raise ConfigError("conf change: joint, leave it first")
            v, ln = _apply(voters, learners, steps)
            return v, voters, ln, tr != EXPLICIT
    else:
        if op == REJOIN:
            if arg in learners:
                return conf
            if arg not in voters:
                raise ConfigError("conf change: node %d is not a member" % arg)
            op = ADD_LEARNER
        steps = ((op, arg),)
    if out:
        raise ConfigError("conf change: joint, leave it first")
    v, ln = _apply(voters, learners, steps)
    return v, (), ln, False
