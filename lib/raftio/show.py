# mpraft: lazy repl
"""The REPL's tables: what firmware/mpraft.py's status(), peers(), log(n)
and events(n) print. Functions of the node they are given, imported on first
use at the REPL: a node nobody inspects never loads them (docs/memory.md).
out: where a line goes (print; a test passes its own).
"""
from raft import events as EV
from raft.confchange import decode
from raft.roles import LEADER, ROLE_NAMES
from raftio import clock
from raftkv.codec import decode_command

# Membership ops by raft.confchange op, JOINT (4) naming leaving a joint conf.
_OPS = ("", "add-voter", "add-learner", "remove", "leave-joint")


def status(node, out=print):
    """The node's state as a table (counters: the ones that moved), then peers()."""
    st = node.status()
    for k in sorted(st):
        v = st[k]
        if type(v) is dict:
            v = " ".join("%s %s" % i for i in v.items() if i[1]) or "-"
        out("%-12s %s" % (k, v))
    peers(node, out)


def peers(node, out=print):
    """On the leader, per peer: match, next, probe/replicate/snapshot,
    entries in flight. Elsewhere who leads: only the leader tracks them."""
    r = node.engine.core
    if r.role != LEADER:
        # A learner is a follower here (node.status() tells them apart).
        out(ROLE_NAMES[r.role] + (" of %d; replication state is the leader's" % r.lead
                                    if r.lead else ": no leader known"))
        return
    out("peer  match   next  state      inflight")
    for i in sorted(r.prs):
        p = r.prs[i]
        out("%-4d" % i, "self" if i == r.id else "%6d %6d  %-10s %d" % (
            p.match, p.next, ("probe", "replicate", "snapshot")[p.state], p.inflights.count))


def log(node, k, out=print):
    """The last k entries still in the log: index, term, then the command
    decoded (op, client id, seq, key, value[, old]), a membership change
    (conf add-voter 6; a joint one lists its steps) or noop."""
    g = node.engine.core.log
    for e in g.slice(max(g.snap_index + 1, g.last - k + 1), g.last + 1, 0):
        d = e[3]
        try:
            if e[2]:  # ENTRY_CONF: op, node id; or JOINT, (transition, steps)
                o, c, _ = decode(d)
                c = ["conf"] + (["%s %d" % (_OPS[s[0]], s[1]) for s in (((o, c),) if o < 4 else
                                                                           c[1])] or ["leave-joint"])
            elif d:
                c = decode_command(d)
                c = (("register", "put", "get", "delete", "cas")[c[0] - 1],) + c[1:5] + c[5:] * (
                    c[0] == 5)
            else:
                c = ("noop",)
        except Exception:
            c = ("?", d)
        out(e[0], e[1], *c)


def events(node, k, out=print):
    """The last k events, oldest first: seconds before now, level, kind,
    term, then its values (a role or membership op by name)."""
    now = clock.ticks_ms()
    for t, ev in node.events[-k:]:
        k, term, x, y = ev
        out("%8.1fs %-9s %-15s term %d %s %d" % (
            clock.ticks_diff(t, now) / 1000, EV.LEVEL_NAMES[EV.LEVELS[k]], EV.NAMES[k], term,
            ROLE_NAMES[x] if k == EV.ROLE else _OPS[x] if k == EV.CONF else x, y))
