"""What happened inside a node, as data (MetalRaft-style levels).

The core appends an event to Raft.events when something worth telling
happens (a role change, a new leader, a vote, a commit, ...); RawNode hands
them over in Ready.events and the engine adds its own (applied, snapshot
taken, proposal failed) before passing each to its observer. Every event is
one tuple (kind, term, a, b): no allocation beyond it, and none at all when
the kind's level is above the node's event_level (0 = off), which is checked
before the tuple is built.

  kind             level      a                b
  ROLE             essential  new role         leader id (0: unknown)
  LEADER           essential  leader id        -
  CONF             essential  confchange op    node id (a joint change: one
                                                   per step; leaving it: op JOINT)
  ELECTION         info       1 pre-vote       -
  LEASE            info       1 granted, 0 revoked
  SNAP_SENT        info       peer             snapshot index
  SNAP_INSTALLED   info       snapshot index   -
  SNAP_TAKEN       info       snapshot index   -
  DROPPED          info       DROP_* reason    -
  PROPOSAL_FAILED  info       wire reply code  index (0: never logged)
  VOTE             debug      candidate        1 pre-vote
  COMMIT           debug      commit index     -
  APPLIED          trace      index            -

LEADER is emitted whenever the node learns of a leader other than the one
it last reported, or the same one in a new term: a fleet's leader changes
are counted from it (mpraft_leader_changes_seen_total).
"""
from raft.roles import ROLE_NAMES  # noqa: F401  (re-exported: indexed by role)

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

OFF = const(0)
ESSENTIAL = const(1)
INFO = const(2)
DEBUG = const(3)
TRACE = const(4)

ROLE = const(0)
LEADER = const(1)
CONF = const(2)
ELECTION = const(3)
LEASE = const(4)
SNAP_SENT = const(5)
SNAP_INSTALLED = const(6)
SNAP_TAKEN = const(7)
DROPPED = const(8)
PROPOSAL_FAILED = const(9)
VOTE = const(10)
COMMIT = const(11)
APPLIED = const(12)

# LEVELS[kind]: the level at which a kind is reported.
LEVELS = b"\x01\x01\x01\x02\x02\x02\x02\x02\x02\x02\x03\x03\x04"

# DROPPED reasons (why the core refused a proposal).
DROP_NOT_LEADER = const(1)
DROP_TRANSFER = const(2)
DROP_TOO_LARGE = const(3)
DROP_LOG_FULL = const(4)
DROP_CONF_PENDING = const(5)

NAMES = ("role", "leader", "conf", "election", "lease", "snap_sent", "snap_installed",
         "snap_taken", "dropped", "proposal_failed", "vote", "commit", "applied")
LEVEL_NAMES = ("off", "essential", "info", "debug", "trace")
CONF_OPS = ("", "add-voter", "add-learner", "remove", "leave-joint")  # by raft.confchange op
DROP_REASONS = ("", "not-leader", "transfer", "too-large", "log-full", "conf-pending")
REPLY_CODES = ("ok", "not-leader", "retry", "busy", "bad-request", "timeout")  # raftio.wire
# The names of a and b per kind ("" = unused).
_FIELDS = (("role", "lead"), ("lead", ""), ("op", "node"), ("pre", ""), ("granted", ""),
           ("peer", "index"), ("index", ""), ("index", ""), ("reason", ""), ("code", "index"),
           ("candidate", "pre"), ("commit", ""), ("index", ""))


def _value(kind, field, v):
    # Numbers become names where the number is a code, so a log reads alone.
    if field == "role":
        return ROLE_NAMES[v] if 0 <= v < len(ROLE_NAMES) else v
    if field == "op" and kind == CONF:
        return CONF_OPS[v] if 0 < v < len(CONF_OPS) else v
    if field == "reason":
        return DROP_REASONS[v] if 0 < v < len(DROP_REASONS) else v
    if field == "code":
        return REPLY_CODES[v] if 0 <= v < len(REPLY_CODES) else v
    return v


def to_dict(ev):
    """{"event": name, "level": name, "term": t, <field>: value, ...}"""
    kind, term, a, b = ev
    f = _FIELDS[kind]
    d = {"event": NAMES[kind], "level": LEVEL_NAMES[LEVELS[kind]], "term": term}
    d[f[0]] = _value(kind, f[0], a)
    if f[1]:
        d[f[1]] = _value(kind, f[1], b)
    return d


def describe(ev):
    """One line for a person: 'leader term 5 lead=3'."""
    d = to_dict(ev)
    parts = [d.pop("event"), "term", str(d.pop("term"))]
    d.pop("level")
    for k in sorted(d):
        parts.append("%s=%s" % (k, d[k]))
    return " ".join(parts)


def level_of(name):
    """A level by name or number; raises ValueError with the choices."""
    if isinstance(name, int) and OFF <= name <= TRACE:
        return name
    if name in LEVEL_NAMES:
        return LEVEL_NAMES.index(name)
    raise ValueError("event level must be one of %s or 0-4" % ", ".join(LEVEL_NAMES))
