"""The Raft log as a ring of fixed-size slots in one preallocated file.

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
_FMT = "<IIIIBBH"


class LogFile:
    """Invariant: self.terms[i % slots] is the term of every live entry i.
    ``written`` counts bytes sent to flash, ``flushes`` the syncs."""

    def __init__(self, fs, name, slots, slot_size):
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
        self.terms = [0] * slots
        self._f = None

    def _create(self):
        tmp = self.name + ".tmp"
        f = self.fs.open(tmp, "wb")
        z = bytes(self.slot_size)
        for _ in range(self.slots):
            f.write(z)
        f.flush()
        f.close()
        self.written += self.slots * self.slot_size
        replace(self.fs, tmp, self.name)

    def open(self):
        if not self.fs.exists(self.name):
            self._create()
        want = self.slots * self.slot_size
        if self.fs.size(self.name) != want:
            raise CorruptStorage("log: file %s is %d bytes, expected %d slots x %d = %d; "
                                 "the ring settings changed or the file is damaged" % (
                                     self.name, self.fs.size(self.name), self.slots, self.slot_size, want))
        self._f = self.fs.open(self.name, "r+b")

    def _read(self, slot):
        """Read slot into self._buf; return (index, term, kind, length) or None if invalid."""
        buf = self._buf
        f = self._f
        f.seek(slot * self.slot_size)
        f.readinto(buf)
        magic, crc, index, term, kind, _pad, n = struct.unpack_from(_FMT, buf, 0)
        if magic != _MAGIC or n > self.max_data:
            return None
        mv = memoryview(buf)
        c = binascii.crc32(mv[HEADER:HEADER + n], binascii.crc32(mv[8:HEADER]))
        if c & 0xFFFFFFFF != crc:
            return None
        return index, term, kind, n

    def scan(self, snap_index, snap_term):
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
            self.terms[slot] = h[1]
            i -= 1
        return top

    def read(self, i):
        h = self._read(i % self.slots)
        if h is None or h[0] != i:
            raise CorruptStorage("log: file %s slot %d (entry %d) no longer reads back" % (
                self.name, i % self.slots, i))
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
        f = self._f
        f.seek(slot * self.slot_size)
        f.write(mv[:HEADER + n])
        self.written += HEADER + n
        self.terms[slot] = term

    def invalidate(self, i):
        """Make entry i unreadable (zero its magic and CRC); not durable until
        sync(). Invalidate a stale tail from the highest index down."""
        f = self._f
        f.seek((i % self.slots) * self.slot_size)
        f.write(self._zero)
        self.written += 8

    def sync(self):
        """Flush every write and invalidation so far to flash, in their order."""
        self._f.flush()
        self.flushes += 1

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

