# mpraft: host-only
"""Cluster limits: the state-machine limits one cluster agrees on, and the
memory model that says whether a board can hold them.

The limits shape the replicated state (FULL at max_keys, session eviction
at max_sessions, TOO_LARGE past max_key/max_value), so every node applies
with the same ones: they are written once into the cluster file (tools/ops/
cluster.py), copied into every node file, carried in every snapshot
(raftapp/session.py) and adopted from it. What stays per board (ring size,
timeouts, flash slots, heap budget) is in boards/*/board.json.

Memory model (worst case: every key and value at its maximum size)::

    state  = max_keys x (max_key + max_value + 24 words)       keys: two bytes
           + max_sessions x (max_value + 3 + 22 words)          objects, a dict slot
    image  = 4 + max_keys x (3 + max_key + max_value)           the snapshot the node
           + 33 + max_sessions x (14 + 3 + max_value)           makes of it, beside it
    need   = state + image

A word is 4 bytes on a board, 8 on the 64-bit unix port. The overheads were
measured on the unix port (host_tests/portable/kv/test_limits.py checks the
model bounds what a full store takes there) and halved for 32 bits. A
board's share for the replicated state is a quarter of heap_budget_bytes:
the ring takes up to half (raftio/board.py), code and buffers the rest.
A board also needs the largest command (a CAS of a max_key key and two
max_value values) to fit its max_entry_bytes, or it could not log it.

Not counted: restoring a snapshot over a non-empty state builds the new
store beside the old one for a moment.
"""
from raft.errors import ConfigError

FIELDS = ("max_key", "max_value", "max_keys", "max_sessions")
# (field, low, high): what raftkv.kv.KVStateMachine accepts.
_RANGES = (("max_key", 1, 255), ("max_value", 0, 65000), ("max_keys", 1, 1 << 24),
           ("max_sessions", 1, 65535))
KEY_WORDS = 24
SESSION_WORDS = 22
CAS_OVERHEAD = 15  # raftio/board.py


def validate(d, where="limits"):
    """A validated copy of a limits object; ConfigError naming the field."""
    if type(d) is not dict:
        raise ConfigError("%s: must be an object {%s}" % (where, ", ".join(FIELDS)))
    for k in sorted(d):
        if k not in FIELDS:
            raise ConfigError("%s: unknown field %r; known fields: %s"
                              % (where, k, ", ".join(FIELDS)))
    out = {}
    for k, lo, hi in _RANGES:
        v = d.get(k)
        if type(v) is not int or not lo <= v <= hi:
            raise ConfigError("%s: %s (%r) must be an integer in %d..%d" % (where, k, v, lo, hi))
        out[k] = v
    return out


def of_board(board):
    """The limits a node used before clusters had their own: the board's
    sizes and heap_budget_bytes // 32 keys (raftio/node.py)."""
    return {"max_key": board["max_key"], "max_value": board["max_value"],
            "max_keys": board["heap_budget_bytes"] // 32, "max_sessions": board["max_sessions"]}


def word(board):
    """Bytes per word: 8 for the host port (arch null, x64), else 4."""
    return 8 if board["arch"] in (None, "host", "x64", "rv64imc") else 4


def need_bytes(lim, w=4):
    """Heap the replicated state takes at these limits (the model above)."""
    return _need(lim["max_key"] + lim["max_value"], 3 + lim["max_value"], lim["max_keys"],
                 lim["max_sessions"], w)


def state_bytes(lim, w=4):
    """The model's state term alone: the live store and sessions."""
    return _need(lim["max_key"] + lim["max_value"], 3 + lim["max_value"], lim["max_keys"],
                 lim["max_sessions"], w, 0)


def _need(kv, res, keys, sessions, w, image=1):
    state = keys * (kv + KEY_WORDS * w) + sessions * (res + SESSION_WORDS * w)
    return state + image * (37 + keys * (3 + kv) + sessions * (14 + res))


def budget_bytes(board):
    """A board's share of its heap for the replicated state."""
    return board["heap_budget_bytes"] // 4


def entry_bytes(lim):
    """The largest command at these limits: a CAS of a full key, two full values."""
    return CAS_OVERHEAD + lim["max_key"] + 2 * lim["max_value"]


def refusal(lim, board):
    """None if the board can hold the cluster's limits, else one line why."""
    e = entry_bytes(lim)
    if e > board["max_entry_bytes"]:
        return ("refused: cluster limits need entries of %d B (a CAS of a %d B key and two %d B"
                " values), board %s takes %d B (max_entry_bytes)"
                % (e, lim["max_key"], lim["max_value"], board["name"], board["max_entry_bytes"]))
    need = need_bytes(lim, word(board))
    have = budget_bytes(board)
    if need > have:
        return ("refused: cluster limits need ~%d KB for %d keys x %d B and %d sessions, board %s"
                " budget is %d KB (a quarter of its %d KB heap)"
                % ((need + 1023) // 1024, lim["max_keys"], lim["max_key"] + lim["max_value"],
                   lim["max_sessions"], board["name"], have // 1024,
                   board["heap_budget_bytes"] // 1024))
    return None


def fit(board, lim=None):
    """The largest limits with lim's sizes (default the board's) this board
    holds: sessions up to half its budget, keys in the rest. A forced board
    gets these as its "capacity" (raftio/node.py)."""
    lim = dict(lim or of_board(board))
    w = word(board)
    have = budget_bytes(board)
    kv = lim["max_key"] + lim["max_value"]
    res = 3 + lim["max_value"]
    s = lim["max_sessions"]
    while s > 1 and _need(kv, res, 0, s, w) > have // 2:
        s = s * 3 // 4
    per = _need(kv, res, 1, 0, w) - _need(kv, res, 0, 0, w)
    lim["max_sessions"] = s
    lim["max_keys"] = max(1, min(lim["max_keys"], (have - _need(kv, res, 0, s, w)) // per))
    return lim
