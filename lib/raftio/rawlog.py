# mpraft: optional
"""The Raft log appended to a raw flash partition: no file system, no rewrite.

Why: littlefs copies a file's partial last block at every append after a
sync, so a log synced at every Ready costs one 4 KB block erase per entry
(1.02 measured, tools/bench/bench_flash.py), a life of months at 10 puts/s.
Here records are appended into pre-erased blocks and a block is erased only
when the ring wraps onto it: erases per entry ~ record bytes / block bytes
(76 / 4096 for a 60-byte entry).

The device is MicroPython's block-device protocol (esp32.Partition,
rp2.Flash; raftio.fakeflash.FakeBlockDev on hosts): readblocks(n, buf, off),
writeblocks(n, buf, off) programs without erasing, ioctl(6, n) erases block
n, ioctl(4)/ioctl(5) give block count and size. NOR rules: a program only
clears bits, so nothing is ever written twice; ``prog`` is the program unit
(1 on esp32; 256 on rp2, where a record is programmed as whole pages with
0xFF around it, which leaves earlier bytes of the page as they are: serial
NOR takes several programs of one page between erases).

Layout. Block: a 16-byte header ``<IIII`` magic, seq, first, crc32 of
bytes 0..12, then records back to back; the rest of the block is erased.
first is the lowest index the block's first record keeps (its index; a
mark's plus one): every entry above it was written in this block or later.
Record: 16-byte header ``<IIIHBB`` crc32 (over bytes 4..16 and the data),
index, term, data length, kind, flags; then the data. flags 0: an entry;
flags 1: a truncation mark, "the log ends at index". Blocks are used in
ring order with seq + 1 each, so the live blocks are the run of consecutive
seqs ending at the highest one.

Replay (boot): the records of that run from its newest block whose first
is at or before the snapshot's next index (else from its oldest block), in
order, each block up to its first record that is not valid. A record at index i means "the log ends at
i" (entries above i written earlier are gone): a truncation then append
needs no rewrite of old records (nor a mark: a cut before the new record
lands leaves the old log, as if the append had not begun), and installing
a snapshot writes a mark. Entry records leave the last 16 bytes of every
block to a mark, so a snapshot installs even when the ring is full.
So the recovered log is exactly the writes in order, cut at the first
record that did not land.

Durability: write() programs a record before it returns (writeblocks is
synchronous); FlashStorage acks a batch after its last record, so a batch
cut short leaves a prefix of it. A cut inside a record leaves it failing
its CRC (2**-32 to pass) with erased or scattered bytes after it: the boot
abandons that block's tail and writes on in a freshly erased block, because
programming over half-programmed cells is not reliable. A record that does
not read back but has valid records after it in its block, a gap in the
indexes, or entries in a block whose header is lost are damage, not cuts:
CorruptStorage, one line. A block is erased only when it holds no live
entry (index >= ``keep``, which FlashStorage sets on compaction and snapshot
install); otherwise StorageFull, and the engine snapshots and compacts.
"""
import struct
import binascii

try:
    from raft.errors import CorruptStorage, StorageError, StorageFull
    from raftio.storage import FlashStorage
except ImportError:  # compiled apart, beside the merged firmware (tools/board/merge.py)
    from mpraft import CorruptStorage, StorageError, StorageFull, FlashStorage

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_BMAGIC = const(0x31424C52)  # "RLB1"
_HDR = const(16)
_MARK = const(1)
_RFMT = "<IIIHBB"


def _crc(mv, n):
    return binascii.crc32(mv[_HDR:_HDR + n], binascii.crc32(mv[4:_HDR])) & 0xFFFFFFFF


class RawLog:
    """The log-file interface FlashStorage uses (raftio.logfile.LogFile's).
    Invariants: for every live entry i (keep <= i <= top), terms[i % slots]
    is its term and pos[i % slots] the partition offset of its newest
    record; the live records lie in write order from pos[keep % slots] to
    the head block. ``written`` counts bytes programmed, ``flushes`` syncs,
    ``erases`` block erases, ``torn`` record tails abandoned at boot."""

    def __init__(self, dev, slots, slot_size, prog=1, name="raftlog"):
        self.dev = dev
        self.name = name
        self.bs = bs = dev.ioctl(5, 0)
        self.nb = nb = dev.ioctl(4, 0)
        self.prog = prog
        self.slots = slots
        self.max_data = md = slot_size - 20  # the slot format's limit, so boards keep their entry size
        rec = _HDR + md
        if md < 1 or md > 0xFFFF or rec > bs - 2 * _HDR or bs % prog:
            raise StorageError("rawlog: entries of %d bytes do not fit %d-byte blocks (program unit %d)" % (
                md, bs, prog))
        if nb < 3 or (nb - 2) * (bs - 2 * _HDR) < slots * rec:
            raise StorageError("rawlog: partition %s has %d blocks of %d bytes; %d slots of %d-byte "
                               "records need at least %d" % (name, nb, bs, slots, rec,
                                                             2 + -(-slots * rec // (bs - 2 * _HDR))))
        self.terms = [0] * slots
        self._pos = [0] * slots
        self._buf = bytearray(rec)
        self._page = bytearray(prog) if prog > 1 else None
        self.written = 0
        self.flushes = 0
        self.erases = 0
        self.torn = 0
        self.keep = 1
        self.top = 0
        self._trunc = -1   # a truncation the next entry record says, or -1
        self._head = -1    # block being appended to, -1: none yet
        self._seq = 0      # its seq
        self._w = 0        # next write offset in the head block; 0: start a new block
        self._used = False  # some block had a valid header at open()

    # -- device access ------------------------------------------------------
    def _rd(self, p, n):
        mv = memoryview(self._buf)[:n]
        self.dev.readblocks(p // self.bs, mv, p % self.bs)
        return mv

    def _program(self, p, mv):
        bs = self.bs
        page = self._page
        if page is None:
            self.dev.writeblocks(p // bs, mv, p % bs)
        else:
            pr = self.prog
            n = len(mv)
            j = 0
            while j < n:
                a = (p + j) - (p + j) % pr
                k = min(n - j, a + pr - (p + j))
                for x in range(pr):
                    page[x] = 0xFF
                page[p + j - a:p + j - a + k] = mv[j:j + k]
                self.dev.writeblocks(a // bs, page, a % bs)
                j += k
        self.written += len(mv)

    def _block_seq(self, b):
        """The seq in block b's header (its first in self._first), or -1 if
        the header is not valid."""
        mv = self._rd(b * self.bs, _HDR)
        magic, seq, self._first, crc = struct.unpack_from("<IIII", mv, 0)
        if magic != _BMAGIC or binascii.crc32(mv[:12]) & 0xFFFFFFFF != crc:
            return -1
        return seq

    def _record(self, p, end):
        """Parse the record at p (before end): (index, term, kind, flags, n),
        None if erased there, False if not valid."""
        if p + _HDR > end:
            return None
        mv = self._rd(p, _HDR)
        crc, index, term, n, kind, flags = struct.unpack_from(_RFMT, mv, 0)
        if crc == index == term == 0xFFFFFFFF and n == 0xFFFF and kind == flags == 0xFF:
            return None
        if n > self.max_data or p + _HDR + n > end:
            return False
        mv = self._rd(p, _HDR + n)
        if _crc(mv, n) != crc:
            return False
        return index, term, kind, flags, n

    # -- the log-file interface ---------------------------------------------
    def open(self):
        nb = self.nb
        head = -1
        hseq = -1
        for b in range(nb):
            s = self._block_seq(b)
            if s > hseq:
                head = b
                hseq = s
        self._used = head >= 0
        self._head = head
        self._seq = hseq

    def in_use(self):
        """Whether the partition holds a log (a valid block header)."""
        return self._used

    def scan(self, snap_index, snap_term):
        """Replay the live blocks; return the last index (see the docstring)."""
        self.keep = snap_index + 1
        top = snap_index
        head = self._head
        if head < 0:
            self.top = top
            return top
        nb = self.nb
        bs = self.bs
        # Replay from the newest block whose first <= snap_index + 1 (no
        # entry past the snapshot lives before it), else from the oldest
        # of the run: a boot reads a few blocks, not the partition.
        n = 1
        self._block_seq(head)
        while self._first > snap_index + 1 and n < nb and \
                self._block_seq((head - n) % nb) == self._seq - n:
            n += 1
        slots = self.slots
        terms = self.terms
        pos = self._pos
        clean = True
        for k in range(n - 1, -1, -1):
            b = (head - k) % nb
            p = b * bs + _HDR
            end = (b + 1) * bs
            while True:
                r = self._record(p, end)
                if not r:
                    break
                i = r[0]
                if r[3] == _MARK:
                    top = i
                else:
                    if i > snap_index:
                        t = max(top, snap_index)
                        if i > t + 1:
                            raise CorruptStorage("rawlog: %s block %d has entry %d after entry %d; entries %d..%d "
                                                 "are lost" % (self.name, b, i, t, t + 1, i - 1))
                        if i - snap_index > slots:
                            raise CorruptStorage("rawlog: %s entry %d is more than %d slots past the snapshot "
                                                 "at %d; the slot setting shrank or the log is damaged" % (
                                                     self.name, i, slots, snap_index))
                        terms[i % slots] = r[1]
                        pos[i % slots] = p
                    top = i
                p += _HDR + r[4]
            clean = r is None
            if r is False:
                self._damaged(b, p, end)
        top = max(top, snap_index)
        prev = 0xFFFFFFFF
        for i in range(top, snap_index, -1):
            t = terms[i % slots]
            if t > prev or t < snap_term:
                raise CorruptStorage("rawlog: %s entry %d has term %d out of order; the log is damaged" % (
                    self.name, i, t))
            prev = t
        self._check_next(top)
        self.top = top
        if clean:
            # The head's tail must be erased to program into it after a reboot.
            q = p
            while q < end and clean:
                m = min(end - q, len(self._buf))
                for x in self._rd(q, m):
                    if x != 0xFF:
                        clean = False
                q += m
        if clean:
            self._w = p - head * bs
        else:
            self.torn += 1
            self._w = 0
        return top

    def _damaged(self, b, p, end):
        """A record at p does not read back. A cut leaves it as the block's
        last record; a valid record after it means damage."""
        q = p + 1
        while q + _HDR <= end:
            if self._record(q, end):
                raise CorruptStorage("rawlog: %s block %d offset %d does not read back but later records "
                                     "do; acknowledged entries are lost" % (self.name, b, p % self.bs))
            q += 1

    def _check_next(self, top):
        """The block after the head has no valid header: it must not hold
        entries past the log's end (a head whose header was lost)."""
        b = (self._head + 1) % self.nb
        if self.nb < 2 or self._block_seq(b) >= 0:
            return
        p = b * self.bs + _HDR
        end = p - _HDR + self.bs
        while True:
            r = self._record(p, end)
            if not r:
                return
            if r[0] > top and r[3] != _MARK:
                raise CorruptStorage("rawlog: %s block %d holds entry %d past the log's end %d but its "
                                     "header is unreadable; acknowledged entries are lost" % (
                                         self.name, b, r[0], top))
            p += _HDR + r[4]

    def term(self, i):
        """The term of live entry i."""
        return self.terms[i % self.slots]

    def read(self, i):
        slots = self.slots
        p = self._pos[i % slots]
        b = p // self.bs
        r = self._record(p, (b + 1) * self.bs)
        if not r or r[0] != i or r[3] == _MARK:
            raise CorruptStorage("rawlog: %s entry %d (block %d offset %d) no longer reads back" % (
                self.name, i, b, p % self.bs))
        return (i, r[1], r[2], bytes(memoryview(self._buf)[_HDR:_HDR + r[4]]))

    def _next_block(self, first):
        """Erase the next block of the ring and start it with a record
        keeping entries from first on."""
        nb = self.nb
        b = (self._head + 1) % nb
        if self.keep <= self.top and self._pos[self.keep % self.slots] // self.bs == b:
            raise StorageFull("rawlog: %s block %d still holds entry %d, which is not compacted yet; "
                              "create a snapshot and compact" % (self.name, b, self.keep))
        self.dev.ioctl(6, b)
        self.erases += 1
        seq = self._seq + 1
        mv = memoryview(self._buf)[:_HDR]
        struct.pack_into("<IIII", mv, 0, _BMAGIC, seq, first, 0)
        struct.pack_into("<I", mv, 12, binascii.crc32(mv[:12]) & 0xFFFFFFFF)
        self._program(b * self.bs, mv)
        self._head = b
        self._seq = seq
        self._w = _HDR
        self._used = True

    def _append(self, index, term, kind, flags, data):
        n = len(data)
        # Entries leave the last _HDR bytes of a block to a truncation mark,
        # so installing a snapshot never needs a block erase (which a ring
        # full of live entries would refuse).
        if self._w == 0 or self._w + _HDR + n > self.bs - (0 if flags else _HDR):
            self._next_block(index + flags)
        buf = self._buf
        struct.pack_into(_RFMT, buf, 0, 0, index, term, n, kind, flags)
        buf[_HDR:_HDR + n] = data
        mv = memoryview(buf)
        struct.pack_into("<I", buf, 0, _crc(mv, n))
        p = self._head * self.bs + self._w
        self._program(p, mv[:_HDR + n])
        self._w += _HDR + n
        self.top = index
        return p

    def write(self, e):
        """Program entry e = (index, term, kind, data); on flash when it returns."""
        index, term, kind, data = e
        if self._trunc >= 0 and index != self._trunc + 1:
            self.mark(self._trunc)
        self._trunc = -1
        p = self._append(index, term, kind, 0, data)
        s = index % self.slots
        self.terms[s] = term
        self._pos[s] = p

    def invalidate(self, i):
        """Drop entry i and everything after it (called from the top down).
        Nothing is written: the next entry record, at index i, says it (a
        cut before it lands leaves the old log, which the caller had not
        given up yet). apply_snapshot, which writes no entry, calls mark()."""
        self._trunc = i - 1

    def mark(self, i):
        """Program a truncation mark: the log ends at i."""
        self._append(i, 0, 0, _MARK, b"")
        self._trunc = -1

    def sync(self):
        self.flushes += 1

    def close(self):
        pass


def open_partition(label, slots, slot_size, root):
    """The log on the data partition ``label`` (esp32's partition table), or
    on the unix port in root/LABEL.bin, twice the size the slots need."""
    import sys
    if sys.platform == "esp32":
        import esp32
        found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=label)
        if not found:
            raise StorageError("rawlog: no data partition %r in this board's partition table; add one "
                               "(boards/README.md) or set log_partition to null" % label)
        return RawLog(found[0], slots, slot_size, 1, label)
    if sys.platform not in ("linux", "darwin"):
        raise StorageError("rawlog: log_partition works on esp32 and the unix port, not %s; set it "
                           "to null" % sys.platform)
    from raftio.blockfile import FileBlockDev
    need = -(-slots * (slot_size - 4) // (4096 - 2 * _HDR))
    return RawLog(FileBlockDev(root + "/" + label + ".bin", 2 + 2 * need), slots, slot_size, 1, label)


class RawStorage(FlashStorage):
    """FlashStorage (hard state and snapshot files on ``fs``) with its log
    on ``log``, a RawLog. The log must not erase a block holding an entry
    after the compaction point, so every compaction tells it (keep).
    Invariant: self._raw.keep == self.first_index()."""

    def __init__(self, fs, voters, learners, slots, slot_size, prefix, log):
        log.open()
        if log.in_use() and not fs.exists(prefix + ".hs"):
            raise CorruptStorage("storage: %s.hs is missing but partition %s holds a log; term and vote "
                                 "are lost, so this node must not rejoin with this data (erase it all)" % (
                                     prefix, log.name))
        self._raw = log
        FlashStorage.__init__(self, fs, voters, learners, slots, slot_size, prefix)

    def Log(self, fs, name, slots, slot_size, segment_bytes):
        return self._raw

    # Public names of FlashStorage only: compiled apart, this class extends
    # the merged firmware's, whose private names are minified.
    def compact(self, index):
        FlashStorage.compact(self, index)
        self._raw.keep = self.first_index()

    def apply_snapshot(self, snap):
        # Entries past the snapshot must be unreachable before the snapshot
        # that would make them look live is saved: a mark first, durable.
        if snap.index > self.snapshot().index and self.last_index() > snap.index:
            self._raw.mark(snap.index)
        FlashStorage.apply_snapshot(self, snap)
        self._raw.keep = self.first_index()


def storage(fs, voters, learners, slots, slot_size, prefix, label):
    """A board's storage with its log on the partition ``label``
    (firmware/mpraft.py, when board.json sets log_partition)."""
    return RawStorage(fs, voters, learners, slots, slot_size, prefix,
                      open_partition(label, slots, slot_size, fs.root))
