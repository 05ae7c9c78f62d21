# mpraft: host-only
"""An in-memory flash with a power-cut budget, implementing the raftio.fs interface.

Model (the harsher of the two the brief allows, on purpose):
1. Written bytes sit in the open file's buffer and reach "flash" only on
   flush() or close(), in the order they were written. Data never flushed is
   lost at a power cut, even if later data in ANOTHER file was flushed.
2. Every byte that reaches flash spends one unit of the budget. With
   ``cut_after_bytes=K`` exactly K more bytes land; the next byte lands half
   old, half new (a torn byte), then PowerCut is raised, and every later
   operation on this fake or its files raises PowerCut too. With
   ``torn=False`` the cut is clean instead: exactly K bytes land and nothing
   of the next one. Sweeps run both, since a torn byte usually breaks a CRC
   that a clean cut on the same boundary would leave intact (the cut tests
   caught a stale log entry revived by a clean cut right after its magic).
3. Metadata operations (create/truncate via open 'wb', rename, remove) are
   atomic and spend one unit each, so cuts just before and just after them are
   enumerated too. A rename replaces its target (littlefs, POSIX) unless
   ``rename_replaces=False`` (FAT: rename onto an existing file fails).
4. ``flushes`` counts flush() calls on files of this fake that had bytes
   pending (close() included), so tests can check how often storage syncs.
5. ``reboot()`` returns a fresh fake holding what reached flash, with no cut
   scheduled (or a new one). It may be called at any moment: unflushed data is
   dropped, as a power loss would.
"""


class PowerCut(Exception):
    pass


def _fs_error(msg):
    return OSError(2, msg)


class FakeFlash:
    def __init__(self, cut_after_bytes=None, files=None, rename_replaces=True, torn=True):
        self.budget = cut_after_bytes
        self.torn = torn
        self.files = files if files is not None else {}  # name -> bytearray (what reached flash)
        self.rename_replaces = rename_replaces
        self.dead = False
        self.landed = 0  # bytes + metadata units that reached flash
        self.flushes = 0

    # -- budget ------------------------------------------------------------
    def _alive(self):
        if self.dead:
            raise PowerCut("flash is off")

    def _spend_meta(self):
        self._alive()
        if self.budget is not None:
            if self.budget < 1:
                self.dead = True
                raise PowerCut("cut before metadata op")
            self.budget -= 1
        self.landed += 1

    def _landing(self, n):
        """How many of n bytes reach flash before the power goes."""
        self._alive()
        return n if self.budget is None or self.budget >= n else self.budget

    def _landed(self, ok, n, what):
        """Account ok bytes of n landed; if that was short, the power is cut."""
        self.landed += ok
        if ok < n:
            self.budget = 0
            self.dead = True
            raise PowerCut("cut after %d of %d bytes%s" % (ok, n, what))
        if self.budget is not None:
            self.budget -= n

    def _program(self, name, pos, data):
        """Write data at pos of file name through the budget."""
        buf = self.files[name]
        n = len(data)
        ok = self._landing(n)
        end = pos + ok
        if end > len(buf):
            buf.extend(bytes(end - len(buf)))
        buf[pos:end] = data[:ok]
        if ok < n and self.torn:
            if end == len(buf):
                buf.append(0)
            old = buf[end]
            buf[end] = (old & 0xF0) | (data[ok] & 0x0F)
        self._landed(ok, n, "")

    # -- fs interface --------------------------------------------------------
    def open(self, name, mode):
        self._alive()
        if mode == "wb":
            self._spend_meta()
            self.files[name] = bytearray()
            return _FakeFile(self, name, True)
        if name not in self.files:
            raise _fs_error("no such file: " + name)
        if mode == "rb":
            return _FakeFile(self, name, False)
        if mode == "r+b":
            return _FakeFile(self, name, True)
        raise ValueError("fakeflash: unsupported mode " + mode)

    def rename(self, src, dst):
        self._alive()
        if src not in self.files:
            raise _fs_error("no such file: " + src)
        if dst in self.files and not self.rename_replaces:
            raise OSError(17, "exists: " + dst)
        self._spend_meta()
        self.files[dst] = self.files.pop(src)

    def remove(self, name):
        self._alive()
        if name not in self.files:
            raise _fs_error("no such file: " + name)
        self._spend_meta()
        del self.files[name]

    def exists(self, name):
        self._alive()
        return name in self.files

    def size(self, name):
        self._alive()
        if name not in self.files:
            raise _fs_error("no such file: " + name)
        return len(self.files[name])

    def listdir(self):
        self._alive()
        return sorted(self.files)

    def reboot(self, cut_after_bytes=None, reuse=False):
        """A fresh fake holding what reached flash. With reuse=True this one
        dies and hands its buffers over instead of copying them (the
        simulator reboots often, and MicroPython's heap does not compact)."""
        if reuse:
            self.dead = True
            files = self.files
            self.files = {}
        else:
            files = {}
            for k in self.files:
                files[k] = bytearray(self.files[k])
        return FakeFlash(cut_after_bytes, files, self.rename_replaces, self.torn)


class _FakeFile:
    def __init__(self, flash, name, writable):
        self.flash = flash
        self.name = name
        self.writable = writable
        self.pos = 0
        self.pending = []  # (pos, bytes) written but not yet flushed
        self.closed = False

    def _ok(self):
        self.flash._alive()
        if self.closed:
            raise ValueError("fakeflash: I/O on closed file " + self.name)

    def _view(self, start=0, end=-1):
        """Bytes [start, end) of the file as this handle sees it (end -1: to
        the end): what reached flash with the pending writes laid over it.
        Only the window is copied: a copy of the whole file per read left a
        2 MB MicroPython heap too fragmented for the simulator."""
        size = self._size()
        data = self.flash.files[self.name]
        end = size if end < 0 else min(end, size)
        if end <= start:
            return b""
        out = bytearray(data[start:end])
        if len(out) < end - start:
            out.extend(bytes(end - start - len(out)))
        for pos, b in self.pending:
            lo = max(pos, start)
            hi = min(pos + len(b), end)
            if lo < hi:
                out[lo - start:hi - start] = b[lo - pos:hi - pos]
        return out

    def _size(self):
        data = self.flash.files.get(self.name)
        if data is None:
            raise _fs_error("file vanished: " + self.name)
        size = len(data)
        for pos, b in self.pending:
            size = max(size, pos + len(b))
        return size

    def seek(self, pos, whence=0):
        self._ok()
        if whence == 2:
            pos += self._size()
        elif whence == 1:
            pos += self.pos
        self.pos = pos
        return pos

    def tell(self):
        return self.pos

    def read(self, n=-1):
        self._ok()
        out = bytes(self._view(self.pos, -1 if n is None or n < 0 else self.pos + n))
        self.pos += len(out)
        return out

    def readinto(self, buf):
        b = self.read(len(buf))
        buf[:len(b)] = b
        return len(b)

    def write(self, b):
        self._ok()
        if not self.writable:
            raise OSError(9, "fakeflash: file not open for writing: " + self.name)
        b = bytes(b)
        self.pending.append((self.pos, b))
        self.pos += len(b)
        return len(b)

    def flush(self):
        self._ok()
        if self.pending:
            self.flash.flushes += 1
        while self.pending:
            pos, b = self.pending.pop(0)
            self.flash._program(self.name, pos, b)

    def close(self):
        if self.closed:
            return
        self.flush()
        self.closed = True


class NorViolation(Exception):
    """A program onto flash bytes that are not erased (a bug in the caller)."""


_ERASED = 0xFF


class FakeBlockDev:
    """A raw NOR flash partition on a FakeFlash, with MicroPython's block-device
    protocol (esp32.Partition, rp2.Flash): ``readblocks(n, buf, off)``,
    ``writeblocks(n, buf, off)`` (program without erase), ``writeblocks(n,
    buf)`` (erase the block, then program), ``ioctl(4|5|6, n)`` (block
    count, block size, erase block n).

    NOR semantics, enforced: erase sets a whole block to 0xFF; a program
    clears bits only (the result is old AND new); a buffer byte other than
    0xFF landing on a byte that is not 0xFF raises NorViolation (re-writing
    programmed bytes is always a bug in the log; 0xFF fill is a no-op, so a
    page-aligned program may carry it over earlier records). ``prog`` is the
    program unit: offset and length must be multiples of it (rp2's
    flash_range_program works in 256-byte pages; esp32's esp_partition_write
    takes any byte range, prog=1).

    Its bytes are the FakeFlash file ``name`` (created erased), so a reboot
    of the FakeFlash carries them and a power cut spends the same budget:
    one unit per programmed byte; an erase costs one unit. A cut inside a
    program lands the bytes before it, tears the next one (half its bits
    programmed) and, when torn, programs a scattered subset of the rest of
    that call's bytes (a page program is not sequential on real NOR). A cut
    on an erase with torn=True leaves the block half erased.
    ``erases[n]`` counts erases of block n; ``programmed`` the bytes written.
    """

    def __init__(self, flash, name, nblocks, block_size=4096, prog=1):
        self.flash = flash
        self.name = name
        self.nblocks = nblocks
        self.bs = block_size
        self.prog = prog
        if name not in flash.files:
            flash.files[name] = bytearray(b"\xff" * (nblocks * block_size))
        elif len(flash.files[name]) != nblocks * block_size:
            raise ValueError("fakeflash: partition %s is %d bytes, not %d x %d" % (
                name, len(flash.files[name]), nblocks, block_size))
        self.erases = [0] * nblocks
        self.programmed = 0

    def total_erases(self):
        return sum(self.erases)

    def _data(self):
        self.flash._alive()
        return self.flash.files[self.name]

    def _range(self, n, off, ln):
        if not 0 <= n < self.nblocks or off < 0 or off + ln > (self.nblocks - n) * self.bs:
            raise OSError(22, "fakeflash: block %d offset %d length %d outside %s" % (n, off, ln, self.name))
        return n * self.bs + off

    def readblocks(self, n, buf, off=0):
        data = self._data()
        p = self._range(n, off, len(buf))
        buf[:] = data[p:p + len(buf)]

    def writeblocks(self, n, buf, off=None):
        if off is None:
            for k in range(-(-len(buf) // self.bs)):
                self.ioctl(6, n + k)
            off = 0
        data = self._data()
        ln = len(buf)
        p = self._range(n, off, ln)
        if p % self.prog or ln % self.prog:
            raise NorViolation("%s: program of %d bytes at %d is not aligned to %d" % (
                self.name, ln, p, self.prog))
        for j in range(ln):
            if buf[j] != _ERASED and data[p + j] != _ERASED:
                raise NorViolation("%s: program at byte %d (block %d offset %d) onto a byte not erased" % (
                    self.name, p + j, (p + j) // self.bs, (p + j) % self.bs))
        fl = self.flash
        ok = fl._landing(ln)
        for j in range(ok):
            data[p + j] &= buf[j]
        self.programmed += ok
        if ok < ln and fl.torn:
            data[p + ok] &= buf[ok] | 0x0F
            h = (p * 7 + ok) & 0xFF
            for j in range(ok + 1, ln):
                h = (h * 73 + 41) & 0xFF
                if h & 1:
                    data[p + j] &= buf[j]
        fl._landed(ok, ln, " programmed")

    def ioctl(self, op, arg):
        if op == 4:
            return self.nblocks
        if op == 5:
            return self.bs
        if op == 6:
            data = self._data()
            p = self._range(arg, 0, self.bs)
            fl = self.flash
            if fl.budget is not None and fl.budget < 1:
                if fl.torn:
                    data[p:p + self.bs // 2] = b"\xff" * (self.bs // 2)
                fl.dead = True
                raise PowerCut("cut during erase of block %d" % arg)
            fl._spend_meta()
            data[p:p + self.bs] = b"\xff" * self.bs
            self.erases[arg] += 1
            return 0
        return None
