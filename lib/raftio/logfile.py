"""The Raft log as a ring of fixed-size slots in preallocated segment files.

The ring is cut into segments of at most 4096 bytes (one littlefs block):
segment 0 is the file NAME, segment k > 0 the file NAME.k, each holding
`per` = 4096 // slot_size slots. Why not one file: littlefs is
copy-on-write, and a write in the middle of a file is flushed by copying
everything from there to the end of the file into fresh blocks; with one
file of 512 slots of 660 bytes (esp32) that was 43 block erases per
appended entry, which would wear a 4 MB flash out in days
(tools/bench/bench_flash.py, tools/bench/lfswear.py). A one-block segment
costs one erase per flush. segment_bytes=0 keeps the whole ring in one file
(host runs on POSIX files, which are rewritten in place).

Slot layout (``<IIIIBBH``, 20 bytes, then data): magic, crc32 (over bytes
8..20 and the data), index, term, kind, pad, data length. Entry i lives in slot
i % N. Only header + data are written, so an entry costs 20 + len(data) bytes.

Power-cut safety rests on one rule: on flash, the slots whose index is above
the snapshot index always form a prefix of some log the storage really held,
with nothing valid beyond its end. One append is one batch: its slots are
written in increasing index order and flushed ONCE (sync()), and the append
returns only after that flush. Truncation (and installing a snapshot) must make
stale entries unreachable BEFORE writing anything new: it zeroes the magic and
CRC of every stale slot, from the highest index down, then flushes once; only
then are the new slots written (a second flush). So a truncated entry can
never come back: its invalidation is durable before any new slot is written.

This relies on one property of the file system: the bytes of ONE flush land in
the order they were written, or all at once, so a cut inside a flush leaves a
prefix of that flush's bytes (the fake flash models exactly that, and flushes
never overtake each other). Then a cut inside a batch leaves slots first..k
complete, slot k+1 torn (it fails its CRC) and the rest of the batch not yet
written: a clean prefix, like the one-flush-per-slot design gave, because the
bytes land in the same order; only the acknowledgement moved to the end of the
batch, and nothing of an unacknowledged batch needs to survive. A cut inside
the invalidation sweep likewise leaves the top few stale slots zeroed: a
shorter prefix of the old log, never old entries beyond a gap.
- littlefs (MicroPython's default on ESP32 and RP2040): flush() is
  lfs_file_sync, and littlefs is copy-on-write with an atomic metadata
  commit, so a flush lands entirely or not at all: stronger than a prefix.
- FAT (the stm32 port's default for internal flash) writes sectors in place,
  and the driver or card may reorder or tear sector writes inside one flush
  (an erase-block rewrite can also damage neighbouring sectors, which one
  flush per slot did not prevent either). On FAT the batch would need one
  flush per slot again, or each slot would have to carry its batch's first
  index so the boot scan could accept holes inside the last batch (and
  invalidate what lies past the first hole). Not done: format such a board
  with littlefs (vfs.VfsLfs2).
- POSIX files (the unix port): a killed process loses nothing already
  written; a host power loss may land one fsync's pages in any order, so the
  same caveat as FAT applies there.

So at boot the highest valid index H is the true end, and every slot from H down to snapshot+1 must be valid and
carry the right index with non-increasing terms; anything else was durably
written and is now unreadable, which is reported (CorruptStorage) instead of
skipped. Only the tail of the last batch may be missing, and a missing tail
just reads as a shorter log.

Zeroing the CRC, not just the magic, matters: a rewrite of the slot cut just
after its new magic would otherwise revive the stale entry under its old CRC
(the cut tests found exactly that). The CRC sits right after the magic so the
invalidation is only 8 bytes. Detection of a torn slot is by CRC32, so a torn
write passes with probability 2**-32.

Writing stale slots over with a higher term would not do: a new leader's entry
can carry a LOWER term than the stale entry it replaces.
"""
import struct
import binascii

from raftio.fs import CorruptStorage, StorageError, replace

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_MAGIC = const(0x31474C52)  # "RLG1"
HEADER = const(20)
_SEGMENT = const(4096)  # bytes per segment file at most: one littlefs block
_FMT = "<IIIIBBH"


class LogFile:
    """``written`` counts bytes sent to flash, ``flushes`` the syncs.

    Terms of live entries are read back from their slots (term()), not kept
    in RAM: a list of one term per slot was 2 KB of a stock ESP32's heap at
    512 slots, and a term older than the core's ring is asked for only when
    a follower lags or after a restart, when the entries are read anyway."""

    def __init__(self, fs, name, slots, slot_size, segment_bytes=_SEGMENT):  # mpraft: boot
        if slots < 2 or slot_size < HEADER + 1 or slot_size - HEADER > 0xFFFF:
            raise StorageError("log: slots=%d slot_size=%d; need slots >= 2 and %d < slot_size <= %d" % (
                slots, slot_size, HEADER, HEADER + 0xFFFF))
        self.fs = fs
        self.name = name
        self.slots = slots
        self.slot_size = slot_size
        self.max_data = slot_size - HEADER
        self.written = 0
        self.flushes = 0
        self._buf = bytearray(slot_size)
        self._zero = bytes(8)
        # Invariant: per * nseg >= slots; slot s lives in segment s // per.
        # segment_bytes 0: one file (POSIX files are rewritten in place).
        self.per = min(slots, max(1, segment_bytes // slot_size)) if segment_bytes else slots
        self.nseg = (slots + self.per - 1) // self.per
        # One segment open for writing (_w, segment _ws) and one for reading
        # (_r, segment _rs); never the same segment in both.
        self._w = None
        self._ws = -1
        self._r = None
        self._rs = -1
        self._dirty = False

    def _seg_name(self, k):
        return self.name if k == 0 else "%s.%d" % (self.name, k)

    def _seg_bytes(self, k):
        return min(self.per, self.slots - k * self.per) * self.slot_size

    def _create(self, k):
        name = self._seg_name(k)
        tmp = name + ".tmp"
        f = self.fs.open(tmp, "wb")
        z = bytes(self.slot_size)  # one slot at a time: a whole ring may not fit the heap
        for _ in range(self._seg_bytes(k) // self.slot_size):
            f.write(z)
        f.flush()
        f.close()
        self.written += self._seg_bytes(k)
        replace(self.fs, tmp, name)

    def open(self):  # mpraft: boot
        for k in range(self.nseg):
            name = self._seg_name(k)
            if self.fs.exists(name + ".tmp"):
                self.fs.remove(name + ".tmp")  # a creation cut short
            if not self.fs.exists(name):
                self._create(k)
            want = self._seg_bytes(k)
            if self.fs.size(name) != want:
                raise CorruptStorage("log: file %s is %d bytes, expected %d; the ring settings "
                                     "(%d slots x %d) changed or the file is damaged" % (
                                         name, self.fs.size(name), want, self.slots, self.slot_size))

    def _at(self, slot, write):
        """The open file holding slot, positioned at it."""
        k = slot // self.per
        if k == self._ws:
            f = self._w
        elif write:
            self._flush_w()
            if self._w is not None:
                self._w.close()
            if k == self._rs:
                self._r.close()
                self._r = None
                self._rs = -1
            f = self._w = self.fs.open(self._seg_name(k), "r+b")
            self._ws = k
        elif k == self._rs:
            f = self._r
        else:
            if self._r is not None:
                self._r.close()
            f = self._r = self.fs.open(self._seg_name(k), "rb")
            self._rs = k
        f.seek((slot - k * self.per) * self.slot_size)
        return f

    def _flush_w(self):
        if self._w is not None and self._dirty:
            self._w.flush()
            self.flushes += 1
        self._dirty = False

    def _read(self, slot):
        """Read slot into self._buf; return (index, term, kind, length) or None if invalid."""
        buf = self._buf
        f = self._at(slot, False)
        f.readinto(buf)
        magic, crc, index, term, kind, _pad, n = struct.unpack_from(_FMT, buf, 0)
        if magic != _MAGIC or n > self.max_data:
            return None
        mv = memoryview(buf)
        c = binascii.crc32(mv[HEADER:HEADER + n], binascii.crc32(mv[8:HEADER]))
        if c & 0xFFFFFFFF != crc:
            return None
        return index, term, kind, n

    def scan(self, snap_index, snap_term):  # mpraft: boot
        """Rebuild the live range after snap_index; return the last index."""
        n = self.slots
        top = snap_index
        for slot in range(n):
            h = self._read(slot)
            if h is not None and h[0] % n == slot and h[0] > top:
                top = h[0]
        prev = 0xFFFFFFFF
        i = top
        while i > snap_index:
            slot = i % n
            h = self._read(slot)
            if h is None or h[0] != i:
                raise CorruptStorage("log: file %s slot %d (entry %d) is unreadable inside the live range "
                                     "%d..%d; acknowledged entries are lost" % (self.name, slot, i, snap_index + 1, top))
            if h[1] > prev or h[1] < snap_term:
                raise CorruptStorage("log: file %s slot %d (entry %d) has term %d out of order; the log is damaged" % (
                    self.name, slot, i, h[1]))
            prev = h[1]
            i -= 1
        return top

    def _live(self, i):
        h = self._read(i % self.slots)
        if h is None or h[0] != i:
            raise CorruptStorage("log: file %s slot %d (entry %d) no longer reads back" % (
                self.name, i % self.slots, i))
        return h

    def term(self, i):
        """The term of live entry i (written, or found by scan)."""
        return self._live(i)[1]

    def read(self, i):
        h = self._live(i)
        return (i, h[1], h[2], bytes(memoryview(self._buf)[HEADER:HEADER + h[3]]))

    def write(self, e):
        """Write entry e = (index, term, kind, data) into its slot; not durable
        until sync(). Write a batch in increasing index order (see above)."""
        index, term, kind, data = e
        n = len(data)
        buf = self._buf
        struct.pack_into(_FMT, buf, 0, _MAGIC, 0, index, term, kind, 0, n)
        buf[HEADER:HEADER + n] = data
        mv = memoryview(buf)
        c = binascii.crc32(mv[HEADER:HEADER + n], binascii.crc32(mv[8:HEADER])) & 0xFFFFFFFF
        struct.pack_into("<I", buf, 4, c)
        slot = index % self.slots
        f = self._at(slot, True)
        f.write(mv[:HEADER + n])
        self._dirty = True
        self.written += HEADER + n

    def invalidate(self, i):
        """Make entry i unreadable (zero its magic and CRC); not durable until
        sync(). Invalidate a stale tail from the highest index down."""
        f = self._at(i % self.slots, True)
        f.write(self._zero)
        self._dirty = True
        self.written += 8

    def sync(self):
        """Flush every write and invalidation so far to flash, in their order."""
        if self._w is not None:
            self._w.flush()
        self._dirty = False
        self.flushes += 1

    def close(self):
        if self._w is not None:
            self._w.close()
            self._w = None
            self._ws = -1
        if self._r is not None:
            self._r.close()
            self._r = None
            self._rs = -1

