"""The Raft protocol state machine (paper sections 5 and 6, etcd raft.go).

Pure: no I/O, no clock, no randomness of its own. Events come in through
tick(), step(msg), propose(data), propose_conf_change(op, id, ctx),
read_index(ctx), campaign() and transfer_leader(id); effects accumulate in ``msgs`` and the log, and
RawNode (rawnode.py) hands them to the driver as a Ready.

Role dispatch follows etcd: become_* installs the role's step function and
tick method, so step() deals with terms once and then delegates.

This file keeps elections, replication and commit: everything a message or
a tick goes through. Reads (readonly.py, thesis 6.4) are a mixin of Raft.
Membership changes (membership.py, thesis 4.1 and 4.3) and snapshot
transfer (snapshot.py, thesis 5) are functions of the Raft they are given,
imported on first use by the Raft methods of the same names: a board that
never changes its membership or sends a snapshot never loads their code
(the board build ships them as separate lazily imported .mpy files,
docs/memory.md). What runs per Ready or per message (conf(), _conf_changes,
_conf_between, _set_conf) stays here. Every field is set here, in __init__
and _reset, with its invariant. MicroPython looks a method up through the
bases with no cache, so the hot path (step, the role step functions, _send,
_send_append, maybe_commit, tick) stays in this class and module. Role
constants live in roles.py (the other modules need them without importing
this one) and are re-exported here.
"""
from raft import events as EV
from raft import msg as M
from raft.roles import CANDIDATE, FOLLOWER, LEADER, PRE_CANDIDATE, ROLE_NAMES  # noqa: F401
from raft.confchange import AUTO, JOINT
from raft.errors import (Compacted, DecodeError, EntryTooLarge, LogFull, NotLeader,
                         ProposalDropped)
from raft.log import RaftLog
from raft.progress import PROBE, REPLICATE, SNAPSHOT, Progress
from raft.quorum import VOTE_LOST, VOTE_WON, joint_committed_index, joint_vote_result
from raft.readonly import ReadOnly
from raft.storage import ENTRY_CONF, ENTRY_NORMAL


class Raft(ReadOnly):
    def __init__(self, config, storage, rand):  # mpraft: boot
        """rand(n) must return an int in [0, n); it is the only randomness."""
        c = config.validate()
        self.id = c.id
        self.cfg = c
        self._rand = rand
        self.log = RaftLog(storage, c.ring_capacity)
        hs, voters, learners = storage.initial_state()
        if not voters:
            voters = c.voters
            learners = c.learners
        # The configuration as of the applied index (etcd semantics: a conf
        # change takes effect when applied, see _apply_conf); the joint
        # half (voters_out, auto_leave) comes with the snapshot. Every
        # quorum needs a majority of voters and one of voters_out (empty
        # unless joint, confchange.py). _voter_ids: both, sorted.
        snap = storage.snapshot()
        self._set_conf(tuple(sorted(voters)), tuple(sorted(snap.voters_out)),
                       tuple(sorted(learners)), snap.auto_leave)
        # Incarnations (docs/incarnation.md). inc: this node's (0: unbound).
        # incs {id: inc}, nonzero only, and rejoin (ids of learners to
        # promote once caught up) are part of the applied configuration:
        # set with it (bootstrap, snapshot, REJOIN). Invariant: mismatch is
        # incs[id] when that is nonzero and differs from inc, else 0; a
        # node with a mismatch never campaigns, votes or counts.
        self.inc = c.inc
        if snap.index and snap.incs:
            from raft.membership import _load_incs
            _load_incs(self, snap)
        else:
            self._set_incs({} if snap.index else dict(c.incs), ())
        # id -> the incarnation a REJOIN replaced (memory only): its late
        # datagrams are dropped without proposing to bring it back.
        self._retired = {}
        # Messages dropped as from an incarnation the configuration does
        # not know (a wiped node before its REJOIN, or a replaced one).
        self.foreign = 0
        # Leader: index of the newest conf change it may not have applied yet;
        # another change is refused until applied >= it (etcd pendingConfIndex).
        self._pending_conf = 0
        # A commit index known durable: the stored one at boot, then the
        # newest applied conf change (the driver makes the commit through
        # rd.conf_changes durable before advance). Invariant: a conf entry
        # is appended only when every earlier one is <= it (_handle_append).
        self._durable_commit = self.log.committed
        # Persistent state (paper Figure 2). Invariant: vote is for this term.
        self.term = hs[0]
        self.vote = hs[1]
        self.lead = 0
        self.role = FOLLOWER
        self.prs = {}
        for p in self.peers:
            self.prs[p] = Progress(self.log.last + 1, c.max_inflight)
        self.votes = {}
        # Outbox since the last Ready. Messages a leader sends depend on
        # nothing unpersisted (it counts its own entries only once durable);
        # everything else (vote grants, append acks, a candidate's requests)
        # waits until hard state and entries are on stable storage.
        self.msgs = []
        self.msgs_after_persist = []
        self.read_states = []
        # Leader: pending ReadIndex rounds [round, index, ctx, from, acks],
        # oldest first (readonly.py).
        self._read_queue = []
        self._read_round = 0
        # Leader: requests that arrived before this term's first commit.
        self._read_waiting = []
        self.lead_transferee = 0
        self._transfer_elapsed = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.ticks = 0
        self.randomized_election_timeout = c.election_tick
        self._scratch = []
        self._acked = {}
        self._need_bcast = False
        # Follower: the snapshot being received in chunks.
        self._rx_snap = None
        # Counters for status and the simulator.
        self.elections_won = 0
        self.bad_conf_entries = 0
        # Events since the last Ready (raft/events.py), only kinds whose level
        # is <= event_level (0: none, nothing is built).
        self.events = []
        self.event_level = 0
        # The leader and term last reported in a LEADER event.
        self._ev_lead = 0
        self._ev_lead_term = 0
        # Leader with lease reads: whether the last tick found the lease valid.
        self._lease_held = False
        self.become_follower(self.term, 0)

    # -- role changes -----------------------------------------------------
    def _reset(self, term):
        if self.term != term:
            self.term = term
            self.vote = 0
        self.lead = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        c = self.cfg
        self.randomized_election_timeout = c.election_tick + self._rand(c.election_tick)
        self.votes = {}
        self.lead_transferee = 0
        # Set once this leader hands leadership away: from then on another
        # leader may exist inside our lease, so lease reads stop for the term.
        self._lease_revoked = False
        nxt = self.log.last + 1
        for p in self.peers:
            pr = self.prs[p]
            pr.match = 0
            pr.reset(PROBE, nxt)
            pr.recent_active = False
            pr.lease_tick = -1
        self._abort_reads()
        if self._lease_held:
            self._lease_held = False
            self._ev(EV.LEASE, 0, 0)

    def become_follower(self, term, lead):
        was = self.role
        old = self.term
        self._reset(term)
        self.role = FOLLOWER
        self._step = _step_follower
        self._tick = self._tick_election
        if was != FOLLOWER or old != term:
            self._ev(EV.ROLE, FOLLOWER, lead)
        self._learn_lead(lead)

    def become_pre_candidate(self):
        # Pre-vote (thesis 9.6): no term change, so a partitioned node that
        # cannot win does not disrupt the cluster when it rejoins.
        self._step = _step_candidate
        self._tick = self._tick_election
        self.votes = {}
        self.lead = 0
        self.role = PRE_CANDIDATE
        self._ev(EV.ROLE, PRE_CANDIDATE, 0)
        self._ev(EV.ELECTION, 1, 0)

    def become_candidate(self):
        self._reset(self.term + 1)
        self._step = _step_candidate
        self._tick = self._tick_election
        self.vote = self.id
        self.role = CANDIDATE
        self._ev(EV.ROLE, CANDIDATE, 0)
        self._ev(EV.ELECTION, 0, 0)

    def become_leader(self):
        self._reset(self.term)
        self._step = _step_leader
        self._tick = self._tick_heartbeat
        self.role = LEADER
        self.elections_won += 1
        self._ev(EV.ROLE, LEADER, self.id)
        self._learn_lead(self.id)
        log = self.log
        for p in self.peers:
            pr = self.prs[p]
            pr.recent_active = True
        me = self.prs.get(self.id)
        if me is not None:
            me.become_replicate()
            me.match = log.stable
            me.next = log.last + 1
        # A no-op in the new term lets earlier-term entries commit (paper 5.4.2).
        log.append((log.last + 1, self.term, ENTRY_NORMAL, b""))
        # No conf change until everything up to and including the no-op is
        # applied: earlier terms may hold an unapplied change, and a leader
        # must commit in its own term before changing the configuration
        # (the single-server change bug, Ongaro, raft-dev 2015).
        self._pending_conf = log.last
        self._need_bcast = True

    def _ev(self, kind, a, b):
        if EV.LEVELS[kind] <= self.event_level:
            self.events.append((kind, self.term, a, b))

    def _learn_lead(self, lead):
        self.lead = lead
        if lead and (lead != self._ev_lead or self.term != self._ev_lead_term):
            self._ev_lead = lead
            self._ev_lead_term = self.term
            self._ev(EV.LEADER, lead, 0)

    # -- events -------------------------------------------------------------
    def tick(self):
        self.ticks += 1
        self._tick()

    def _tick_election(self):
        self.election_elapsed += 1
        if self.election_elapsed >= self.randomized_election_timeout and self._promotable():
            self.election_elapsed = 0
            self.hup(False)

    def _tick_heartbeat(self):
        c = self.cfg
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= c.election_tick:
            self.election_elapsed = 0
            if c.check_quorum:
                if not self._quorum_active():
                    self.become_follower(self.term, 0)
                    return
                for p in self.peers:
                    if p != self.id:
                        self.prs[p].recent_active = False
            if self.lead_transferee:
                self.lead_transferee = 0
        if c.read_only and self.event_level >= EV.INFO:
            held = self.lease_valid()
            if held != self._lease_held:
                self._lease_held = held
                self._ev(EV.LEASE, 1 if held else 0, 0)
        if self.heartbeat_elapsed >= c.heartbeat_tick:
            self.heartbeat_elapsed = 0
            # Carry the newest pending read round, so a read whose heartbeat
            # or acks were lost is confirmed by the next periodic heartbeat
            # (acks for a round confirm every earlier round too).
            q = self._read_queue
            self._bcast_heartbeat(q[-1][0] if q else 0)
            # Resend a snapshot chunk that got no answer for a few heartbeats
            # (lost datagram); sooner would only duplicate chunks in flight.
            for p in self.peers:
                pr = self.prs[p]
                if (p != self.id and pr.state == SNAPSHOT
                        and self.ticks - pr.snap_sent_tick >= 3 * c.heartbeat_tick):
                    self._send_snapshot_chunk(p, pr)

    def _promotable(self):
        return self.id in self._voter_ids and not self.mismatch

    def hup(self, transfer):
        if self.role == LEADER or not self._promotable():
            return
        if self._conf_between(self.log.applied + 1, self.log.committed + 1):
            # A committed change is not applied yet: our voter set may be
            # out of date (etcd does the same).
            return
        if self.cfg.pre_vote and not transfer:
            self._campaign(True, False)
        else:
            self._campaign(False, transfer)

    def campaign(self):
        """Start an election now (etcd MsgHup)."""
        self.hup(False)

    def _campaign(self, pre, transfer):
        if pre:
            self.become_pre_candidate()
            vote_term = self.term + 1
            t = M.PREVOTE
        else:
            self.become_candidate()
            vote_term = self.term
            t = M.VOTE
        self.votes[self.id] = True
        r = joint_vote_result(self.voters, self.voters_out, self.votes)
        if r == VOTE_WON:
            if pre:
                self._campaign(False, transfer)
            else:
                self.become_leader()
            return
        log = self.log
        flags = M.FLAG_FORCE if transfer else 0
        for p in self._voter_ids:
            if p != self.id:
                self._send(M.Message(t, p, self.id, vote_term, log.last_term(),
                                     log.last, flags=flags))

    def step(self, m):
        """Process one message addressed to this node."""
        t = m.type
        # A response or vote request carries its sender's incarnation in
        # commit (msg.py). One from an incarnation the configuration does
        # not bind to that id counts for nothing (docs/incarnation.md).
        if self.incs and t < 11 and t != M.APP and t != M.HEARTBEAT and t != M.SNAP:
            ci = self.incs.get(m.frm, 0)
            if ci and ci != m.commit:
                self._foreign(m)
                return
        if m.term > self.term:
            if m.type == M.VOTE or m.type == M.PREVOTE:
                # Check-quorum lease (thesis 4.2.3): a node that heard from a
                # live leader within the minimum timeout ignores votes.
                in_lease = (self.cfg.check_quorum and self.lead != 0
                            and self.election_elapsed < self.cfg.election_tick)
                if in_lease and not (m.flags & M.FLAG_FORCE):
                    return
            if m.type == M.PREVOTE:
                pass
            elif m.type == M.PREVOTE_RESP and not (m.flags & M.FLAG_REJECT):
                pass
            elif m.type == M.APP or m.type == M.HEARTBEAT or m.type == M.SNAP:
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, 0)
        elif m.term < self.term:
            if (self.cfg.check_quorum or self.cfg.pre_vote) and (
                    m.type == M.HEARTBEAT or m.type == M.APP):
                # Tell a stale leader our term so it steps down (etcd does the same).
                self._send(M.Message(M.APP_RESP, m.frm, self.id, self.term))
            elif m.type == M.PREVOTE:
                self._send(M.Message(M.PREVOTE_RESP, m.frm, self.id, self.term,
                                     flags=M.FLAG_REJECT))
            return
        t = m.type
        if t == M.VOTE or t == M.PREVOTE:
            can_vote = (self.vote == m.frm or (self.vote == 0 and self.lead == 0)
                        or (t == M.PREVOTE and m.term > self.term))
            rt = M.VOTE_RESP if t == M.VOTE else M.PREVOTE_RESP
            if can_vote and not self.mismatch and self.log.is_up_to_date(m.index, m.log_term):
                # The grant goes out only after the vote is durable (persisted_messages).
                self._send(M.Message(rt, m.frm, self.id, m.term))
                if t == M.VOTE:
                    self.election_elapsed = 0
                    self.vote = m.frm
                self._ev(EV.VOTE, m.frm, 1 if t == M.PREVOTE else 0)
            else:
                self._send(M.Message(rt, m.frm, self.id, self.term, flags=M.FLAG_REJECT))
            return
        self._step(self, m)

    def propose(self, data, kind=ENTRY_NORMAL):
        """Append data to the log as leader; returns its index. Raises a
        ProposalDropped subclass when it cannot be accepted."""
        if self.role != LEADER:
            self._ev(EV.DROPPED, EV.DROP_NOT_LEADER, 0)
            raise NotLeader(self.lead)
        if self.lead_transferee:
            self._ev(EV.DROPPED, EV.DROP_TRANSFER, 0)
            raise ProposalDropped("leadership transfer in progress")
        if len(data) > self.cfg.max_entry_bytes:
            self._ev(EV.DROPPED, EV.DROP_TOO_LARGE, 0)
            raise EntryTooLarge("entry of %d bytes exceeds max_entry_bytes %d"
                                % (len(data), self.cfg.max_entry_bytes))
        log = self.log
        if log.last - log.committed >= log.cap - 1:
            self._ev(EV.DROPPED, EV.DROP_LOG_FULL, 0)
            raise LogFull("log ring full: %d uncommitted entries" % (log.last - log.committed))
        log.append((log.last + 1, self.term, kind, data))
        self._need_bcast = True
        return log.last

    def transfer_leader(self, to):
        if self.role != LEADER:
            raise NotLeader(self.lead)
        if to == self.id or to not in self._voter_ids:
            return
        self.lead_transferee = to
        self.election_elapsed = 0
        pr = self.prs[to]
        if pr.match == self.log.last:
            self._send_timeout_now(to)
        else:
            self._send_append(to, True)

    def _send_timeout_now(self, to):
        self._lease_revoked = True
        if self._lease_held:
            self._lease_held = False
            self._ev(EV.LEASE, 0, 0)
        self._send(M.Message(M.TIMEOUT_NOW, to, self.id, self.term))

    # -- leader helpers -----------------------------------------------------
    def _send(self, m):
        t = m.type
        if t != M.APP and t != M.HEARTBEAT:
            m.commit = self.inc
        if self.role == LEADER:
            self.msgs.append(m)
        else:
            self.msgs_after_persist.append(m)

    def flush(self):
        """Send the batched appends owed since the last call (called by ready)."""
        if self._need_bcast:
            self._need_bcast = False
            if self.role == LEADER:
                for p in self.peers:
                    if p != self.id:
                        self._send_append(p, False)
                # A single-voter cluster commits on its own ack.
                self.maybe_commit()

    def _send_append(self, to, send_if_empty):
        """Send entries from pr.next; returns True if a message went out."""
        pr = self.prs[to]
        if pr.is_paused():
            return False
        log = self.log
        prev = pr.next - 1
        try:
            prev_term = log.term(prev)
            ents = log.slice(pr.next, log.last + 1, self.cfg.max_size_per_msg)
        except Compacted:
            return self._start_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        commit = log.committed
        self._send(M.Message(M.APP, to, self.id, self.term, prev_term, prev, commit,
                             entries=ents))
        if ents:
            pr.sent_entries(ents[-1][0])
        elif pr.state == PROBE:
            pr.probe_sent = True
        return True

    def _bcast_heartbeat(self, ctx):
        commit = self.log.committed
        for p in self.peers:
            if p == self.id:
                continue
            pr = self.prs[p]
            c = pr.match if pr.match < commit else commit
            self._send(M.Message(M.HEARTBEAT, p, self.id, self.term, commit=c, ctx=ctx,
                                 hint=self.ticks))

    def maybe_commit(self):
        """Advance commit to the highest index a majority stores (of both
        halves of a joint conf, thesis 4.3), but only if that entry is from
        the current term (paper 5.4.2, Figure 8)."""
        acked = self._acked
        for p in self._voter_ids:
            acked[p] = self.prs[p].match
        mci = joint_committed_index(self.voters, self.voters_out, acked, self._scratch)
        log = self.log
        if mci > log.committed and self._commit_term_ok(mci):
            log.commit_to(mci)
            if self.event_level >= EV.DEBUG:
                self._ev(EV.COMMIT, mci, 0)
            self._need_bcast = True
            self._release_waiting_reads()
            return True
        return False

    def _commit_term_ok(self, index):
        try:
            return self.log.term(index) == self.term
        except Compacted:
            return False

    def _quorum_active(self):
        votes = {}
        for p in self._voter_ids:
            votes[p] = p == self.id or self.prs[p].recent_active
        return joint_vote_result(self.voters, self.voters_out, votes) == VOTE_WON

    def committed_in_term(self):
        return self._commit_term_ok(self.log.committed)

    # -- membership (thesis 4.1 and 4.3; membership.py) ----------------------
    def propose_conf_change_v2(self, transition, steps, ctx=b""):  # mpraft: host-only
        """etcd ConfChangeV2: steps ((op, node_id), ...) at once, through a
        joint conf unless it is one AUTO step; no steps leaves the joint
        conf (the EXPLICIT transition waits for that). A board calls
        propose_conf_change(JOINT, (transition, steps), ctx)."""
        return self.propose_conf_change(JOINT, (transition, steps), ctx)

    def conf(self):
        """(voters, voters_out, learners, auto_leave) as of the applied index."""
        return self.voters, self.voters_out, self.learners, self.auto_leave

    def _maybe_auto_leave(self):
        # etcd: once the entry that entered the joint conf is applied, the
        # leader proposes leaving it (an empty V2 change). Refused during a
        # transfer or with a full log: the next advance tries again.
        if (self.auto_leave and self.voters_out and self.role == LEADER
                and self.log.applied >= self._pending_conf):
            try:
                self.propose_conf_change(JOINT, (AUTO, ()))
            except ProposalDropped:
                pass

    def _conf_between(self, lo, hi):
        """Is there an ENTRY_CONF in [lo, hi) of the log (after the snapshot,
        which carries its configuration)?"""
        log = self.log
        i = lo if lo > log.snap_index else log.snap_index + 1
        while i < hi:
            try:
                es = log.slice(i, hi, 4096)
            except Compacted:
                return False  # behind a snapshot, which carries the conf
            for e in es:
                if e[2] == ENTRY_CONF:
                    return True
            i += len(es)
        return False

    def _conf_changes(self, ents):
        """The conf changes among entries to apply, as (index, op, id, ctx)."""
        cc = ()
        for e in ents:
            if e[2] == ENTRY_CONF:
                from raft.confchange import decode
                try:
                    cc += ((e[0],) + decode(e[3]),)
                except DecodeError:
                    # Committed, so every node skips it alike.
                    self.bad_conf_entries += 1
        return cc

    def _set_conf(self, voters, voters_out, learners, auto_leave):
        self.voters = voters
        self.voters_out = voters_out
        self.learners = learners
        self.auto_leave = auto_leave
        ids = list(voters)
        for p in voters_out:
            if p not in ids:
                ids.append(p)
        ids.sort()
        self._voter_ids = tuple(ids)
        for p in learners:
            if p not in ids:
                ids.append(p)
        ids.sort()
        self.peers = tuple(ids)


    # The rest of membership changes (proposing, applying, switching the
    # configuration) is in membership.py, imported on first use: a node
    # that never changes its membership never loads it (docs/memory.md).
    def propose_conf_change(self, op, arg, ctx=b""):
        """Append an ENTRY_CONF entry; returns its index (membership.py)."""
        from raft.membership import propose_conf_change
        return propose_conf_change(self, op, arg, ctx)

    def _advance_conf(self, changes):
        if changes:
            from raft.membership import _advance_conf
            _advance_conf(self, changes)

    def _switch_config(self, conf, index=0):
        from raft.membership import _switch_config
        _switch_config(self, conf, index)

    # -- incarnations (docs/incarnation.md; the rare parts in membership.py) --
    def _set_incs(self, incs, rejoin):
        self.incs = incs
        self.rejoin = rejoin
        ci = incs.get(self.id, 0)
        self.mismatch = ci if ci != self.inc else 0

    def _foreign(self, m):
        self.foreign += 1
        from raft.membership import _foreign
        _foreign(self, m)

    def _maybe_promote(self):
        from raft.membership import _maybe_promote
        _maybe_promote(self)

    def snap_incs(self):
        """Snapshot.incs for the applied configuration (() if none is bound)."""
        if not self.incs:
            return ()
        from raft.membership import snap_incs
        return snap_incs(self)

    # -- snapshot transfer (thesis 5; snapshot.py, imported on first use) ----
    def _start_snapshot(self, to, pr):
        from raft.snapshot import _start_snapshot
        return _start_snapshot(self, to, pr)

    def _send_snapshot_chunk(self, to, pr):
        from raft.snapshot import _send_snapshot_chunk
        return _send_snapshot_chunk(self, to, pr)

    def _handle_snap_chunk(self, m):
        from raft.snapshot import _handle_snap_chunk
        _handle_snap_chunk(self, m)

    def restore(self, snap):
        """Install a snapshot from the leader (the driver persists and applies it)."""
        from raft.snapshot import restore
        return restore(self, snap)


# -- role step functions (module level, installed by become_*) --------------

def _step_follower(r, m):
    t = m.type
    if t == M.APP:
        r.election_elapsed = 0
        if r.lead != m.frm:
            r._learn_lead(m.frm)
        _handle_append(r, m)
    elif t == M.HEARTBEAT:
        r.election_elapsed = 0
        if r.lead != m.frm:
            r._learn_lead(m.frm)
        _handle_heartbeat(r, m)
    elif t == M.SNAP:
        r.election_elapsed = 0
        if r.lead != m.frm:
            r._learn_lead(m.frm)
        r._handle_snap_chunk(m)
    elif t == M.TIMEOUT_NOW:
        r.hup(True)
    elif t == M.READ_INDEX_RESP:
        r.read_states.append((m.index, m.ctx))
    elif t == M.READ_INDEX:
        if r.lead:
            m2 = M.Message(M.READ_INDEX, r.lead, m.frm, r.term, ctx=m.ctx)
            r._send(m2)


def _step_candidate(r, m):
    t = m.type
    if t == M.APP:
        r.become_follower(m.term, m.frm)
        _handle_append(r, m)
    elif t == M.HEARTBEAT:
        r.become_follower(m.term, m.frm)
        _handle_heartbeat(r, m)
    elif t == M.SNAP:
        r.become_follower(m.term, m.frm)
        r._handle_snap_chunk(m)
    elif (t == M.VOTE_RESP and r.role == CANDIDATE) or (
            t == M.PREVOTE_RESP and r.role == PRE_CANDIDATE):
        r.votes[m.frm] = not (m.flags & M.FLAG_REJECT)
        res = joint_vote_result(r.voters, r.voters_out, r.votes)
        if res == VOTE_WON:
            if r.role == PRE_CANDIDATE:
                r._campaign(False, False)
            else:
                r.become_leader()
        elif res == VOTE_LOST:
            r.become_follower(r.term, 0)


def _step_leader(r, m):
    t = m.type
    pr = r.prs.get(m.frm)
    if pr is None:
        return
    if t == M.APP_RESP:
        pr.recent_active = True
        if m.flags & M.FLAG_REJECT:
            hint = m.hint
            if m.hint_term > 0:
                # Skip every entry of ours newer than the follower's conflict term.
                hint = r.log.find_conflict_by_term(m.hint, m.hint_term)[0]
            if pr.maybe_decr_to(m.index, hint):
                if pr.state == REPLICATE:
                    pr.become_probe()
                r._send_append(m.frm, False) or r._send_append(m.frm, True)
            return
        old_paused = pr.is_paused()
        if pr.maybe_update(m.index):
            if pr.state == PROBE:
                pr.become_replicate()
            elif pr.state == SNAPSHOT and pr.match >= pr.pending_snapshot:
                pr.become_probe()
                pr.become_replicate()
            elif pr.state == REPLICATE:
                pr.inflights.free_le(m.index)
            if r.maybe_commit():
                pass
            elif old_paused:
                r._send_append(m.frm, False)
            # Pipelining: keep the window full.
            k = 0
            while k < 64 and r._send_append(m.frm, False):
                k += 1
            if m.frm == r.lead_transferee and pr.match == r.log.last:
                r._send_timeout_now(m.frm)
        elif pr.state == REPLICATE:
            pr.inflights.free_le(m.index)
    elif t == M.HEARTBEAT_RESP:
        pr.recent_active = True
        pr.probe_sent = False
        if m.hint > pr.lease_tick:
            pr.lease_tick = m.hint
        if pr.state == REPLICATE and pr.inflights.full():
            # A full window with the follower alive: free one slot (etcd FreeFirstOne).
            pr.inflights.free_first_one()
        if pr.match < r.log.last:
            # An empty append probes pr.next - 1: if an append was lost, the
            # follower rejects it and the leader backs up (etcd does the same).
            r._send_append(m.frm, True)
        if m.ctx:
            r._read_ack(m.ctx, m.frm)
    elif t == M.SNAP_RESP:
        pr.recent_active = True
        if pr.state != SNAPSHOT or m.index != pr.pending_snapshot:
            return
        # Resume at the offset the follower asks for: a lost chunk costs one
        # chunk, not a restart from zero. An answer that does not move the
        # offset forward is a duplicate or answers a duplicate chunk: the
        # chunk it asks for is already in flight, and the heartbeat timer
        # resends it if it was lost. Only a reject can move the offset back
        # (the follower lost its partial copy, e.g. it restarted).
        if m.hint > pr.snap_offset or (m.flags & M.FLAG_REJECT and m.hint < pr.snap_offset):
            pr.snap_offset = m.hint
            r._send_snapshot_chunk(m.frm, pr)
    elif t == M.READ_INDEX:
        r._leader_read(m.ctx, m.frm)


def _handle_append(r, m):
    log = r.log
    if m.index < log.committed:
        r._send(M.Message(M.APP_RESP, m.frm, r.id, r.term, index=log.committed))
        return
    if not log.match_term(m.index, m.log_term):
        # Consistency check failed (paper 5.3). Hint the leader at the last
        # index whose term is <= the leader's prev term, skipping whole terms.
        hi, ht = log.find_conflict_by_term(m.index, m.log_term)
        r._send(M.Message(M.APP_RESP, m.frm, r.id, r.term, index=m.index, hint=hi,
                          hint_term=ht, flags=M.FLAG_REJECT))
        return
    ents = m.entries
    last_new = m.index
    n = len(ents)
    k = 0
    # Skip entries we already have; truncate at the first conflict.
    while k < n:
        e = ents[k]
        i = e[0]
        if i > log.last:
            break
        if log.term(i) != e[1]:
            if i <= log.committed:
                raise AssertionError("conflict at committed index %d" % i)
            log.truncate_after(i - 1)
            break
        k += 1
    last_new = m.index + k
    while k < n:
        e = ents[k]
        if log.last - log.stable >= log.cap:
            break  # Ring full of non-durable entries: ack what we stored.
        if e[2] == ENTRY_CONF and r._conf_between(r._durable_commit + 1, e[0]):
            # Apply-time safety (etcd #7625, invariant "Append"): hold a conf
            # entry back until the commit of the previous one is durable, so
            # a restarted node never holds two changes it does not know are
            # committed. The leader resends it after our ack.
            break
        log.append(e)
        k += 1
        last_new = e[0]
    c = m.commit if m.commit < last_new else last_new
    if c > log.committed and r.event_level >= EV.DEBUG:
        r._ev(EV.COMMIT, c, 0)
    log.commit_to(c)
    r._send(M.Message(M.APP_RESP, m.frm, r.id, r.term, index=last_new))


def _handle_heartbeat(r, m):
    log = r.log
    if m.commit > log.committed and not r.mismatch:
        # The leader sends min(match, commit), so this entry is ours and
        # committed; unless we are a wiped node the leader's match may still
        # count for, as it was before the wipe (docs/incarnation.md).
        log.commit_to(m.commit)
        if r.event_level >= EV.DEBUG:
            r._ev(EV.COMMIT, m.commit, 0)
    r._send(M.Message(M.HEARTBEAT_RESP, m.frm, r.id, r.term, ctx=m.ctx, hint=m.hint))
