# mpraft: lazy snap
"""Snapshot transfer in chunks (thesis 5, etcd MsgSnap; DESIGN.md "Wire").

Functions of the raft.core.Raft they are given (self), imported on first
use (Raft's methods of the same names call in): a node that never sends or
receives a snapshot never loads this module (docs/memory.md). The leader
sends a follower whose next entry is compacted away the storage's snapshot,
encoded (snapblob.py) when the transfer starts, in chunks of
cfg.snapshot_chunk bytes; the follower answers each chunk with the next
offset it wants, so a lost chunk costs one chunk and the heartbeat timer
(Raft._tick_heartbeat) resends an unanswered one. The blob carries the
configuration, installed by restore(). Fields (Raft.__init__):
  _snap_head, _snap_meta  leader: the blob's membership header and the
                          (index, term) of the snapshot in flight; set by
                          _start_snapshot before any progress enters the
                          snapshot state. Chunks are cut from the header and
                          the storage's snapshot data, so the leader never
                          holds a second copy of the state machine image.
  _rx_snap                follower: [index, term, total, bytes so far] of the
                          snapshot being received, or None (Raft.__init__)
"""
from raft import events as EV
from raft import msg as M
from raft.snapblob import blob_head, decode_blob



def _start_snapshot(self, to, pr):
    snap = self.log.storage.snapshot()
    if snap.index == 0:
        return False
    pr.become_snapshot(snap.index)
    self._ev(EV.SNAP_SENT, to, snap.index)
    self._snap_head = blob_head(snap)
    self._snap_meta = (snap.index, snap.term)
    return _send_snapshot_chunk(self, to, pr)


def _send_snapshot_chunk(self, to, pr):
    snap = self.log.storage.snapshot()
    if snap.index != pr.pending_snapshot or self._snap_meta[0] != snap.index:
        # A newer snapshot replaced the one in flight: restart with it.
        pr.become_probe()
        return False
    head = self._snap_head
    h = len(head)
    total = h + len(snap.data)
    off = pr.snap_offset
    n = self.cfg.snapshot_chunk
    # blob[off:off + n] of blob = head + data, without building the blob.
    if off < h:
        chunk = head[off:off + n]
        if len(chunk) < n:
            chunk += bytes(snap.data[:n - len(chunk)])
    else:
        chunk = snap.data[off - h:off - h + n]
    done = M.FLAG_DONE if off + len(chunk) >= total else 0
    self._send(M.Message(M.SNAP, to, self.id, self.term, snap.term, snap.index,
                         hint=off, ctx=total, flags=done, data=chunk))
    pr.snap_sent_tick = self.ticks
    return True


def _handle_snap_chunk(self, m):
    log = self.log
    if m.index <= log.committed:
        # Already have it: tell the leader where we are.
        self._send(M.Message(M.APP_RESP, m.frm, self.id, self.term, index=log.committed))
        return
    rx = self._rx_snap
    if rx is None or rx[0] != m.index or rx[1] != m.log_term or rx[2] != m.ctx:
        if m.hint != 0:
            self._send(M.Message(M.SNAP_RESP, m.frm, self.id, self.term, index=m.index,
                                 hint=0, flags=M.FLAG_REJECT))
            return
        rx = self._rx_snap = [m.index, m.log_term, m.ctx, bytearray()]
    buf = rx[3]
    if m.hint != len(buf):
        # Out of order or duplicate: ask for the next byte we need.
        self._send(M.Message(M.SNAP_RESP, m.frm, self.id, self.term, index=m.index,
                             hint=len(buf), flags=M.FLAG_REJECT))
        return
    buf.extend(m.data)
    if not (m.flags & M.FLAG_DONE):
        self._send(M.Message(M.SNAP_RESP, m.frm, self.id, self.term, index=m.index,
                             hint=len(buf)))
        return
    self._rx_snap = None
    try:
        snap = decode_blob(m.index, m.log_term, buf)
    except Exception:
        self._send(M.Message(M.SNAP_RESP, m.frm, self.id, self.term, index=m.index,
                             hint=0, flags=M.FLAG_REJECT))
        return
    self.restore(snap)
    self._send(M.Message(M.APP_RESP, m.frm, self.id, self.term, index=log.last))


def restore(self, snap):
    """Install a snapshot from the leader (the driver persists and applies it)."""
    log = self.log
    if snap.index <= log.committed:
        return False
    if log.match_term(snap.index, snap.term):
        # We already have the entry: just fast-forward the commit index.
        log.commit_to(snap.index)
        return False
    log.restore(snap)
    self._ev(EV.SNAP_INSTALLED, snap.index, 0)
    if snap.voters:
        from raft.membership import _load_incs
        _load_incs(self, snap)
        self._switch_config((tuple(sorted(snap.voters)), tuple(sorted(snap.voters_out)),
                             tuple(sorted(snap.learners)), snap.auto_leave))
    return True
