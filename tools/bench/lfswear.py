"""Block erases littlefs would do for a write trace: a FakeFlash that counts them.

The model (littlefs v2 as MicroPython builds it on esp32 and rp2:
`vfs.VfsLfs2` with 4096-byte blocks, read/prog size 32, cache 128 bytes, so
files of at most 128 bytes are inline; lfs.c functions named):

1. Inline files (at most INLINE_MAX bytes) live in their directory's metadata
   block: a sync appends a commit carrying the whole file (+ META_COMMIT
   bytes of tags, mtime and CRC, rounded up to the 32-byte program size).
2. Other files are CTZ skip-lists of whole blocks, copy-on-write. Writing at
   position p opens a write session: lfs_ctz_extend takes a freshly erased
   block for p's block and copies the bytes before p into it. The session
   ends at the next sync, or at a seek to another position (lfs_file_seek
   flushes), and lfs_file_flush then copies everything from the current
   position to the end of the file into new blocks. So a session erases
   every block from p's block to the file's last block; appending to a file
   after a sync still erases one block (its partial last block is copied).
3. Every sync, rename, create and remove is one metadata commit (META_COMMIT
   bytes, more for inline data). A metadata block is erased each time
   META_USABLE bytes of commits filled it (compaction into the other block
   of the pair; littlefs relocates a pair after block_cycles=100 erases,
   so metadata wear spreads too).
4. Reads cost nothing; a seek to the current position is free.
Not modelled: the allocator's lookahead scans, bad blocks, the superblock.

`erases` counts data-block erases, `meta_bytes` metadata commit bytes;
`total()` is erases + meta_bytes / META_USABLE.
"""
import sys

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

from raftio.fakeflash import FakeFlash, _FakeFile  # noqa: E402

BLOCK = 4096
PROG = 32
INLINE_MAX = 128
META_COMMIT = 64
META_USABLE = 3584  # a 4 KB metadata block less the compacted directory it starts with


def _round(n):
    return -(-n // PROG) * PROG


class LfsFlash(FakeFlash):
    """A FakeFlash whose files count littlefs erases (see the module docstring)."""

    def __init__(self, *a, **kw):
        FakeFlash.__init__(self, *a, **kw)
        self.erases = 0
        self.meta_bytes = 0

    def total(self):
        return self.erases + self.meta_bytes / float(META_USABLE)

    def open(self, name, mode):
        f = FakeFlash.open(self, name, mode)
        if "w" in mode:
            self.meta_bytes += META_COMMIT  # the new (emptied) file's entry
        return _LfsFile(self, f, name)

    def rename(self, src, dst):
        FakeFlash.rename(self, src, dst)
        self.meta_bytes += META_COMMIT

    def remove(self, name):
        FakeFlash.remove(self, name)
        self.meta_bytes += META_COMMIT

    def reboot(self, cut_after_bytes=None, reuse=False):
        fresh = FakeFlash.reboot(self, cut_after_bytes, reuse)
        out = LfsFlash.__new__(LfsFlash)
        out.__dict__.update(fresh.__dict__)
        out.erases = self.erases
        out.meta_bytes = self.meta_bytes
        return out


class _LfsFile:
    def __init__(self, flash, f, name):
        self._fl = flash
        self._f = f
        self._name = name
        self._session = None  # position where the open write session began
        self._hi = 0          # end of what this handle wrote
        self._dirty = False   # written since the last sync (lfs LFS_F_DIRTY)

    def _size(self):
        on = self._fl.size(self._name) if self._fl.exists(self._name) else 0
        return max(on, self._hi)

    def _end_session(self):
        if self._session is None:
            return
        size = self._size()
        if size > INLINE_MAX:
            self._fl.erases += (size - 1) // BLOCK - self._session // BLOCK + 1
        self._session = None

    def seek(self, pos, whence=0):
        if self._session is not None and pos != self._f.tell():
            self._end_session()
        return self._f.seek(pos, whence)

    def write(self, b):
        if self._session is None:
            self._session = self._f.tell()
        n = self._f.write(b)
        self._hi = max(self._hi, self._f.tell())
        self._dirty = True
        return n

    def _sync(self):
        size = self._size()
        self._end_session()
        if self._dirty:
            self._fl.meta_bytes += _round(META_COMMIT + (size if size <= INLINE_MAX else 0))
        self._dirty = False

    def flush(self):
        self._sync()
        return self._f.flush()

    def close(self):
        self._sync()
        return self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


assert _FakeFile  # the wrapped class; imported to fail loudly if it moves
