"""The storage interface the core reads, and an in-memory implementation.

Entries are tuples ``(index, term, kind, data)``: ``kind`` is ENTRY_NORMAL or
ENTRY_CONF, ``data`` is bytes (empty for the leader's no-op; for ENTRY_CONF,
``raft.confchange.encode(op, node_id, ctx)``). Hard state is a
tuple ``(term, vote, commit)``.

The core only *reads* storage (initial_state, first_index, last_index, term,
entries, snapshot). The driver *writes* it while processing a Ready, in this
order: apply_snapshot(ready.snapshot), append(ready.entries),
set_hard_state(ready.hard_state). Flash-backed storage (raftio/storage.py)
and the in-memory one for the simulator and tests (raft/memstorage.py)
implement the same methods.
"""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

ENTRY_NORMAL = const(0)
ENTRY_CONF = const(1)


class Snapshot:
    """A point-in-time state machine image and the log position it replaces.

    Invariant: every entry with index <= ``index`` is reflected in ``data``;
    ``term`` is the term of the entry at ``index``; voters and learners are
    the membership once ``index`` is applied (RawNode.conf() after
    advance()); voters_out and auto_leave are its joint half
    (raft/confchange.py), empty and False unless joint. incs: () when no
    member is bound to an incarnation, else one u32 per id of voters +
    learners + voters_out: its incarnation (0 unbound), bit 31 set for a
    rejoining learner the leader promotes once caught up (Raft.snap_incs).
    """

    def __init__(self, index=0, term=0, voters=(), learners=(), data=b"", voters_out=(),
                 auto_leave=False, incs=()):
        self.index = index
        self.term = term
        self.voters = tuple(voters)
        self.learners = tuple(learners)
        self.data = data
        self.voters_out = tuple(voters_out)
        self.auto_leave = auto_leave
        self.incs = tuple(incs)

    def __repr__(self):  # mpraft: host-only
        return "Snapshot(index=%d, term=%d, voters=%r, learners=%r, %d bytes%s)" % (
            self.index, self.term, self.voters, self.learners, len(self.data),
            ", voters_out=%r, auto_leave=%r" % (self.voters_out, self.auto_leave)
            if self.voters_out else "")
