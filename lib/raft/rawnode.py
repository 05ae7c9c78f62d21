"""RawNode: the single-threaded driver interface to the core (etcd rawnode.go).

The driver loop, in this order, every time has_ready() is true:

  1. rd = node.ready()
  2. Persist: storage.apply_snapshot(rd.snapshot), storage.append(rd.entries),
     storage.set_hard_state(rd.hard_state) -- and make them durable. When
     rd.sync_hard_state is False only the commit index moved, which the
     paper keeps volatile: a driver may defer writing that hard state.
  3. Send rd.messages (these could also go before step 2) and then
     rd.persisted_messages (these must not leave before step 2 is durable:
     they promise votes and acknowledge entries).
  4. Apply rd.snapshot (restore) and then rd.committed_entries, in order, to
     the state machine; serve rd.read_states once applied >= their index.
     rd.conf_changes lists the committed membership changes among them as
     (index, op, node_id, ctx), or (index, JOINT, (transition, steps), ctx)
     for a joint one (raft/confchange.py): the runtime learns new peers'
     addresses from ctx here. The core then relies on their
     commit being durable, so such a Ready carries the hard state with
     sync_hard_state set.
  4b. rd.events lists what happened since the last Ready (raft/events.py),
     only kinds at or below raft.event_level (0, the default, reports
     nothing); read them before advance (it may add the next Ready's).
  5. node.advance(rd). This applies rd.conf_changes to the core, in order;
     conf() then returns the new membership. A leader in a joint conf
     entered with auto-leave proposes leaving it here, once applied.
  6. Optionally snapshot: storage.create_snapshot(applied, voters,
     learners, data, voters_out, auto_leave) from conf() -- after
     advance(), so the membership matches the applied index.

Never call ready() twice without advance() in between.
"""
from raft import events as EV
from raft.confchange import JOINT
from raft.core import LEADER, Raft


class Ready:
    __slots__ = ("hard_state", "entries", "snapshot", "messages", "persisted_messages",
                 "committed_entries", "read_states", "lead", "role", "conf_changes",
                 "sync_hard_state", "events")

    def __repr__(self):  # mpraft: host-only
        return "Ready(hs=%r ents=%d snap=%r msgs=%d/%d apply=%d reads=%d)" % (
            self.hard_state, len(self.entries), self.snapshot, len(self.messages),
            len(self.persisted_messages), len(self.committed_entries), len(self.read_states))


class RawNode:
    def __init__(self, config, storage, rand):  # mpraft: boot
        self.raft = r = Raft(config, storage, rand)
        self._prev_hs = (r.term, r.vote, r.log.committed)

    # -- inputs ---------------------------------------------------------------
    def tick(self):
        self.raft.tick()

    def step(self, m):
        self.raft.step(m)

    def propose(self, data):
        return self.raft.propose(data)

    def propose_conf_change(self, op, node_id, ctx=b""):
        """Propose a membership change (confchange.ADD_VOTER, ADD_LEARNER,
        REMOVE with a node id; JOINT with (transition, steps)); returns the
        entry's index. See Raft.propose_conf_change."""
        return self.raft.propose_conf_change(op, node_id, ctx)

    def propose_conf_change_v2(self, transition, steps, ctx=b""):  # mpraft: host-only
        """Several changes at once through a joint conf (etcd ConfChangeV2;
        see Raft.propose_conf_change_v2); returns the entry's index."""
        return self.raft.propose_conf_change(JOINT, (transition, steps), ctx)

    def conf_state(self):  # mpraft: host-only
        """(voters, learners) as of the applied index."""
        r = self.raft
        return r.voters, r.learners

    def conf(self):
        """(voters, voters_out, learners, auto_leave) as of the applied index."""
        return self.raft.conf()

    def read_index(self, ctx):
        self.raft.read_index(ctx)

    def campaign(self):
        self.raft.campaign()

    def transfer_leader(self, to):
        self.raft.transfer_leader(to)

    # -- outputs --------------------------------------------------------------
    def has_ready(self):
        r = self.raft
        log = r.log
        return bool(r._need_bcast or r.msgs or r.msgs_after_persist or r.read_states or r.events
                    or log.pending_snapshot is not None or log.stable < log.last
                    or log.applying < log.committed
                    or (r.term, r.vote, log.committed) != self._prev_hs)

    def ready(self):
        r = self.raft
        r.flush()
        log = r.log
        rd = Ready()
        hs = (r.term, r.vote, log.committed)
        p = self._prev_hs
        rd.snapshot = log.pending_snapshot
        rd.entries = log.unstable_entries()
        ce = log.next_committed(r.cfg.max_apply_bytes)
        if ce:
            log.applying = ce[-1][0]
        rd.committed_entries = ce
        rd.conf_changes = cc = r._conf_changes(ce)
        # Term and vote must be durable before any promise leaves; the commit
        # only when advance() will count on it (applied conf changes, see
        # _handle_append's "Append" rule).
        rd.sync_hard_state = hs[0] != p[0] or hs[1] != p[1] or bool(cc)
        rd.hard_state = hs if hs != p or cc else None
        rd.messages = r.msgs
        rd.persisted_messages = r.msgs_after_persist
        r.msgs = []
        r.msgs_after_persist = []
        rd.read_states = r.read_states
        r.read_states = []
        rd.lead = r.lead
        rd.role = r.role
        # Events: (kind, term, a, b) tuples (raft/events.py), oldest first.
        ev = r.events
        if ev:
            r.events = []
        rd.events = ev
        return rd

    def advance(self, rd):
        r = self.raft
        log = r.log
        if rd.snapshot is not None:
            if log.pending_snapshot is rd.snapshot:
                log.pending_snapshot = None
            i = rd.snapshot.index
            if log.applied < i:
                log.applied = i
            if log.applying < i:
                log.applying = i
        if rd.entries:
            e = rd.entries[-1]
            log.stable_to(e[0], e[1])
        if rd.committed_entries:
            if rd.conf_changes and r.event_level:
                for c in rd.conf_changes:
                    if c[1] != JOINT:
                        r._ev(EV.CONF, c[1], c[2])
                    elif not c[2][1]:
                        r._ev(EV.CONF, JOINT, 0)   # left the joint conf
                    else:
                        for s in c[2][1]:          # entered it: each step
                            r._ev(EV.CONF, s[0], s[1])
            r._advance_conf(rd.conf_changes)
            log.applied = rd.committed_entries[-1][0]
        if rd.hard_state is not None:
            self._prev_hs = rd.hard_state
        if r.role == LEADER:
            me = r.prs.get(r.id)
            if me is not None and me.maybe_update(log.stable):
                r.maybe_commit()
            if r.voters_out:
                r._maybe_auto_leave()
            if r.rejoin:
                r._maybe_promote()

    def compacted(self, index, term):
        """The driver snapshotted and compacted storage through index."""
        self.raft.log.compacted_to(index, term)

    # -- inspection -----------------------------------------------------------
    def status(self):
        r = self.raft
        log = r.log
        st = {"id": r.id, "role": r.role, "term": r.term, "vote": r.vote, "lead": r.lead,
              "commit": log.committed, "applied": log.applied, "first": log.snap_index + 1,
              "last": log.last, "stable": log.stable}
        if r.role == LEADER:
            prs = {}
            for p in r.peers:
                pr = r.prs[p]
                prs[p] = (pr.match, pr.next, pr.state, pr.inflights.count)
            st["progress"] = prs
        return st
