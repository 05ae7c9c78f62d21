"""A node's identity on its flash: (node id, incarnation) (docs/incarnation.md).

File ``raft.id`` beside the node's other flash files, 14 bytes ``<IHII``:
magic, node id, incarnation, crc32 of the first 10 bytes. Written once, to
a temporary name then renamed, so it exists whole or not at all.
Provisioning gives a founder the incarnation the cluster file binds it to:
tools/ops/cluster.py writes the file into a data folder, and a node file
made for a first boot carries it as "inc" (adopted here). A node that finds
no identity and is given none (a wiped flash, a re-flashed board) makes a
fresh random one: a new incarnation, which the configuration does not know
until the leader's REJOIN, so it cannot vote with a log it lost.
"""
import binascii
import os
import struct

from raftio.fs import CorruptStorage, replace

NAME = "raft.id"
_MAGIC = 0x31444952  # "RID1"
# Incarnations stay below 2**30: a small int on a 32-bit board.
MAX_INC = 0x3FFFFFFF


def load(fs, nid):
    """The incarnation stored for node nid, or 0 if none (or torn)."""
    if not fs.exists(NAME) or fs.size(NAME) != 14:
        return 0
    f = fs.open(NAME, "rb")
    b = f.read(14)
    f.close()
    magic, who, inc, crc = struct.unpack("<IHII", b)
    if magic != _MAGIC or binascii.crc32(b[:10]) & 0xFFFFFFFF != crc or not inc:
        return 0
    if who != nid:
        raise CorruptStorage("identity: this flash is node %d's, not %d's" % (who, nid))
    return inc


def save(fs, nid, inc):
    b = struct.pack("<IHI", _MAGIC, nid, inc)
    f = fs.open(NAME + ".tmp", "wb")
    f.write(b + struct.pack("<I", binascii.crc32(b) & 0xFFFFFFFF))
    f.flush()
    f.close()
    replace(fs, NAME + ".tmp", NAME)


def fresh():
    """A random incarnation in 1..MAX_INC."""
    return struct.unpack("<I", os.urandom(4))[0] & MAX_INC or 1


def ensure(fs, nid, adopt=0):
    """The node's incarnation; if it has none, adopt (the node file's
    provisioning) or a new random one, written."""
    inc = load(fs, nid)
    if not inc:
        inc = adopt or fresh()
        save(fs, nid, inc)
    return inc
