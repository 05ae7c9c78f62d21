"""Leader's view of each follower: Progress and the Inflights window (etcd tracker/).

States:
  PROBE      next is a guess; one append at a time until the follower acks.
  REPLICATE  next is optimistic; appends are pipelined up to the inflight window.
  SNAPSHOT   the follower needs a snapshot; appends pause until it is installed.
"""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

PROBE = const(0)
REPLICATE = const(1)
SNAPSHOT = const(2)
STATE_NAMES = ("probe", "replicate", "snapshot")  # mpraft: host-only


class Inflights:
    """Ring of the last index of each append in flight, oldest first.

    Invariant: 0 <= count <= size; entries are strictly increasing.
    """

    def __init__(self, size):
        self.size = size
        self._buf = [0] * size
        self.start = 0
        self.count = 0

    def full(self):
        return self.count == self.size

    def add(self, last):
        if self.count == self.size:
            return False
        self._buf[(self.start + self.count) % self.size] = last
        self.count += 1
        return True

    def free_le(self, index):
        """Free every inflight append whose last index is <= index."""
        buf = self._buf
        size = self.size
        while self.count and buf[self.start] <= index:
            self.start = (self.start + 1) % size
            self.count -= 1

    def free_first_one(self):
        if self.count:
            self.free_le(self._buf[self.start])

    def reset(self):
        self.start = 0
        self.count = 0


class Progress:
    # Invariant: match < next; match is only ever raised (except on restart).
    def __init__(self, next_index, max_inflight):
        self.match = 0
        self.next = next_index
        self.state = PROBE
        # PROBE: an append is out and unanswered; pause until ack/heartbeat resp.
        self.probe_sent = False
        # SNAPSHOT: index of the snapshot being sent, and the next chunk offset.
        self.pending_snapshot = 0
        self.snap_offset = 0
        self.snap_sent_tick = 0
        # Heard from since the last check-quorum round.
        self.recent_active = False
        # Leader tick at which the newest acked heartbeat was sent (lease reads).
        self.lease_tick = -1
        self.inflights = Inflights(max_inflight)

    def reset(self, state, next_index):
        self.state = state
        self.next = next_index
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snap_offset = 0
        self.inflights.reset()

    def become_probe(self):
        if self.state == SNAPSHOT:
            pending = self.pending_snapshot
            self.reset(PROBE, max(self.match + 1, pending + 1))
        else:
            self.reset(PROBE, self.match + 1)

    def become_replicate(self):
        self.reset(REPLICATE, self.match + 1)

    def become_snapshot(self, snap_index):
        self.reset(SNAPSHOT, self.next)
        self.pending_snapshot = snap_index

    def maybe_update(self, n):
        """An ack for index n arrived. Returns True if it was not stale."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.probe_sent = False
        if self.next < n + 1:
            self.next = n + 1
        return updated

    def sent_entries(self, last):
        """An append ending at last went out."""
        if self.state == REPLICATE:
            self.next = last + 1
            self.inflights.add(last)
        elif self.state == PROBE:
            self.probe_sent = True

    def maybe_decr_to(self, rejected, match_hint):
        """The follower rejected an append at index `rejected`. Returns True if
        next moved (the rejection was not stale)."""
        if self.state == REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        n = rejected if rejected < match_hint + 1 else match_hint + 1
        self.next = n if n > self.match + 1 else self.match + 1
        self.probe_sent = False
        return True

    def is_paused(self):
        if self.state == PROBE:
            return self.probe_sent
        if self.state == REPLICATE:
            return self.inflights.full()
        return True

    def __repr__(self):  # mpraft: host-only
        return "match=%d next=%d %s inflight=%d" % (
            self.match, self.next, STATE_NAMES[self.state], self.inflights.count)
