# mpraft: lazy admin
"""Admin requests and status: what an operator asks a node, rarely.

Functions of the Server or Engine they are given (self), imported on first
use by Server._on_admin and Engine.status: a node nobody administers or
queries never loads them (docs/memory.md). The admin requests are
leadership transfer and membership changes (raftio/wire.py A_*); status is
the dict raftctl's status and endpoint commands show.
"""
from raft import confchange as CC
from raft.core import LEADER, ROLE_NAMES
from raft.errors import DecodeError
from raftio import wire
from raftio.frame import DROP_MALFORMED


def on_admin(self, buf, off, n, addr):
    """Server._on_admin: leadership transfer or a membership change."""
    try:
        rid, op, nid, ctx = wire.decode_admin(buf, off, n)
    except DecodeError:
        self.counters.slots[DROP_MALFORMED] += 1
        return
    eng = self.engine
    r = eng.core
    if r.role != LEADER:
        self._reply((addr, rid), wire.NOT_LEADER, r.lead, b"")
        return
    if op == wire.A_JOINT:
        from raft.confchange import decode
        try:
            op, nid, ctx = decode(ctx)
        except DecodeError:
            op = 0
        if op != CC.JOINT:
            self._reply((addr, rid), wire.BAD_REQUEST, 0, b"")
            return
        eng.propose_conf_change(op, nid, ctx, (addr, rid))
        return
    # What the leader can tell at once is refused with its reason (wire.R_*).
    v = r.voters
    why = 0
    if op == wire.A_TRANSFER:
        why = 0 if nid in v else wire.R_NOT_VOTER
    elif op == wire.A_ADD_VOTER:
        why = wire.R_ALREADY_VOTER if nid in v else 0
    elif op == wire.A_ADD_LEARNER:
        why = wire.R_ALREADY_LEARNER if nid in r.learners else 0
    elif op == wire.A_REMOVE:
        if nid not in v and nid not in r.learners:
            why = wire.R_NOT_MEMBER
        elif v == (nid,):
            why = wire.R_LAST_VOTER
    if why:
        self._reply((addr, rid), wire.BAD_REQUEST, 0, bytes((why,)))
    elif op == wire.A_TRANSFER:
        # OK means started: the caller watches status for the new leader.
        eng.transfer_leader(nid)
        self._reply((addr, rid), wire.OK, 0, b"")
    else:
        # Membership: answered OK once applied, like a put.
        eng.propose_conf_change(op - 1, nid, ctx, (addr, rid))


def node_status(self):
    """Engine.status: the node's state as a dict (JSON for status queries)."""
    r = self.core
    log = r.log
    if r.id in r.learners:
        role = "learner"
    else:
        role = ROLE_NAMES[r.role]
        if role == "pre-candidate":
            role = "candidate"
    st = {"id": self.id, "role": role, "term": r.term, "vote": r.vote,
          "leader": r.lead, "commit": log.committed, "applied": log.applied,
          "first": log.snap_index + 1, "last": log.last,
          "snapshot": self.storage.snapshot().index, "pending": len(self._pending),
          "drops": self.counters.as_dict(),
          "voters": list(r.voters), "learners": list(r.learners),
          "voters_out": list(r.voters_out),
          "uptime_ms": self.clock.ticks_diff(self.clock.ticks_ms(), self.started),
          "state": self.halted or "ok"}
    if r.incs or r.inc:
        # docs/incarnation.md: a wiped node says why it does not vote.
        st["inc"] = r.inc
        st["incs"] = {str(p): r.incs[p] for p in r.incs}
        st["rejoin"] = list(r.rejoin)
        st["foreign"] = r.foreign
        if r.mismatch or r.id in r.rejoin:
            st["role"] = "rejoining"
        if r.mismatch:
            st["rejoining"] = "incarnation %d, the membership knows %d" % (r.inc, r.mismatch)
    try:
        st["keys"] = len(self.machine)
    except TypeError:
        pass
    for k in ("proposed", "applied", "reads", "snapshots", "forced", "not_leader", "busy",
              "retry", "halted"):
        st["n_" + k] = self.stats[k]
    if r.role == LEADER:
        prs = {}
        for p in r.peers:
            if p != r.id:
                prs[str(p)] = r.prs[p].match
        st["match"] = prs
    return st
