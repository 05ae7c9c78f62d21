# mpraft: host-only
"""In-memory storage for the simulator and tests (same interface as flash)."""
from raft.errors import Compacted, Unavailable
from raft.storage import ENTRY_NORMAL, Snapshot


class MemoryStorage:
    """Log, hard state and snapshot held in RAM (simulator, tests).

    Invariant: self._ents[0] is a dummy (snap.index, snap.term) entry, so
    entry i sits at self._ents[i - snap.index].
    """

    def __init__(self, voters=(), learners=()):
        self.hard_state = (0, 0, 0)
        self.snap = Snapshot(0, 0, voters, learners, b"")
        self._ents = [(0, 0, ENTRY_NORMAL, b"")]
        # Counters the simulator reports (stand-in for flash wear).
        self.writes = 0

    # -- read side (used by the core) ------------------------------------
    def initial_state(self):
        return self.hard_state, self.snap.voters, self.snap.learners

    def first_index(self):
        return self._ents[0][0] + 1

    def last_index(self):
        return self._ents[0][0] + len(self._ents) - 1

    def term(self, i):
        off = self._ents[0][0]
        if i < off:
            raise Compacted(i)
        if i - off >= len(self._ents):
            raise Unavailable(i)
        return self._ents[i - off][1]

    def entries(self, lo, hi, max_bytes=0):
        """Entries [lo, hi); at least one, then up to max_bytes of data (0: no limit)."""
        off = self._ents[0][0]
        if lo <= off:
            raise Compacted(lo)
        if hi > self.last_index() + 1:
            raise Unavailable(hi)
        out = []
        size = 0
        for k in range(lo - off, hi - off):
            e = self._ents[k]
            size += len(e[3]) + 16
            if out and max_bytes and size > max_bytes:
                break
            out.append(e)
        return out

    def snapshot(self):
        return self.snap

    # -- write side (used by the driver) ---------------------------------
    def set_hard_state(self, hs):
        self.hard_state = hs
        self.writes += 1

    def append(self, entries):
        """Append, first truncating any entries at or after entries[0]'s index."""
        if not entries:
            return
        off = self._ents[0][0]
        first = entries[0][0]
        if first <= off:
            # Already covered by the snapshot: skip that prefix.
            entries = [e for e in entries if e[0] > off]
            if not entries:
                return
            first = entries[0][0]
        if first > self.last_index() + 1:
            raise Unavailable(first)
        del self._ents[first - off:]
        self._ents.extend(entries)
        self.writes += 1

    def apply_snapshot(self, snap):
        """Replace everything with snap (a follower catching up from the leader)."""
        if snap.index <= self.snap.index:
            return
        self.snap = snap
        self._ents = [(snap.index, snap.term, ENTRY_NORMAL, b"")]
        hs = self.hard_state
        if hs[2] < snap.index:
            self.hard_state = (hs[0], hs[1], snap.index)
        self.writes += 1

    def create_snapshot(self, index, voters, learners, data, voters_out=(), auto_leave=False,
                        incs=()):
        """Record the state machine image at applied index ``index`` (and the
        membership then, RawNode.conf())."""
        if index <= self.snap.index:
            return self.snap
        self.snap = Snapshot(index, self.term(index), voters, learners, data, voters_out,
                             auto_leave, incs)
        self.writes += 1
        return self.snap

    def compact(self, index):
        """Drop entries up to and including index (which must be <= snapshot index)."""
        off = self._ents[0][0]
        if index <= off:
            return
        if index > self.last_index():
            raise Unavailable(index)
        t = self.term(index)
        self._ents = [(index, t, ENTRY_NORMAL, b"")] + self._ents[index - off + 1:]
