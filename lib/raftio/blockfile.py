# mpraft: optional
"""A file standing in for a raw flash partition on the unix port (the
virtual board), for raftio/rawlog.py: the block-device protocol of
esp32.Partition over a file, erased bytes 0xFF, a program ANDs as NOR does.
Loaded only there, so a board's RAM never holds it."""
try:
    from raft.errors import StorageError
except ImportError:  # compiled apart, beside the merged firmware
    from mpraft import StorageError


class FileBlockDev:
    """A file standing in for a raw partition on the unix port (the virtual
    board): erased bytes are 0xFF and a program ANDs, as on NOR flash."""

    def __init__(self, path, nblocks, block_size=4096):
        self.bs = block_size
        self.nb = nblocks
        try:
            self.f = open(path, "r+b")
        except OSError:
            self.f = open(path, "w+b")
            for _ in range(nblocks):
                self.f.write(b"\xff" * block_size)
            self.f.flush()
        self.f.seek(0, 2)
        if self.f.tell() != nblocks * block_size:
            raise StorageError("rawlog: %s is %d bytes, expected %d blocks of %d" % (
                path, self.f.tell(), nblocks, block_size))

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.bs + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=0):
        old = bytearray(len(buf))
        self.readblocks(n, old, off)
        for j in range(len(buf)):
            old[j] &= buf[j]
        self.f.seek(n * self.bs + off)
        self.f.write(old)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.nb
        if op == 5:
            return self.bs
        if op == 6:
            self.f.seek(arg * self.bs)
            self.f.write(b"\xff" * self.bs)
            self.f.flush()
            return 0
