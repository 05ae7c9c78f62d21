"""FlashStorage: the raft.storage interface over three flash files.

Same methods and answers as raft.memstorage.MemoryStorage (a shared test checks
this), backed by ``PREFIX.hs`` (hard state, raftio.hardstate), ``PREFIX.log``
(entry ring, raftio.logfile) and ``PREFIX.snap`` (raftio.snapfile). Every
write method returns only after its bytes are written and flushed, so the
driver may send persisted_messages once it returns. append() flushes once per
call (twice if it truncates), however many entries it carries: hand it all of
a Ready's entries at once.

Differences the driver must know:
1. The log is a ring of ``slots`` entries: append raises StorageFull rather
   than overwrite an entry that has not been compacted (snapshot, then compact).
2. An entry's data may be at most ``slot_size - 20`` bytes (EntryTooLarge).
3. compact() may not pass the snapshot index (StorageError): those entries
   would exist nowhere after a reboot.
4. After a reboot the log starts right after the snapshot (first_index =
   snapshot index + 1) even if compact() had kept older entries, and commit
   is at least the snapshot index.
"""
from raft.errors import Compacted, Unavailable, EntryTooLarge
from raft.storage import Snapshot
from raftio.fs import StorageError, StorageFull, CorruptStorage
from raftio.hardstate import HardStateFile
from raftio.logfile import LogFile
from raftio.snapfile import SnapFile


class FlashStorage:
    """Invariants: entries off+1..last are on flash in slots (i % slots);
    last - off <= slots; off <= snap.index after a reboot, and compact()
    never lets it pass snap.index; off_term is the term of entry off."""

    # The log's backend; raftio.rawlog.RawStorage puts it on a raw partition.
    Log = LogFile

    def __init__(self, fs, voters=(), learners=(), slots=256, slot_size=512, prefix="raft",  # mpraft: boot
                 segment_bytes=4096):
        self.fs = fs
        hs_name = prefix + ".hs"
        log_name = prefix + ".log"
        snap_name = prefix + ".snap"
        if not fs.exists(hs_name) and (fs.exists(log_name) or fs.exists(snap_name)):
            raise CorruptStorage("storage: %s is missing but %s/%s exist; term and vote are lost, "
                                 "so this node must not rejoin with this data (delete it all)" % (
                                     hs_name, log_name, snap_name))
        # A creation cut short (the log's own are removed by LogFile.open).
        if fs.exists(hs_name + ".tmp"):
            fs.remove(hs_name + ".tmp")
        self._hs = HardStateFile(fs, hs_name)
        self._snapf = SnapFile(fs, snap_name)
        # segment_bytes: the log ring's files hold one littlefs block each
        # (raftio/logfile.py); 0 keeps one file (host POSIX files).
        self._log = self.Log(fs, log_name, slots, slot_size, segment_bytes)
        hs = self._hs.load()
        snap = self._snapf.load()
        if snap is None:
            snap = Snapshot(0, 0, voters, learners, b"")
        self.snap = snap
        self._log.open()
        self._slots = slots
        self._off = snap.index
        self._off_term = snap.term
        self._last = self._log.scan(snap.index, snap.term)
        if hs[2] < snap.index:
            # apply_snapshot writes the commit bump after the snapshot; a cut
            # between the two is repaired here, in RAM.
            hs = (hs[0], hs[1], snap.index)
        elif hs[2] > self._last:
            raise CorruptStorage("storage: commit %d is past the last log entry %d; committed entries are lost" % (
                hs[2], self._last))
        self.hard_state = hs

    @property
    def bytes_written(self):  # mpraft: host-only
        """Bytes sent to flash by this instance, all files together (wear)."""
        return self._hs.written + self._log.written + self._snapf.written

    def bytes_written_by_file(self):  # mpraft: host-only
        return {"hardstate": self._hs.written, "log": self._log.written, "snapshot": self._snapf.written}

    def flushes(self):
        """Flushes so far, all files together (each one a flash sync)."""
        return self._log.flushes + self._hs.flushes + self._snapf.flushes

    def max_entry_bytes(self):
        return self._log.max_data

    def close(self):
        self._hs.close()
        self._log.close()

    # -- read side (used by the core) ------------------------------------
    def initial_state(self):
        return self.hard_state, self.snap.voters, self.snap.learners

    def first_index(self):
        return self._off + 1

    def last_index(self):
        return self._last

    def term(self, i):
        if i < self._off:
            raise Compacted(i)
        if i > self._last:
            raise Unavailable(i)
        if i == self._off:
            return self._off_term
        return self._log.term(i)

    def entries(self, lo, hi, max_bytes=0):
        """Entries [lo, hi); at least one, then up to max_bytes of data (0: no limit)."""
        if lo <= self._off:
            raise Compacted(lo)
        if hi > self._last + 1:
            raise Unavailable(hi)
        out = []
        size = 0
        for i in range(lo, hi):
            e = self._log.read(i)
            size += len(e[3]) + 16
            if out and max_bytes and size > max_bytes:
                break
            out.append(e)
        return out

    def snapshot(self):
        return self.snap

    # -- write side (used by the driver) ---------------------------------
    def set_hard_state(self, hs):
        if tuple(hs) == self.hard_state:
            return
        self._hs.save(hs)
        self.hard_state = tuple(hs)

    def _check(self, entries):
        prev = entries[0][0] - 1
        maxd = self._log.max_data
        for e in entries:
            if len(e) != 4 or e[0] != prev + 1:
                raise StorageError("append: entries must be (index, term, kind, data) with consecutive "
                                   "indexes; got %r after index %d" % (e[:2], prev))
            if not (0 <= e[1] <= 0xFFFFFFFF and 0 <= e[2] <= 255):
                raise StorageError("append: entry %d has term %r kind %r out of range" % (e[0], e[1], e[2]))
            if len(e[3]) > maxd:
                raise EntryTooLarge("append: entry %d has %d bytes of data; a log slot holds %d" % (
                    e[0], len(e[3]), maxd))
            prev = e[0]

    def append(self, entries):
        """Append, first truncating any entries at or after entries[0]'s index."""
        if not entries:
            return
        off = self._off
        first = entries[0][0]
        if first <= off:
            entries = [e for e in entries if e[0] > off]
            if not entries:
                return
            first = entries[0][0]
        if first > self._last + 1:
            raise Unavailable(first)
        self._check(entries)
        new_last = entries[-1][0]
        if new_last - off > self._slots:
            raise StorageFull("append: entry %d would overwrite entry %d, which is not compacted yet; "
                              "create a snapshot and compact (ring of %d slots)" % (
                                  new_last, new_last - self._slots, self._slots))
        log = self._log
        # Stale tail first, highest index down, durable before any new slot
        # is written (see logfile docstring); then the batch, one flush.
        if self._last >= first:
            i = self._last
            while i >= first:
                log.invalidate(i)
                i -= 1
            log.sync()
            self._last = first - 1
        for e in entries:
            log.write(e)
        log.sync()
        self._last = new_last

    def apply_snapshot(self, snap):
        """Replace everything with snap (a follower catching up from the leader)."""
        if snap.index <= self.snap.index:
            return
        # Entries past snap.index must be unreachable before the snapshot
        # that would make them look live is in place.
        if self._last > snap.index:
            i = self._last
            while i > snap.index:
                self._log.invalidate(i)
                i -= 1
            self._log.sync()
            self._last = snap.index
        self._snapf.save(snap)
        self.snap = snap
        self._off = snap.index
        self._off_term = snap.term
        self._last = snap.index
        hs = self.hard_state
        if hs[2] < snap.index:
            self._hs.save((hs[0], hs[1], snap.index))
            self.hard_state = (hs[0], hs[1], snap.index)

    def create_snapshot(self, index, voters, learners, data, voters_out=(), auto_leave=False,
                        incs=()):
        """Record the state machine image at applied index ``index`` (and the
        membership then, RawNode.conf(), and Raft.snap_incs())."""
        if index <= self.snap.index:
            return self.snap
        snap = Snapshot(index, self.term(index), voters, learners, data, voters_out,
                        auto_leave, incs)
        self._snapf.save(snap)
        self.snap = snap
        return snap

    def compact(self, index):
        """Drop entries up to and including index (which must be <= snapshot index)."""
        if index <= self._off:
            return
        if index > self._last:
            raise Unavailable(index)
        if index > self.snap.index:
            raise StorageError("compact: index %d is past the snapshot at %d; create_snapshot first" % (
                index, self.snap.index))
        self._off_term = self.term(index)
        self._off = index
