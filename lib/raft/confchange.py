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
OP_NAMES = ("?", "add-voter", "add-learner", "remove")

MAX_CTX = const(64)
_HEAD = const(4)


def encode(op, node_id, ctx=b""):
    if op != ADD_VOTER and op != ADD_LEARNER and op != REMOVE:
        raise ConfigError("conf change: unknown op %r; use ADD_VOTER, ADD_LEARNER or REMOVE"
                          % (op,))
    if not isinstance(node_id, int) or node_id <= 0 or node_id > 0xFFFF:
        raise ConfigError("conf change: node id must be in 1..65535, got %r" % (node_id,))
    n = len(ctx)
    if n > MAX_CTX:
        raise ConfigError("conf change: ctx of %d bytes exceeds %d" % (n, MAX_CTX))
    buf = bytearray(_HEAD + n)
    struct.pack_into("<BHB", buf, 0, op, node_id, n)
    buf[_HEAD:] = ctx
    return bytes(buf)


def decode(data):
    """-> (op, node_id, ctx); DecodeError on anything encode() cannot produce."""
    if len(data) < _HEAD:
        raise DecodeError("conf change: %d bytes, need at least %d" % (len(data), _HEAD))
    op, nid, n = struct.unpack_from("<BHB", data, 0)
    if op != ADD_VOTER and op != ADD_LEARNER and op != REMOVE:
        raise DecodeError("conf change: unknown op %d" % op)
    if nid == 0:
        raise DecodeError("conf change: node id 0")
    if n > MAX_CTX or len(data) != _HEAD + n:
        raise DecodeError("conf change: ctx length %d does not match %d bytes"
                          % (n, len(data)))
    return op, nid, bytes(data[_HEAD:])


def apply(voters, learners, op, node_id):
    """-> (voters, learners) after the change, sorted tuples. Raises
    ConfigError for a change that does nothing or removes the last voter."""
    v = [x for x in voters if x != node_id]
    ln = [x for x in learners if x != node_id]
    if op == ADD_VOTER:
        if node_id in voters:
            raise ConfigError("conf change: node %d is already a voter" % node_id)
        v.append(node_id)
    elif op == ADD_LEARNER:
        if node_id in learners:
            raise ConfigError("conf change: node %d is already a learner" % node_id)
        ln.append(node_id)
    elif op == REMOVE:
        if node_id not in voters and node_id not in learners:
            raise ConfigError("conf change: node %d is not a member" % node_id)
    else:
        raise ConfigError("conf change: unknown op %r" % (op,))
    if not v:
        raise ConfigError("conf change: node %d is the last voter; add another voter first"
                          % node_id)
    v.sort()
    ln.sort()
    return tuple(v), tuple(ln)
