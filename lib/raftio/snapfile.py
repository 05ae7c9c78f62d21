"""The snapshot file: header, membership, state machine image.

Layout: ``<IIIIBBHI`` header (24 bytes): magic, index, term, data length,
voter count, learner count, joint (outgoing voter count in the low byte,
bit 8 auto_leave; bit 9: incarnations follow the ids), crc32 over bytes
4..20 + ids + data; then the voters, learners and outgoing voters as u32
each, then with bit 9 Snapshot.incs (one u32 per id); then the data. The file size must equal
what the header announces, so a short (torn) file never passes.

A new snapshot goes to ``NAME.tmp`` (write, flush, close) and is then renamed
over ``NAME``; the old one stays readable until the rename. Where rename will
not replace (FAT), the old file is removed first, so at boot a missing ``NAME``
with a complete, valid ``NAME.tmp`` means the rename was cut: adopt it. Any
other ``NAME.tmp`` is a write that never finished: delete it.
"""
import struct
import binascii

from raft.storage import Snapshot
from raftio.fs import CorruptStorage, StorageError, replace

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_MAGIC = const(0x31504E53)  # "SNP1"
_HEADER = const(24)
_FMT = "<IIIIBBHI"
_CHUNK = const(256)


class SnapFile:
    """``written`` counts bytes sent to flash."""

    def __init__(self, fs, name):  # mpraft: boot
        self.fs = fs
        self.name = name
        self.written = 0
        self.flushes = 0

    def _decode(self, name):
        """Return the Snapshot stored in file `name`, or None if it is not complete and valid."""
        size = self.fs.size(name)
        if size < _HEADER:
            return None
        f = self.fs.open(name, "rb")
        try:
            hdr = f.read(_HEADER)
            if len(hdr) != _HEADER:
                return None
            magic, index, term, dlen, nv, nl, jt, crc = struct.unpack_from(_FMT, hdr, 0)
            no = jt & 0xFF
            ni = nv + nl + no
            nw = 2 * ni if jt & 0x200 else ni
            if magic != _MAGIC or size != _HEADER + 4 * nw + dlen:
                return None
            ids = f.read(4 * nw)
            data = f.read(dlen)
        finally:
            f.close()
        if len(ids) != 4 * nw or len(data) != dlen:
            return None
        c = binascii.crc32(data, binascii.crc32(ids, binascii.crc32(memoryview(hdr)[4:20])))
        if c & 0xFFFFFFFF != crc:
            return None
        voters = struct.unpack_from("<%dI" % nv, ids, 0) if nv else ()
        learners = struct.unpack_from("<%dI" % nl, ids, 4 * nv) if nl else ()
        out = struct.unpack_from("<%dI" % no, ids, 4 * (nv + nl)) if no else ()
        incs = struct.unpack_from("<%dI" % ni, ids, 4 * ni) if nw > ni else ()
        return Snapshot(index, term, voters, learners, data, out, bool(jt & 0x100), incs)

    def load(self):
        """Return the stored Snapshot, or None if there is none."""
        tmp = self.name + ".tmp"
        have_tmp = self.fs.exists(tmp)
        if not self.fs.exists(self.name):
            if have_tmp:
                snap = self._decode(tmp)
                if snap is not None:
                    self.fs.rename(tmp, self.name)
                    return snap
                self.fs.remove(tmp)
            return None
        if have_tmp:
            self.fs.remove(tmp)
        snap = self._decode(self.name)
        if snap is None:
            raise CorruptStorage("snapshot: file %s is corrupt and no complete earlier snapshot exists; "
                                 "restore it from a peer (delete the node's data and rejoin)" % self.name)
        return snap

    def save(self, snap):
        nv = len(snap.voters)
        nl = len(snap.learners)
        no = len(snap.voters_out)
        if nv > 255 or nl > 255 or no > 255:
            raise StorageError("snapshot: %d voters, %d learners; at most 255 each" % (nv, nl))
        every = snap.voters + snap.learners + snap.voters_out + snap.incs
        for x in every:
            if not 0 <= x <= 0xFFFFFFFF:
                raise StorageError("snapshot: node id %r is not a u32" % (x,))
        hdr = bytearray(_HEADER)
        struct.pack_into(_FMT, hdr, 0, _MAGIC, snap.index, snap.term, len(snap.data), nv, nl,
                         no | (0x100 if snap.auto_leave else 0) | (0x200 if snap.incs else 0), 0)
        ids = bytearray(4 * len(every))
        k = 0
        for x in every:
            struct.pack_into("<I", ids, k, x)
            k += 4
        c = binascii.crc32(snap.data, binascii.crc32(ids, binascii.crc32(memoryview(hdr)[4:20])))
        struct.pack_into("<I", hdr, 20, c & 0xFFFFFFFF)
        tmp = self.name + ".tmp"
        f = self.fs.open(tmp, "wb")
        try:
            f.write(hdr)
            f.write(ids)
            data = memoryview(snap.data)
            # Chunked so a board's VFS never needs one big contiguous buffer.
            for off in range(0, len(data), _CHUNK):
                f.write(data[off:off + _CHUNK])
            f.flush()
        finally:
            f.close()
        self.written += _HEADER + len(ids) + len(snap.data)
        self.flushes += 1
        replace(self.fs, tmp, self.name)
