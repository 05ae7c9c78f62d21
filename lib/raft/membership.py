# mpraft: lazy conf
"""Membership changes: one server at a time (thesis 4.1, etcd ConfChange v1)
and joint consensus (thesis 4.3, etcd ConfChangeV2).

Functions of the raft.core.Raft they are given (self), imported on first
use: a node that never changes its membership never loads this module
(docs/memory.md). It owns proposing a change and applying a committed one
(etcd semantics: a change takes effect when applied; RawNode.advance calls
Raft._advance_conf in log order). Raft keeps what runs per Ready or per
message: conf(), _conf_between, _conf_changes, _set_conf and
_maybe_auto_leave. The safety invariants (Apply, Campaign, Append; see
docs/core.md) are enforced partly here (propose_conf_change) and partly in
core.py: become_leader sets _pending_conf, hup refuses to campaign over an
unapplied change, and _handle_append holds back a conf entry until the
previous one's commit is durable. Joint consensus needs two more things:
every quorum counts both halves (core.py: maybe_commit, elections,
check-quorum; readonly.py), and the leader leaves a joint conf on its own
once the entry that entered it is applied (Raft._maybe_auto_leave, called by
RawNode.advance). Fields, set in Raft.__init__ with their invariants:
_pending_conf, _durable_commit, bad_conf_entries, voters, voters_out,
learners, auto_leave, peers, _voter_ids, prs, incs, rejoin, mismatch,
_retired, foreign.

Incarnations (docs/incarnation.md): _foreign handles a message from an
incarnation the configuration does not bind (the leader proposes REJOIN),
_apply_conf keeps incs and rejoin with the configuration, and
_maybe_promote (RawNode.advance, while someone rejoins) makes a caught-up
rejoined learner a voter again, one change at a time.
"""
import struct

from raft import confchange as CC
from raft import msg as M
from raft.errors import Compacted, ConfigError, NotLeader, ProposalDropped
from raft.progress import PROBE, Progress
from raft.roles import LEADER
from raft.storage import ENTRY_CONF



def propose_conf_change(self, op, arg, ctx=b""):
    """Append an ENTRY_CONF entry; returns its index. op ADD_VOTER,
    ADD_LEARNER or REMOVE with arg a node id (confchange.encode), or
    JOINT with arg (transition, steps) (confchange.encode_v2, etcd
    ConfChangeV2). It takes effect when applied (RawNode.advance).
    Raises NotLeader, ProposalDropped (change pending, transfer) or
    ConfigError (no-op, last voter, bad op/id/ctx, joint conf)."""
    if self.role != LEADER:
        raise NotLeader(self.lead)
    if self._pending_conf > self.log.applied:
        raise ProposalDropped("conf change %d not applied yet" % self._pending_conf)
    if op == CC.JOINT:
        arg = (arg[0], tuple(arg[1]))
        data = CC.encode_v2(arg[0], arg[1], ctx)
    else:
        data = CC.encode(op, arg, ctx)
    CC.apply_conf(self.conf(), op, arg)
    # propose() refuses during a leadership transfer, too.
    i = self.propose(data, ENTRY_CONF)
    self._pending_conf = i
    return i


def _advance_conf(self, changes):
    """RawNode.advance: apply a Ready's conf changes, in log order. That
    Ready carried the hard state with sync_hard_state set, so each one's
    commit is durable now (_handle_append's "Append" rule counts on it)."""
    for c in changes:
        _apply_conf(self, c[1], c[2], c[0], c[3])
        self._durable_commit = c[0]


def _apply_conf(self, op, arg, index, ctx=b""):
    """Apply the committed conf change at index, in log order. A change
    that no longer applies is ignored by every node alike."""
    try:
        c = CC.apply_conf(self.conf(), op, arg)
    except ConfigError:
        return
    incs = self.incs
    rj = self.rejoin
    if op == CC.REJOIN:
        old = incs.get(arg, 0)
        if old:
            self._retired[arg] = old
        incs[arg] = struct.unpack("<I", ctx)[0]
        if arg in self.voters or arg in rj:
            rj = tuple(p for p in rj if p != arg) + (arg,)
        pr = self.prs.get(arg)
        if pr is not None:
            # Whatever the old incarnation acknowledged is gone.
            pr.match = 0
            pr.reset(PROBE, self.log.last + 1)
    else:
        # Any other change of a member ends its rejoin; removing it (or
        # a demotion by an operator) unbinds it.
        for o, p in (arg[1] if op == CC.JOINT else ((op, arg),)):
            rj = tuple(x for x in rj if x != p)
            if o != CC.ADD_VOTER:
                incs.pop(p, None)
    self._set_incs(incs, rj)
    _switch_config(self, c, index)


def _load_incs(self, snap):
    """incs and rejoin from a snapshot (Snapshot.incs)."""
    ids = snap.voters + snap.learners + snap.voters_out
    d = {}
    rj = ()
    for k in range(len(snap.incs)):
        v = snap.incs[k]
        if v & 0x7FFFFFFF:
            d[ids[k]] = v & 0x7FFFFFFF
        if v >> 31 and ids[k] not in rj:
            rj += (ids[k],)
    self._set_incs(d, rj)


def snap_incs(self):
    """Snapshot.incs for the applied configuration."""
    return tuple(self.incs.get(p, 0) | (0x80000000 if p in self.rejoin else 0)
                 for p in self.voters + self.learners + self.voters_out)


def _foreign(self, m):
    """m comes from an incarnation of m.frm that the configuration does
    not bind to it: a wiped node, or a late datagram of one replaced.
    It counts for nothing; a leader hearing a new incarnation in its
    term stops trusting that peer's progress and proposes REJOIN (one
    change at a time: refused ones are retried at its next message)."""
    p = m.frm
    pr = self.prs.get(p)
    if (self.role != LEADER or pr is None or m.term != self.term or not m.commit
            or self._retired.get(p) == m.commit):
        return
    pr.match = 0
    pr.reset(PROBE, self.log.last + 1)
    try:
        propose_conf_change(self, CC.REJOIN, p, struct.pack("<I", m.commit))
    except (ProposalDropped, ConfigError):
        pass


def _maybe_promote(self):
    # A rejoined learner that caught up with the commit index becomes a
    # voter again (etcd's promote-when-caught-up rule for learners).
    if self.role != LEADER or self._pending_conf > self.log.applied:
        return
    for p in self.rejoin:
        pr = self.prs.get(p)
        if pr is not None and pr.match >= self.log.committed:
            try:
                propose_conf_change(self, CC.ADD_VOTER, p)
            except (ProposalDropped, ConfigError):
                pass
            return


def _switch_config(self, conf, index=0):
    """Install a configuration (the change applied at index, or a
    snapshot's): progress for added peers starts probing at last + 1;
    removed peers are forgotten."""
    prs = self.prs
    lead = self.role == LEADER
    self._set_conf(conf[0], conf[1], conf[2], conf[3])
    voters = self._voter_ids
    peers = self.peers
    out = lead and self.id not in voters
    for p in sorted(prs):
        if p != self.id and lead and index and (out or p not in peers):
            # Nobody will send a removed peer anything else, and a leader
            # that removed itself stops sending: tell them the change is
            # committed, so they apply it (and elect among themselves).
            _send_commit_of(self, p, index)
        if p not in peers:
            del prs[p]
    for p in peers:
        if p not in prs:
            pr = prs[p] = Progress(self.log.last + 1, self.cfg.max_inflight)
            # Not counted as dead by the next check-quorum round.
            pr.recent_active = True
    if self.lead_transferee not in voters:
        self.lead_transferee = 0
    if not lead:
        return
    if out:
        # Removed or demoted: stop leading (thesis 4.2.2), and hand over
        # to the most up-to-date voter that has the change (thesis
        # 3.10), so the cluster need not wait out an election timeout.
        best = 0
        for p in voters:
            if p != self.id and prs[p].match >= index and (
                    not best or prs[p].match > prs[best].match):
                best = p
        if best:
            self._send_timeout_now(best)
        self.become_follower(self.term, 0)
        return
    # A smaller quorum may commit more, or confirm pending reads.
    self.maybe_commit()
    self._recheck_reads()
    self._need_bcast = True


def _send_commit_of(self, to, index):
    # An empty append anchored at index: a node that holds the entry
    # commits through it; one that does not rejects, and nobody listens.
    try:
        t = self.log.term(index)
    except Compacted:
        return
    self._send(M.Message(M.APP, to, self.id, self.term, t, index, index))
