"""A candidate or stale node that receives the current leader's snapshot
steps down, installs it, and answers (thesis 5.3 / etcd handleSnapshot)."""
from raft import msg as M
from raft.config import Config
from raft.core import CANDIDATE, FOLLOWER, PRE_CANDIDATE
from raft.memstorage import MemoryStorage
from raft.rawnode import RawNode
from raft.snapblob import encode_blob
from raft.storage import Snapshot


def _node(i, pre_vote):
    return RawNode(Config(i, [1, 2, 3], election_tick=10, pre_vote=pre_vote),
                   MemoryStorage([1, 2, 3]), lambda n: 0)


def _snap_msgs(term, snap, chunk=16):
    blob = encode_blob(snap)
    out = []
    off = 0
    while off < len(blob):
        part = blob[off:off + chunk]
        done = M.FLAG_DONE if off + len(part) >= len(blob) else 0
        out.append(M.Message(M.SNAP, 3, 1, term, snap.term, snap.index, hint=off,
                             ctx=len(blob), flags=done, data=part))
        off += len(part)
    return out


def _install(n, msgs):
    for m in msgs:
        n.step(M.decode(M.encode(m)))
    rd = n.ready()
    n.advance(rd)
    return rd


def test_candidate_steps_down_on_current_term_snapshot():
    for pre_vote in (False, True):
        n = _node(3, pre_vote)
        n.campaign()
        if pre_vote:
            assert n.raft.role == PRE_CANDIDATE
            # Win the pre-vote so the node becomes a real candidate.
            n.step(M.Message(M.PREVOTE_RESP, 3, 1, n.raft.term + 1))
        assert n.raft.role == CANDIDATE
        term = n.raft.term
        n.advance(n.ready())
        snap = Snapshot(50, term, [1, 2, 3], (), b"state machine image " * 4)
        rd = _install(n, _snap_msgs(term, snap))
        r = n.raft
        assert r.role == FOLLOWER and r.lead == 1 and r.term == term
        assert rd.snapshot is not None and rd.snapshot.index == 50
        assert rd.snapshot.data == snap.data
        assert r.log.committed == 50 and r.log.last == 50
        acks = [m for m in rd.persisted_messages if m.type == M.APP_RESP]
        assert acks and acks[-1].index == 50 and not acks[-1].flags & M.FLAG_REJECT


def test_stale_follower_adopts_newer_term_from_snapshot():
    n = _node(3, True)
    snap = Snapshot(80, 4, [1, 2, 3], (), b"x" * 40)
    rd = _install(n, _snap_msgs(7, snap))
    assert n.raft.term == 7 and n.raft.lead == 1
    assert rd.hard_state[0] == 7 and rd.snapshot.index == 80


def test_lost_chunk_resumes_without_restart():
    n = _node(3, True)
    snap = Snapshot(30, 2, [1, 2, 3], (), bytes(range(200)))
    msgs = _snap_msgs(2, snap)
    for m in msgs[:3]:
        n.step(M.decode(M.encode(m)))
    rd = n.ready()
    n.advance(rd)
    # Chunk 4 is lost; chunk 5 arrives: the follower asks for chunk 4's offset.
    n.step(M.decode(M.encode(msgs[4])))
    rd = n.ready()
    n.advance(rd)
    asks = [m for m in rd.persisted_messages if m.type == M.SNAP_RESP]
    assert asks and asks[-1].hint == msgs[3].hint
    rd = _install(n, msgs[3:])
    assert rd.snapshot is not None and rd.snapshot.data == snap.data
