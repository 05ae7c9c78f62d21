"""The snapshot as transferred: membership header + state machine image."""
import struct

from raft.errors import DecodeError
from raft.storage import Snapshot


def blob_head(snap):
    """The membership header that precedes snap.data in the blob."""
    nv = len(snap.voters)
    nl = len(snap.learners)
    head = bytearray(4 + 2 * (nv + nl))
    struct.pack_into("<HH", head, 0, nv, nl)
    p = 4
    for v in snap.voters + snap.learners:
        struct.pack_into("<H", head, p, v)
        p += 2
    return bytes(head)


def encode_blob(snap):
    return blob_head(snap) + snap.data


def decode_blob(index, term, blob):
    if len(blob) < 4:
        raise DecodeError("snapshot blob too short")
    nv, nl = struct.unpack_from("<HH", blob, 0)
    p = 4 + 2 * (nv + nl)
    if p > len(blob):
        raise DecodeError("snapshot membership truncated")
    ids = [struct.unpack_from("<H", blob, 4 + 2 * k)[0] for k in range(nv + nl)]
    # One copy, not two (a slice of a bytearray is itself a copy).
    return Snapshot(index, term, ids[:nv], ids[nv:], bytes(memoryview(blob)[p:]))
