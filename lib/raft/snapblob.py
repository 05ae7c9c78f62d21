# mpraft: lazy snap
"""The snapshot as transferred: membership header + state machine image.

Header: ``<HHHH`` voter, learner and outgoing-voter counts and flags (bit 0:
auto_leave; bit 1: incarnations follow), then the ids as u16: voters,
learners, voters_out; then, with bit 1, Snapshot.incs: one u32 per id.
"""
import struct

from raft.errors import DecodeError
from raft.storage import Snapshot


def blob_head(snap):
    """The membership header that precedes snap.data in the blob."""
    nv = len(snap.voters)
    nl = len(snap.learners)
    no = len(snap.voters_out)
    ni = len(snap.incs)
    head = bytearray(8 + 2 * (nv + nl + no) + 4 * ni)
    struct.pack_into("<HHHH", head, 0, nv, nl, no,
                     (1 if snap.auto_leave else 0) | (2 if ni else 0))
    p = 8
    for v in snap.voters + snap.learners + snap.voters_out:
        struct.pack_into("<H", head, p, v)
        p += 2
    for v in snap.incs:
        struct.pack_into("<I", head, p, v)
        p += 4
    return bytes(head)


def encode_blob(snap):  # mpraft: host-only
    return blob_head(snap) + snap.data


def decode_blob(index, term, blob):
    if len(blob) < 8:
        raise DecodeError("snapshot blob too short")
    nv, nl, no, fl = struct.unpack_from("<HHHH", blob, 0)
    ni = nv + nl + no
    p = 8 + 2 * ni
    q = p + (4 * ni if fl & 2 else 0)
    if q > len(blob):
        raise DecodeError("snapshot membership truncated")
    ids = [struct.unpack_from("<H", blob, 8 + 2 * k)[0] for k in range(ni)]
    incs = [struct.unpack_from("<I", blob, p + 4 * k)[0] for k in range((q - p) // 4)]
    # One copy, not two (a slice of a bytearray is itself a copy).
    return Snapshot(index, term, ids[:nv], ids[nv:nv + nl], bytes(memoryview(blob)[q:]),
                    ids[nv + nl:], bool(fl & 1), incs)
