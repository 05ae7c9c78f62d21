"""Small deterministic pieces of the simulator: PRNG and the faulty network.

Portable (CPython and MicroPython) so one seed gives the same run on both.
"""


class Rand:
    """xorshift32: tiny, fast, identical on every interpreter."""

    def __init__(self, seed):
        s = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF
        self.s = s or 0x1234567

    def next(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def below(self, n):
        """Uniform-enough int in [0, n)."""
        if n <= 1:
            return 0
        return self.next() % n

    def chance(self, per_mille):
        return self.next() % 1000 < per_mille

    def fork(self):
        return Rand(self.next())


class Network:
    """In-flight datagrams with delay, drop, duplication and partitions.

    Packets are (deliver_at, seq, frm, to, payload); seq keeps delivery order
    deterministic among packets due at the same step.
    """

    def __init__(self, rand, drop=0, dup=0, reorder=0):
        self.rand = rand
        self.drop = drop          # per mille
        self.dup = dup            # per mille
        self.reorder = reorder    # per mille: extra random delay
        self.queue = []
        self.seq = 0
        # (frm, to) pairs that cannot talk, e.g. {(1, 2), (2, 1)}.
        self.blocked = set()
        self.sent = 0
        self.dropped = 0

    def send(self, now, frm, to, payload):
        self.sent += 1
        rnd = self.rand
        if (frm, to) in self.blocked:
            self.dropped += 1
            return
        if self.drop and rnd.chance(self.drop):
            self.dropped += 1
            return
        copies = 2 if (self.dup and rnd.chance(self.dup)) else 1
        for _ in range(copies):
            delay = 1
            if self.reorder and rnd.chance(self.reorder):
                delay += 1 + rnd.below(6)
            self.seq += 1
            self.queue.append((now + delay, self.seq, frm, to, payload))

    def due(self, now):
        """Remove and return packets due at or before now, in (time, seq) order."""
        q = self.queue
        out = [p for p in q if p[0] <= now]
        if out:
            self.queue = [p for p in q if p[0] > now]
            out.sort()
        return out

    def drop_for(self, node):
        """A node went down: what was sent to it is lost. What it sent before
        is already on the wire and still arrives."""
        self.queue = [p for p in self.queue if p[3] != node]
