"""Single-server membership changes (thesis 4.1, etcd ConfChange v1).

An ENTRY_CONF entry's data is ``encode(op, node_id, ctx)``:

    op u8 | node_id u16 | ctx_len u8 | ctx

ctx is opaque to the core (the runtime carries the new node's address in
it). Like etcd's confchange package, ``apply`` returns a new (voters,
learners) pair instead of mutating one, so the leader can validate a change
before proposing it and every node computes the same result when applying.
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

MAX_CTX = const(64)


def encode(op, node_id, ctx=b""):
    if not 0 < op < 4:
        raise ConfigError("conf change: op must be ADD_VOTER, ADD_LEARNER or REMOVE")
    if not isinstance(node_id, int) or not 0 < node_id < 0x10000:
        raise ConfigError("conf change: node id must be in 1..65535")
    n = len(ctx)
    if n > MAX_CTX:
        raise ConfigError("conf change: ctx over 64 bytes")
    return struct.pack("<BHB", op, node_id, n) + bytes(ctx)


def decode(data):
    """-> (op, node_id, ctx); DecodeError on anything encode() cannot produce."""
    op = nid = 0
    if len(data) >= 4:
        op, nid, n = struct.unpack_from("<BHB", data, 0)
    if not 0 < op < 4 or nid == 0 or n > MAX_CTX or len(data) != 4 + n:
        raise DecodeError("bad conf change")
    return op, nid, bytes(data[4:])


def apply(voters, learners, op, node_id):
    """-> (voters, learners) after the change, sorted tuples; voters and
    learners must be sorted tuples and op valid (decode checked it). Raises
    ConfigError for a change that does nothing or removes the last voter."""
    v = [x for x in voters if x != node_id]
    ln = [x for x in learners if x != node_id]
    if op == ADD_VOTER:
        v.append(node_id)
    elif op == ADD_LEARNER:
        ln.append(node_id)
    v.sort()
    ln.sort()
    v = tuple(v)
    ln = tuple(ln)
    if v == voters and ln == learners:
        raise ConfigError("conf change: no-op for node %d" % node_id)
    if not v:
        raise ConfigError("conf change: node %d is the last voter" % node_id)
    return v, ln
