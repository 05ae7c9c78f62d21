"""Linearizable reads: ReadIndex and leader leases (thesis 6.4, etcd read_only.go).

A mixin of raft.core.Raft; it owns read_index() and the leader's bookkeeping
of pending reads. The fields it uses are set in Raft.__init__ and Raft._reset,
where their invariants are written:
  _read_queue    pending ReadIndex rounds [round, index, ctx, from, acks], oldest first
  _read_round    the newest round number handed out (heartbeat ctx)
  _read_waiting  (ctx, from) requests that arrived before this term's first commit
  _lease_revoked set once this leader sent TimeoutNow: no lease reads for the term
Raft calls in from step (READ_INDEX, HEARTBEAT_RESP with a ctx), maybe_commit
(_release_waiting_reads), _reset (_abort_reads) and _switch_config
(_recheck_reads). A plain class with no state of its own: MicroPython looks
methods up through the bases, so nothing per message lives here.
"""
from raft import msg as M
from raft.config import READ_LEASE
from raft.errors import NotLeader
from raft.quorum import VOTE_WON, joint_committed_index, joint_vote_result
from raft.roles import LEADER


class ReadOnly:
    def read_index(self, ctx):
        """Ask for a linearizable read point; the answer comes back as a
        read state (index, ctx) once it is safe."""
        if self.role == LEADER:
            self._leader_read(ctx, self.id)
        elif self.lead:
            self._send(M.Message(M.READ_INDEX, self.lead, self.id, self.term, ctx=ctx))
        else:
            raise NotLeader(0)

    def _leader_read(self, ctx, frm):
        if len(self._voter_ids) == 1:
            self._read_done(self.log.committed, ctx, frm)
            return
        if not self.committed_in_term():
            # The leader does not know the commit index until it commits in its term.
            self._read_waiting.append((ctx, frm))
            return
        if self.cfg.read_only == READ_LEASE and self.lease_valid():
            self._read_done(self.log.committed, ctx, frm)
            return
        self._read_round += 1
        rnd = self._read_round
        acks = {self.id: True}
        self._read_queue.append([rnd, self.log.committed, ctx, frm, acks])
        self._bcast_heartbeat(rnd)

    def lease_valid(self):
        """Lease reads (thesis 6.4.1): a quorum acked heartbeats sent less than
        election_tick - drift ticks ago, so no other leader can exist yet."""
        acked = self._acked
        for p in self._voter_ids:
            acked[p] = self.ticks if p == self.id else self.prs[p].lease_tick
        since = joint_committed_index(self.voters, self.voters_out, acked, self._scratch)
        c = self.cfg
        return (not self._lease_revoked and since >= 0
                and self.ticks - since < c.election_tick - c.lease_drift_ticks)

    def _read_done(self, index, ctx, frm):
        if frm == self.id:
            self.read_states.append((index, ctx))
        else:
            self._send(M.Message(M.READ_INDEX_RESP, frm, self.id, self.term, index=index,
                                 ctx=ctx))

    def _release_waiting_reads(self):
        if self._read_waiting and self.committed_in_term():
            w = self._read_waiting
            self._read_waiting = []
            for ctx, frm in w:
                self._leader_read(ctx, frm)

    def _read_ack(self, rnd, frm):
        for e in self._read_queue:
            if e[0] == rnd:
                e[4][frm] = True
                self._recheck_reads()
                return

    def _recheck_reads(self):
        # Release the newest round a quorum of the current voters confirmed;
        # earlier requests are confirmed by this later round too. Invariant:
        # no confirmed round stays queued (so only a new ack or a smaller
        # quorum can confirm one).
        q = self._read_queue
        for k in range(len(q) - 1, -1, -1):
            if joint_vote_result(self.voters, self.voters_out, q[k][4]) == VOTE_WON:
                for j in range(k + 1):
                    r = q[j]
                    self._read_done(r[1], r[2], r[3])
                del q[:k + 1]
                return

    def _abort_reads(self):
        # Dropped reads are retried by the caller after its timeout.
        if self._read_queue:
            self._read_queue = []
        if self._read_waiting:
            self._read_waiting = []
