"""Hard state (term, vote, commit) in two fixed slots written alternately.

File layout: two 24-byte slots, each ``<IIIIII``: magic, sequence, term, vote,
commit, crc32 over bytes 4..20. A write goes in place ('r+b', seek, write,
flush) into the slot that does NOT hold the current value, so a power cut
tears at most the slot being written and the previous value survives. Boot
takes the valid slot with the highest sequence.

The file is created whole (zeros, under a temporary name, then renamed), so it
either does not exist or has both slots. Both slots all-zero means "never
written"; both slots non-zero and invalid cannot come from a torn write (only
one slot is ever in flight) and is reported as corruption.
"""
import struct
import binascii

from raftio.fs import CorruptStorage, StorageError, replace

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_MAGIC = const(0x31534852)  # "RHS1"
_SLOT = const(24)
_FMT = "<IIIIII"


class HardStateFile:
    """Invariant: self._slot is the slot holding self.value (or -1 if none yet);
    self._seq is its sequence. ``written`` counts bytes sent to flash,
    ``flushes`` the saves (one flush each)."""

    def __init__(self, fs, name):  # mpraft: boot
        self.fs = fs
        self.name = name
        self.written = 0
        self.flushes = 0
        self._buf = bytearray(_SLOT)
        self.value = (0, 0, 0)
        self._seq = 0
        self._slot = -1
        self._f = None

    def _create(self):
        tmp = self.name + ".tmp"
        f = self.fs.open(tmp, "wb")
        f.write(bytes(2 * _SLOT))
        f.flush()
        f.close()
        self.written += 2 * _SLOT
        replace(self.fs, tmp, self.name)

    def load(self):  # mpraft: boot
        """Read the file (creating it if absent) and return (term, vote, commit)."""
        if not self.fs.exists(self.name):
            self._create()
        if self.fs.size(self.name) != 2 * _SLOT:
            raise CorruptStorage("hard state: file %s is %d bytes, expected %d; restore or delete it" % (
                self.name, self.fs.size(self.name), 2 * _SLOT))
        self._f = self.fs.open(self.name, "r+b")
        buf = self._buf
        best = -1
        bad = 0
        for slot in (0, 1):
            self._f.seek(slot * _SLOT)
            self._f.readinto(buf)
            magic, seq, term, vote, commit, crc = struct.unpack_from(_FMT, buf, 0)
            if magic == _MAGIC and binascii.crc32(memoryview(buf)[4:20]) & 0xFFFFFFFF == crc:
                if best < 0 or seq > self._seq:
                    best = slot
                    self._seq = seq
                    self.value = (term, vote, commit)
            elif buf != bytes(_SLOT):
                bad += 1
        if best < 0 and bad == 2:
            raise CorruptStorage("hard state: file %s has both slots corrupt; term and vote are lost" % self.name)
        self._slot = best
        return self.value

    def save(self, hs):
        term, vote, commit = hs
        if not (0 <= term <= 0xFFFFFFFF and 0 <= vote <= 0xFFFFFFFF and 0 <= commit <= 0xFFFFFFFF):
            raise StorageError("hard state: %r out of range (u32 fields)" % (hs,))
        slot = 1 if self._slot == 0 else 0
        seq = self._seq + 1
        buf = self._buf
        struct.pack_into(_FMT, buf, 0, _MAGIC, seq, term, vote, commit, 0)
        struct.pack_into("<I", buf, 20, binascii.crc32(memoryview(buf)[4:20]) & 0xFFFFFFFF)
        f = self._f
        f.seek(slot * _SLOT)
        f.write(buf)
        f.flush()
        self.flushes += 1
        self.written += _SLOT
        self._slot = slot
        self._seq = seq
        self.value = (term, vote, commit)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None
