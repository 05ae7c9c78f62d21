"""A thin file-system wrapper, so tests can swap in a fake flash.

Storage code touches files only through an ``FS`` object: ``open(name, mode)``
(modes 'rb', 'r+b', 'wb'), ``rename``, ``remove``, ``exists``, ``size`` and
``listdir``. File objects need ``seek``, ``read``, ``readinto``, ``write``,
``flush`` and ``close``. MicroPython has no fsync or truncate, so the formats
built on this rely only on write + flush and an atomic rename.

The typed storage errors are re-exported here, as every format module raises them.
"""
import os

# Defined with the storage interface (raft/errors.py), so the engine can
# catch StorageFull without importing file-system code.
from raft.errors import CorruptStorage, StorageError, StorageFull  # noqa: F401


class RealFS:
    """Files under one directory of the real file system (board flash or host disk)."""

    def __init__(self, root="."):
        self.root = root.rstrip("/") or "/"
        if not self._isdir(self.root):
            os.mkdir(self.root)

    def _isdir(self, path):
        try:
            return (os.stat(path)[0] & 0x4000) != 0
        except OSError:
            return False

    def path(self, name):
        return self.root + "/" + name

    def open(self, name, mode):
        return open(self.path(name), mode)

    def rename(self, src, dst):
        os.rename(self.path(src), self.path(dst))

    def remove(self, name):
        os.remove(self.path(name))

    def exists(self, name):
        try:
            os.stat(self.path(name))
            return True
        except OSError:
            return False

    def size(self, name):
        return os.stat(self.path(name))[6]

    def listdir(self):  # mpraft: host-only (tests and tools list the folder)
        return sorted(os.listdir(self.root))


def replace(fs, src, dst):
    """Rename src over dst. Where rename refuses an existing target (FAT), remove
    dst first; readers then adopt a complete src when dst is missing."""
    try:
        fs.rename(src, dst)
    except OSError:
        if not fs.exists(dst):
            raise
        fs.remove(dst)
        fs.rename(src, dst)
