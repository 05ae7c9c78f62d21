"""The engine: one Raft node's execution layer, the same in every environment.

An Engine drives the pure core (raft/rawnode.py) and owns everything around
it that is not transport-specific: the Ready loop, proposals waiting for
their entries to apply and the answer to their clients, read batching and
expiry, the hard-state write policy, snapshot and compaction policy, and the
address book. It is built from injected infrastructure and imports none of
it (host_tests check that):

  storage    raft.storage interface (FlashStorage on flash, MemoryStorage);
  transport  send(peer_id, writer) -> bool, set_peer(id, host, port) and a
             `counters` object with `slots` (raftio.frame.Counters);
  machine    the replicated state machine (docs/engine.md): applied_index,
             apply(index, data) -> result bytes or None, skip(index),
             is_read(data), query(data) -> result bytes, snapshot_size(),
             snapshot_into(buf), restore(data);
  clock      ticks_ms(), ticks_diff(a, b), ticks_add(a, d) (raftio.clock on a
             board, a simulated clock in the simulator);
  rand       below(n) -> int in [0, n): election jitter;
  observer   optional, any of: event(ev) for every event (raft/events.py:
             the core's, from Ready.events, and the engine's own: applied,
             snapshot taken, proposal failed) at or below event_level
             (set_event_level; ESSENTIAL by default when the observer has
             event()); persisted(rd), applied(entry, result), restored(snap);
  reply      reply(token, code, leader, result): how answers leave. Tokens
             are opaque (the UDP server uses (address, request id)).

Each call of drive() runs the Ready contract (raft/rawnode.py), in order:
  1. start one ReadIndex round for every read queued since the last drive;
  2. send rd.messages (they promise nothing, so followers write while we
     write);
  3. persist: snapshot, entries, hard state (see below);
  4. send rd.persisted_messages (vote grants, append acks: only now durable);
  5. apply: restore a snapshot, apply committed entries and answer their
     waiting clients (only if the entry at the index has the term the
     proposal got: another leader's entry there means ours was lost);
  6. advance; then learn addresses from applied membership changes, answer
     reads whose read index is applied, snapshot and compact by policy.

Hard state: written whenever the Ready says it must be durable
(rd.sync_hard_state: term or vote changed, or a membership change was
applied); a commit index alone only every _HS_COMMIT_LAG entries (it is
volatile state in the paper; a restarted node relearns it), which saves one
flash write per commit.

A state machine that cannot take what the log holds (OverLimit: content
beyond this node's capacity, a board forced into a cluster whose limits its
memory cannot hold, or an entry larger than its log slots; a MemoryError;
a snapshot that does not decode) halts
applying instead of raising out of the loop: ``halted`` says why (status
"state"), nothing past the failed entry is applied or snapshotted, appends
are dropped (counted, so the flash log cannot fill; the node still votes
and takes snapshots), a leader hands leadership on, and the machine is
retried from storage after 1, 2, 4 ... 64 s. A newer snapshot from the
leader is retried at once.

Reads are linearizable through ReadIndex (thesis 6.4): a read is answered
from the state machine only once applied >= the read index the leader
confirmed with a heartbeat round. Reads queued between two drives share one
round.
"""
import gc

from raft import confchange as CC
from raft import events as EV
from raft import msg as M
from raft.core import LEADER
from raft.errors import (ConfigError, DecodeError, EntryTooLarge, NotLeader, OverLimit,
                         ProposalDropped, StorageFull)
from raft.rawnode import RawNode
from raft.storage import ENTRY_CONF, ENTRY_NORMAL
from raftio.frame import DROP_MALFORMED
from raftio.wire import BAD_REQUEST, BUSY, NOT_LEADER, OK, RETRY

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_MAX_READY = const(16)    # Ready rounds per drive()
_HS_COMMIT_LAG = const(64)
_RETRY_MAX_MS = const(64000)
_BOOK = b"RNA\x01"
# Snapshot data: _BOOK (address book, version 1), the book's length as
# u16 little-endian, the book b"id=host:port id=host:port ...", then the
# state machine image. A snapshot from before the book is the plain image
# and still restores. The length keeps a bad book from shifting the image:
# a bad record costs a counted drop, not the snapshot.


class Engine:
    """One Raft node driven through the Ready contract; see the module docstring."""

    def __init__(self, config, storage, transport, machine, clock, rand, tick_ms,  # mpraft: boot
                 snapshot_entries, snapshot_keep, max_pending, observer=None, reply=None):
        self.id = config.id
        self.storage = storage
        self.transport = transport
        self.machine = machine
        self.clock = clock
        self.observer = observer
        # Each hook looked up once; None when the observer lacks it.
        self._on_event = getattr(observer, "event", None)
        self._on_persisted = getattr(observer, "persisted", None)
        self._on_applied = getattr(observer, "applied", None)
        self._on_restored = getattr(observer, "restored", None)
        self.reply = reply if reply is not None else _no_reply
        self.counters = transport.counters
        self.tick_ms = tick_ms
        # The hard state last written to storage (its commit may lag; see drive).
        self._hs = storage.initial_state()[0]
        self.rawnode = RawNode(config, storage, rand)
        # The pure core. Read it; drive it only through rawnode.
        self.core = self.rawnode.raft
        if self._on_event is not None:
            self.set_event_level(EV.ESSENTIAL)
        # Invariant: machine.applied_index == core.log.applied after every
        # advance (0 here; the snapshot restored at the end of __init__ sets it).
        self.snapshot_entries = snapshot_entries
        # Entries kept behind a snapshot so a briefly lagging follower catches
        # up from the log instead of needing the whole snapshot.
        self.snapshot_keep = snapshot_keep
        self._out = None
        # index -> (term, token): proposals this node made as leader.
        # Invariant: len(_pending) <= max_pending.
        self._pending = {}
        self.max_pending = max_pending
        # Reads waiting for the next ReadIndex round: [(token, query)].
        # Invariant: len(_read_batch) <= max_pending.
        self._read_batch = []
        # ctx -> [tick started, [(token, query)]]: rounds not yet confirmed.
        self._reads = {}
        # [(read index, [(token, query)])]: confirmed, waiting for apply.
        self._ready_reads = []
        self._read_ctx = 0
        self.stats = {"proposed": 0, "applied": 0, "reads": 0, "snapshots": 0, "forced": 0,
                      "not_leader": 0, "busy": 0, "retry": 0, "bad_request": 0, "halted": 0}
        # Why the machine stopped applying, or None (module doc). Invariant:
        # while set, nothing is applied or snapshotted and appends are dropped.
        self.halted = None
        self._retry_ms = 0
        self._retry_at = 0
        # id -> b"id=host:port" taught by applied conf changes (node files list
        # the rest); snapshots carry it, as they outlive the entries.
        self._book = {}
        self.started = clock.ticks_ms()
        self._next_tick = clock.ticks_add(self.started, tick_ms)
        # Last, as it needs the transport (set_peer) and the counters.
        snap = storage.snapshot()
        if snap.index > 0:
            self._restore(snap)

    # -- events -----------------------------------------------------------------
    def set_event_level(self, level):
        """Report events up to level (0-4, raft/events.py; 0 = none). Without
        an observer.event hook nothing is built whatever the level."""
        self.core.event_level = level if self._on_event is not None else 0

    def _emit(self, kind, a, b):
        if EV.LEVELS[kind] <= self.core.event_level:
            self._on_event((kind, self.core.term, a, b))

    # -- time -----------------------------------------------------------------
    def tick(self):
        """Tick the core if a tick is due by the clock (the core counts ticks;
        time is read here and nowhere in the core). Returns how long the
        caller may wait for input before calling again: 0 while the core
        has work, else the time to the next tick."""
        clk = self.clock
        now = clk.ticks_ms()
        if self.halted is not None and clk.ticks_diff(now, self._retry_at) >= 0:
            self._resume()
        late = clk.ticks_diff(now, self._next_tick)
        if late >= 0:
            self.rawnode.tick()
            if late > 4 * self.tick_ms:
                # The loop stalled (GC, a snapshot write): do not replay a
                # burst of ticks that could fire an election all at once.
                self._next_tick = clk.ticks_add(now, self.tick_ms)
            else:
                self._next_tick = clk.ticks_add(self._next_tick, self.tick_ms)
            self._expire_reads()
        if self.rawnode.has_ready() or self._read_batch:
            return 0
        w = clk.ticks_diff(self._next_tick, now)
        return w if w > 0 else 0

    # -- input ----------------------------------------------------------------
    def step(self, m):
        """A Raft message from a peer (already authenticated and decoded)."""
        if m.type == M.APP:
            if self.halted is None:
                # An entry past this node's slots (a board forced into a
                # cluster with larger limits) would fail the flash append
                # mid-Ready: refuse the whole append and halt instead.
                mx = self.core.cfg.max_entry_bytes
                for e in m.entries:
                    if len(e[3]) > mx:
                        self._halt(OverLimit("entry", len(e[3]), "bytes", mx))
                        break
            if self.halted is not None:
                self.stats["halted"] += 1
                return
        self.rawnode.step(m)

    def propose(self, data, token=None):
        """Propose a command; reply(token, ...) once it is applied (OK and the
        machine's result), lost (RETRY) or refused. Returns the entry's
        index, or 0 if refused (already answered)."""
        r = self.core
        if r.role != LEADER:
            return self._refuse(token, NOT_LEADER, "not_leader")
        if len(self._pending) >= self.max_pending or self.halted is not None:
            return self._refuse(token, BUSY, "busy")
        try:
            idx = self.rawnode.propose(data)
        except EntryTooLarge:
            return self._refuse(token, BAD_REQUEST, "bad_request")
        except ProposalDropped:
            # LogFull or a leadership transfer: nothing was appended.
            return self._refuse(token, BUSY, "busy")
        self.stats["proposed"] += 1
        if token is not None:
            self._pending[idx] = (r.term, token)
        return idx

    def read(self, query, token):
        """A linearizable read: answered with machine.query(query) once the
        read index of the next ReadIndex round is applied."""
        if self.core.role != LEADER:
            return self._refuse(token, NOT_LEADER, "not_leader")
        if len(self._read_batch) >= self.max_pending:
            return self._refuse(token, BUSY, "busy")
        self._read_batch.append((token, query))
        return 1

    def propose_conf_change(self, op, nid, ctx, token=None):
        """A membership change (raft/confchange.py); answered once applied,
        like a command. ctx b"host:port" teaches every member the address.
        op JOINT: nid is (transition, steps) and ctx b"id=host:port ...",
        a joint change (etcd ConfChangeV2)."""
        r = self.core
        if r.role != LEADER:
            return self._refuse(token, NOT_LEADER, None)
        try:
            idx = self.rawnode.propose_conf_change(op, nid, ctx)
        except (ConfigError, EntryTooLarge):
            # Before ProposalDropped, of which EntryTooLarge is a kind.
            return self._refuse(token, BAD_REQUEST, None)
        except ProposalDropped:
            return self._refuse(token, BUSY, None)  # another change is still pending
        if token is not None:
            self._pending[idx] = (r.term, token)
        return idx

    def transfer_leader(self, nid):
        """Start handing leadership to voter nid; False if this node cannot."""
        r = self.core
        if r.role != LEADER or nid not in r.voters:
            return False
        self.rawnode.transfer_leader(nid)
        return True

    def campaign(self):
        self.rawnode.campaign()

    def _refuse(self, token, code, stat):
        if stat is not None:
            self.stats[stat] += 1
        self._emit(EV.PROPOSAL_FAILED, code, 0)
        if token is not None:
            self.reply(token, code, self.core.lead, b"")
        return 0

    # -- reads ----------------------------------------------------------------
    def _start_read(self):
        batch = self._read_batch
        self._read_batch = []
        r = self.core
        if r.role != LEADER:
            self._answer_all(batch, NOT_LEADER)
            return
        self._read_ctx = (self._read_ctx + 1) & 0x7FFFFFFF or 1
        ctx = self._read_ctx
        self._reads[ctx] = [r.ticks, batch]
        try:
            self.rawnode.read_index(ctx)
        except NotLeader:
            del self._reads[ctx]
            self._answer_all(batch, NOT_LEADER)

    def _answer_all(self, reads, code):
        lead = self.core.lead
        for token, _ in reads:
            self.reply(token, code, lead, b"")

    def _expire_reads(self):
        # The core drops read rounds when leadership changes; answer their
        # clients so they retry elsewhere instead of waiting out a timeout.
        reads = self._reads
        if not reads:
            return
        r = self.core
        limit = 2 * r.cfg.election_tick
        # Sorted: MicroPython dicts are unordered, and the answers' order
        # must not depend on the interpreter (the simulator's digest).
        for ctx in sorted(reads):
            ent = reads[ctx]
            if r.role != LEADER or r.ticks - ent[0] > limit:
                del reads[ctx]
                self.stats["retry"] += len(ent[1])
                self._answer_all(ent[1], NOT_LEADER if r.role != LEADER else RETRY)

    def _on_read_states(self, states):
        for index, ctx in states:
            ent = self._reads.pop(ctx, None)
            if ent is not None:
                self._ready_reads.append((index, ent[1]))

    def _serve_reads(self):
        rr = self._ready_reads
        if not rr:
            return
        machine = self.machine
        applied = machine.applied_index
        keep = []
        for index, batch in rr:
            # Thesis 6.4 step 4: the state must include everything the
            # leader had committed when the read arrived.
            if index > applied:
                keep.append((index, batch))
                continue
            for token, query in batch:
                self.stats["reads"] += 1
                try:
                    res = machine.query(query)
                except DecodeError:
                    self.reply(token, BAD_REQUEST, 0, b"")
                    continue
                self.reply(token, OK, 0, res)
        self._ready_reads = keep

    # -- the Ready contract ---------------------------------------------------
    def _write_msg(self, tx, off):
        return M.encode_into(self._out, tx, off)

    def _send(self, m):
        self._out = m
        self.transport.send(m.to, self._write_msg)

    def drive(self):
        """Run the Ready contract until the core has nothing more (bounded)."""
        if self._read_batch:
            self._start_read()
        node = self.rawnode
        st = self.storage
        k = 0
        while k < _MAX_READY and node.has_ready():
            k += 1
            rd = node.ready()
            for m in rd.messages:
                self._send(m)
            # 1. persist
            if rd.snapshot is not None:
                st.apply_snapshot(rd.snapshot)
            if rd.entries:
                try:
                    st.append(rd.entries)
                except StorageFull:
                    # The flash ring holds every entry since the snapshot: make
                    # room now rather than stop (a follower far ahead of its
                    # apply point). A second failure propagates.
                    self.stats["forced"] += 1
                    self.maybe_snapshot(True)
                    st.append(rd.entries)
            hs = rd.hard_state
            # A hard state whose only news is the commit index (volatile in
            # the paper; a restarted node relearns it) is written every
            # _HS_COMMIT_LAG entries: one flash write fewer per commit.
            if hs is not None and (rd.sync_hard_state or hs[2] - self._hs[2] >= _HS_COMMIT_LAG):
                st.set_hard_state(hs)
                self._hs = hs
            if self._on_persisted is not None:
                self._on_persisted(rd)
            if rd.events:
                # After persist: a role or vote they report is on storage.
                on = self._on_event
                for ev in rd.events:
                    on(ev)
            # 2. send what may leave only once the above is durable
            for m in rd.persisted_messages:
                self._send(m)
            # 3. apply
            if rd.snapshot is not None:
                # A newer snapshot is a retry of a halted machine.
                self.halted = None
                if self._restore(rd.snapshot) and self._on_restored is not None:
                    self._on_restored(rd.snapshot)
            if rd.committed_entries and self.halted is None:
                self._apply(rd.committed_entries)
            if rd.read_states:
                self._on_read_states(rd.read_states)
            # 4. advance (it applies rd.conf_changes to the core)
            node.advance(rd)
            for c in rd.conf_changes:
                self._on_conf_change(c[1], c[2], c[3])
            self._serve_reads()
            self.maybe_snapshot()
        if self.halted is not None and self.core.role == LEADER:
            self._hand_over()

    def _on_conf_change(self, op, nid, ctx):
        # ctx is "host:port" from raftctl: how every node learns where a
        # joining node listens. Booked for self too: others learn it from
        # our snapshots.
        if op == CC.JOINT:
            # Addresses as "id=host:port" words; a node removed is kept
            # while the joint conf still has it as a voter.
            for w in ctx.split():
                try:
                    k, a = w.split(b"=", 1)
                    self._on_conf_change(CC.ADD_LEARNER, int(k), a)
                except ValueError:
                    self.counters.slots[DROP_MALFORMED] += 1
            peers = self.core.peers
            for k in sorted(self._book):
                if k not in peers:
                    del self._book[k]
        elif op == CC.REMOVE:
            self._book.pop(nid, None)
        elif ctx:
            try:
                host, port = ctx.decode().rsplit(":", 1)
                port = int(port)
                if nid != self.id:
                    self.transport.set_peer(nid, host, port)
                self._book[nid] = b"%d=%s" % (nid, ctx)
            except (ValueError, OSError):
                self.counters.slots[DROP_MALFORMED] += 1

    def _restore(self, snap):
        """Restore the machine from snap; False (halted) if it cannot."""
        data = snap.data
        n = 0
        if data[:4] == _BOOK:
            n = 6 + int.from_bytes(data[4:6], "little")
        try:
            self.machine.restore(memoryview(data)[n:])
        except Exception as e:  # OverLimit, DecodeError, MemoryError: never out of the loop
            self._halt(e)
            return False
        self.machine.applied_index = snap.index
        self._book = {}
        for w in data[6:n].split():
            try:
                nid, a = w.split(b"=", 1)
                self._on_conf_change(CC.ADD_LEARNER, int(nid), a)
            except ValueError:
                self.counters.slots[DROP_MALFORMED] += 1
        pend = self._pending
        for i in sorted(pend):
            if i <= snap.index:
                # Applied inside a snapshot we did not make: the result is
                # not ours to know. The client retries with its session.
                token = pend.pop(i)[1]
                self.stats["retry"] += 1
                self._emit(EV.PROPOSAL_FAILED, RETRY, i)
                self.reply(token, RETRY, 0, b"")
        return True

    def _halt(self, e):
        self.halted = ("over-limit: %s needs %d %s, this node holds %d" % e.args
                       if isinstance(e, OverLimit) else "%s: %s" % (type(e).__name__, e))
        self._retry_ms = min(2 * self._retry_ms or 1000, _RETRY_MAX_MS)
        self._retry_at = self.clock.ticks_add(self.clock.ticks_ms(), self._retry_ms)
        pend = self._pending
        for i in sorted(pend):
            self.reply(pend.pop(i)[1], RETRY, 0, b"")

    def _resume(self):
        # The machine from storage again: the snapshot if it is behind it,
        # then the entries it has not applied (never compacted while halted).
        self.halted = None
        m = self.machine
        snap = self.storage.snapshot()
        if m.applied_index < snap.index and not self._restore(snap):
            return
        log = self.core.log
        while self.halted is None and m.applied_index < log.applied:
            self._apply(log.slice(m.applied_index + 1, log.applied + 1, 4096))
        if self.halted is None:
            self._retry_ms = 0

    def _hand_over(self):
        # A leader that cannot apply answers no one: the most caught-up voter leads.
        r = self.core
        best = 0
        for p in r.voters:
            if p != r.id and (not best or r.prs[p].match > r.prs[best].match):
                best = p
        if best and not r.lead_transferee:
            self.rawnode.transfer_leader(best)

    def _apply(self, ents):
        machine = self.machine
        pend = self._pending
        on_applied = self._on_applied
        trace = self.core.event_level >= EV.TRACE
        idx = 0
        try:
            for e in ents:
                idx = e[0]
                if e[2] == ENTRY_NORMAL and e[3]:
                    res = machine.apply(idx, e[3])
                else:
                    machine.skip(idx)
                    res = b"" if e[2] == ENTRY_CONF else None
                self.stats["applied"] += 1
                if on_applied is not None:
                    on_applied(e, res)
                if trace:
                    self._emit(EV.APPLIED, idx, 0)
                if pend:
                    p = pend.pop(idx, None)
                    if p is not None:
                        if p[0] == e[1] and res is not None:
                            self.reply(p[1], OK, 0, res)
                        else:
                            # Another leader's entry took this index: ours is lost.
                            self.stats["retry"] += 1
                            self._emit(EV.PROPOSAL_FAILED, RETRY, idx)
                            self.reply(p[1], RETRY, 0, b"")
        except (OverLimit, MemoryError) as ex:
            # Nothing of entry idx is applied (OverLimit changes nothing);
            # it is applied again when the machine is retried.
            machine.applied_index = idx - 1
            self._halt(ex)

    def maybe_snapshot(self, force=False):
        """Snapshot once snapshot_entries were applied since the last one, then
        compact all but snapshot_keep entries. force: snapshot whatever was
        applied and compact everything up to it (the flash ring is full)."""
        if self.halted is not None:
            return
        st = self.storage
        machine = self.machine
        applied = machine.applied_index
        snap = st.snapshot()
        if applied - snap.index >= (1 if force else self.snapshot_entries):
            cf = self.core.conf()
            b = b" ".join(sorted(self._book.values()))
            # One buffer, filled in place: a board's heap holds the image
            # once while it is made, not three times.
            n = 6 + len(b)
            d = bytearray(n + machine.snapshot_size())
            d[:n] = _BOOK + len(b).to_bytes(2, "little") + b
            machine.snapshot_into(memoryview(d)[n:])
            snap = st.create_snapshot(applied, cf[0], cf[2], d, cf[1], cf[3],
                                      self.core.snap_incs())
            d = None
            self.stats["snapshots"] += 1
            self._emit(EV.SNAP_TAKEN, applied, 0)
            # The image was the largest block this node allocates: give it
            # back before it fragments a board's heap.
            gc.collect()
        elif not force:
            return
        upto = snap.index - (0 if force else self.snapshot_keep)
        if upto > st.first_index() - 1:
            st.compact(upto)
            self.rawnode.compacted(upto, st.term(upto))

    # -- inspection -----------------------------------------------------------
    def status(self):
        """The node's state as a dict (raftio/admin.py)."""
        # Not named status in admin.py: the merged firmware is one namespace,
        # where mpraft.status (the REPL's) would be renamed for the clash.
        from raftio.admin import node_status
        return node_status(self)


def _no_reply(token, code, leader, result):
    pass
