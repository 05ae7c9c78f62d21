"""The Raft log as the core sees it: a fixed-capacity RAM ring over stable storage.

The ring holds the newest entries, [lo, last]. Entries older than lo are read
back from storage (flash on a board); entries newer than ``stable`` exist only
in the ring until the driver persists them, so they can never be evicted.
The ring never grows: when it is full of entries that are not yet durable,
appends stop (the leader refuses proposals with LogFull).
"""
from raft.errors import Compacted, LogFull


class RaftLog:
    def __init__(self, storage, capacity):  # mpraft: boot
        if capacity < 2:
            capacity = 2
        self.storage = storage
        self.cap = capacity
        self._ring = [None] * capacity
        first = storage.first_index()
        last = storage.last_index()
        # Invariant: snap_index < lo <= last + 1; entries <= snap_index are only in the snapshot.
        self.snap_index = first - 1
        self.snap_term = storage.term(first - 1)
        self.last = last
        # Invariant: snap_index <= stable <= last. Entries <= stable are durable.
        self.stable = last
        lo = last - capacity + 1
        if lo < first:
            lo = first
        self.lo = lo
        if lo <= last:
            ring = self._ring
            for e in storage.entries(lo, last + 1, 0):
                ring[e[0] % capacity] = e
        hs = storage.initial_state()[0]
        # The state machine restarts from the snapshot, which may be newer
        # than the compaction point (storage keeps a tail for slow followers).
        base = storage.snapshot().index
        if base < self.snap_index:
            base = self.snap_index
        # Invariant: applied <= applying <= committed <= last.
        self.committed = hs[2] if hs[2] > base else base
        if self.committed > last:
            self.committed = last
        self.applied = base
        self.applying = base
        # A snapshot received from the leader, not yet handed to the driver.
        self.pending_snapshot = None

    # -- reads -------------------------------------------------------------
    def term(self, i):
        """Term of entry i; 0 when i is past the end; raises Compacted below the snapshot."""
        if self.lo <= i <= self.last:
            return self._ring[i % self.cap][1]
        if i == self.snap_index:
            return self.snap_term
        if i > self.last or i <= 0:
            return 0
        if i < self.snap_index:
            raise Compacted(i)
        return self.storage.term(i)

    def last_term(self):
        return self.term(self.last)

    def match_term(self, i, t):
        try:
            return self.term(i) == t
        except Compacted:
            return False

    def is_up_to_date(self, index, term):
        """Paper 5.4.1: is a log ending at (index, term) at least as up-to-date as ours?"""
        lt = self.last_term()
        return term > lt or (term == lt and index >= self.last)

    def slice(self, lo, hi, max_bytes):
        """Entries [lo, hi): at least one, then as many as fit max_bytes (0: no limit)."""
        out = []
        if lo >= hi:
            return out
        if lo <= self.snap_index:
            raise Compacted(lo)
        size = 0
        if lo < self.lo:
            top = hi if hi < self.lo else self.lo
            out = self.storage.entries(lo, top, max_bytes)
            for e in out:
                size += len(e[3]) + 7
            if len(out) < top - lo:
                return out
            lo = top
        ring = self._ring
        cap = self.cap
        i = lo
        while i < hi:
            e = ring[i % cap]
            size += len(e[3]) + 7
            if out and max_bytes and size > max_bytes:
                break
            out.append(e)
            i += 1
        return out

    def unstable_entries(self):
        if self.stable >= self.last:
            return []
        return self.slice(self.stable + 1, self.last + 1, 0)

    def next_committed(self, max_bytes):
        """Committed entries not yet handed out for applying."""
        lo = self.applying + 1
        if lo > self.committed or self.pending_snapshot is not None:
            return []
        return self.slice(lo, self.committed + 1, max_bytes)

    def find_conflict_by_term(self, index, term):
        """Largest i <= index whose term <= term (fast backtracking hint), and its term."""
        if index > self.last:
            index = self.last
        i = index
        while i > self.snap_index:
            try:
                t = self.term(i)
            except Compacted:
                break
            if t <= term:
                return i, t
            i -= 1
        return i, self.term(i) if i >= self.snap_index else 0

    # -- writes ------------------------------------------------------------
    def room(self):  # mpraft: host-only
        """How many more entries fit in the ring without evicting non-durable ones."""
        return self.cap - (self.last - self.stable)

    def append(self, e):
        """Append one entry at last + 1. Raises LogFull if the ring is full of
        entries that are not durable yet."""
        i = self.last + 1
        if i - self.lo >= self.cap:
            if self.lo > self.stable:
                raise LogFull("log ring full: %d entries not yet persisted" % (self.last - self.stable))
            self.lo += 1
        self._ring[i % self.cap] = e
        self.last = i

    def truncate_after(self, index):
        """Drop every entry after index (a conflicting tail, paper 5.3)."""
        if index >= self.last:
            return
        self.last = index
        if self.stable > index:
            self.stable = index
        if self.lo > index + 1:
            self.lo = index + 1

    def commit_to(self, c):
        if c > self.committed:
            if c > self.last:
                c = self.last
            self.committed = c

    def stable_to(self, index, term):
        # Ignore an ack for entries that were truncated since.
        if index > self.stable and index <= self.last and self.match_term(index, term):
            self.stable = index

    def restore(self, snap):
        """Replace the log with a snapshot from the leader (not yet durable)."""
        self.snap_index = snap.index
        self.snap_term = snap.term
        self.last = snap.index
        self.stable = snap.index
        self.lo = snap.index + 1
        self.committed = snap.index
        self.pending_snapshot = snap

    def compacted_to(self, index, term):
        """Storage compacted through index (the driver took a snapshot)."""
        if index > self.snap_index:
            self.snap_index = index
            self.snap_term = term
            if self.lo <= index:
                self.lo = index + 1 if index + 1 <= self.last + 1 else self.last + 1
