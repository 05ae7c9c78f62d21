"""The leader cuts snapshot chunks from the membership header and the stored
snapshot data without building the blob (thesis 5 / etcd MsgSnap): the chunks,
joined, are exactly encode_blob(snap), for chunk sizes smaller than the
header, straddling it, and larger than the whole blob."""
from raft import msg as M
from raft.config import Config
from raft.core import Raft
from raft.memstorage import MemoryStorage
from raft.snapblob import encode_blob


def _leader_with_snapshot(chunk, data):
    st = MemoryStorage([1, 2, 3])
    # An installed snapshot at index 5 with three voters: header 4 + 2 * 3 bytes.
    from raft.storage import Snapshot
    st.apply_snapshot(Snapshot(5, 1, [1, 2, 3], [], data))
    r = Raft(Config(1, [1, 2, 3], election_tick=10, snapshot_chunk=chunk), st, lambda n: 0)
    r.become_candidate()
    r.become_leader()
    r.msgs = []
    return r, st.snapshot()


def _chunks(r, to):
    pr = r.prs[to]
    assert r._start_snapshot(to, pr)
    out = []
    for _ in range(10000):
        m = r.msgs.pop()
        assert m.type == M.SNAP and m.to == to and m.hint == pr.snap_offset
        out.append(m)
        if m.flags & M.FLAG_DONE:
            break
        pr.snap_offset += len(m.data)
        assert r._send_snapshot_chunk(to, pr)
    return out


def test_chunks_join_to_the_blob_for_every_chunk_size():
    data = bytes(range(256)) * 3
    for chunk in (1, 3, 7, 10, 11, 64, 1200):
        r, snap = _leader_with_snapshot(chunk, data)
        blob = encode_blob(snap)
        msgs = _chunks(r, 2)
        joined = b"".join(bytes(m.data) for m in msgs)
        assert joined == blob, chunk
        assert all(m.ctx == len(blob) for m in msgs)
        assert [m.flags & M.FLAG_DONE for m in msgs].count(M.FLAG_DONE) == 1
        assert all(len(m.data) == chunk for m in msgs[:-1]), chunk
        assert len(msgs) == (len(blob) + chunk - 1) // chunk


def test_a_snapshot_smaller_than_one_chunk_is_one_message():
    r, snap = _leader_with_snapshot(1200, b"tiny")
    msgs = _chunks(r, 3)
    assert len(msgs) == 1 and bytes(msgs[0].data) == encode_blob(snap)
