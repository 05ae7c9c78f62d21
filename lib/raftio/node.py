"""The node loop: one Raft node serving the raftkv store over UDP.

Each turn of `run_once`:
  1. wait on the socket (select.poll) until a datagram arrives or the next
     tick is due, whichever is first; never wait while work is pending;
  2. drain every waiting datagram (bounded): Raft messages from peers are
     stepped, client commands are proposed, client GETs are queued for one
     shared ReadIndex round, status queries are answered;
  3. tick the core if a tick is due (the real clock lives here, never in the
     core);
  4. start one ReadIndex round for the GETs queued in step 2;
  5. drive the Ready contract (raft/rawnode.py), in order: send messages
     (they promise nothing, so followers write while we write), persist
     (snapshot, entries, hard state), send persisted_messages, apply (restore
     a snapshot, apply committed entries and answer their clients), advance;
     answer reads whose read index is applied; snapshot and compact once
     snapshot_entries entries were applied since the last snapshot.

Hard state: written whenever the Ready says it must be durable
(rd.sync_hard_state: term or vote changed, or a membership change was
applied); a commit index alone only every _HS_COMMIT_LAG entries (it is
volatile state in the paper; a restarted node relearns it), which saves one
flash write per commit.

Draining before driving is the batching: every proposal that arrived in one
turn shares one Ready, one storage append and one append message per peer.

Reads are linearizable through ReadIndex (thesis 6.4): a GET is answered
from the local store only once applied >= the read index the leader
confirmed with a heartbeat round. Followers answer NOT_LEADER with the
leader hint rather than forwarding, so a client finds the leader in one hop.
"""
import gc
import json

from raft import confchange as CC
from raft import msg as M
from raft.config import Config
from raft.core import LEADER, ROLE_NAMES
from raft.errors import ConfigError, DecodeError, EntryTooLarge, NotLeader, ProposalDropped
from raft.rawnode import RawNode
from raft.storage import ENTRY_CONF, ENTRY_NORMAL
from raftio import clock, wire
from raftio.fs import StorageFull
from raftio.frame import DROP_MALFORMED, DROP_STALE_TERM, DROP_UNKNOWN_PEER, MAX_PAYLOAD
from raftio.udp import UdpTransport
from raftkv import codec
from raftkv.kv import KVStateMachine

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_MAX_DRAIN = const(512)   # datagrams handled per turn before the core gets a turn
_MAX_READY = const(16)    # Ready rounds per turn
_LOG_SLOT_OVERHEAD = const(20)  # raftio.logfile.HEADER
_HS_COMMIT_LAG = const(64)
_BOOK = b"RNA\x01"
# Snapshot data: _BOOK (address book, version 1), the book's length as
# u16 little-endian, the book b"id=host:port id=host:port ...", then the KV
# image (which starts b"RKV"). A snapshot from before the book is the plain
# KV image and still restores. The length keeps a bad book from shifting the
# KV image: a bad record costs a counted drop, not the snapshot.


def _role_name(r):
    if r.id in r.learners:
        return "learner"
    n = ROLE_NAMES[r.role]
    return "candidate" if n == "pre-candidate" else n


class _Rand:
    """xorshift32 for election jitter; seeded per node so nodes differ."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def below(self, n):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s % n


class Node:
    """A Raft node, its flash storage, its KV state machine and its socket.

    storage: a raft.storage implementation (raftio.storage.FlashStorage over
    the node's data folder in production, MemoryStorage in tests).
    """

    def __init__(self, node_cfg, board, storage, seed=None, max_keys=None, snapshot_keep=None):
        self.id = nid = node_cfg["node_id"]
        self.board = board
        peers = {}
        for p in node_cfg["peers"]:
            peers[p["id"]] = (p["host"], p["port"])
        voters = initial_voters(node_cfg)
        self.storage = storage
        # The hard state last written to storage (its commit may lag; see _drive).
        self._hs = storage.initial_state()[0]
        self.tick_ms = board["tick_ms"]
        cfg = Config(nid, voters, election_tick=board["election_ticks"],
                     heartbeat_tick=board["heartbeat_ticks"],
                     ring_capacity=board["ring_capacity"],
                     max_entry_bytes=board["max_entry_bytes"],
                     max_size_per_msg=MAX_PAYLOAD - M.HEADER_SIZE)
        if seed is None:
            seed = clock.ticks_ms() ^ (nid << 16)
        self._rand = _Rand(seed)
        self.node = RawNode(cfg, storage, self._rand.below)
        self.raft = self.node.raft
        if max_keys is None:
            max_keys = board["heap_budget_bytes"] // 32
        self.kv = KVStateMachine(board["max_key"], board["max_value"], max_keys,
                                 board["max_sessions"])
        # Invariant: kv.applied_index == raft.log.applied after every advance
        # (0 here; the snapshot restored at the end of __init__ sets it).
        self.snapshot_entries = board["snapshot_entries"]
        # Entries kept behind a snapshot so a briefly lagging follower catches
        # up from the log instead of needing the whole snapshot.
        self.snapshot_keep = (snapshot_keep if snapshot_keep is not None
                              else min(board["ring_capacity"] * 2, board["snapshot_entries"]))
        key = node_cfg["key"]
        if isinstance(key, str):
            key = bytes(int(key[i:i + 2], 16) for i in range(0, len(key), 2))
        self.t = UdpTransport(nid, peers, node_cfg["cluster_id"], key, allow_unknown=True)
        self.counters = self.t.counters
        self._rx_msg = M.Message()
        self._out = None
        # index -> (term, client addr, rid): proposals this node made as leader.
        # Invariant: len(_pending) <= _max_pending.
        self._pending = {}
        self._max_pending = 4 * board["ring_capacity"]
        # GETs waiting for the next ReadIndex round: [(addr, rid, key)].
        self._read_batch = []
        # ctx -> [tick started, [(addr, rid, key)]]: rounds not yet confirmed.
        self._reads = {}
        # [(read index, [(addr, rid, key)])]: confirmed, waiting for apply.
        self._ready_reads = []
        self._read_ctx = 0
        self._resp = bytearray(MAX_PAYLOAD)
        self.stopped = False
        self.started = clock.ticks_ms()
        self._next_tick = clock.ticks_add(self.started, self.tick_ms)
        self.stats = {"proposed": 0, "applied": 0, "reads": 0, "snapshots": 0, "forced": 0,
                      "not_leader": 0, "busy": 0, "retry": 0, "bad_request": 0}
        # id -> b"id=host:port" taught by applied conf changes (node files list
        # the rest); snapshots carry it, as they outlive the entries.
        self._book = {}
        # Last, as it needs the transport (set_peer) and the counters.
        snap = storage.snapshot()
        if snap.index > 0:
            self._restore(snap)

    def close(self):
        self.t.close()
        close = getattr(self.storage, "close", None)
        if close is not None:
            close()

    # -- the loop -------------------------------------------------------------
    def run(self, duration_ms=-1):
        """Serve until stop() (or duration_ms passes, if >= 0)."""
        start = clock.ticks_ms()
        while not self.stopped:
            self.run_once()
            if duration_ms >= 0 and clock.ticks_diff(clock.ticks_ms(), start) >= duration_ms:
                break

    def stop(self):
        self.stopped = True

    def run_once(self):
        t = self.t
        wait = clock.ticks_diff(self._next_tick, clock.ticks_ms())
        if wait < 0 or self.node.has_ready() or self._read_batch or self._ready_reads:
            wait = 0
        if t.poll(wait):
            k = 0
            while k < _MAX_DRAIN:
                got = t.recv()
                if got is None:
                    break
                self._on_datagram(got[0], got[1], got[2], got[3])
                k += 1
        now = clock.ticks_ms()
        late = clock.ticks_diff(now, self._next_tick)
        if late >= 0:
            self.node.tick()
            if late > 4 * self.tick_ms:
                # The loop stalled (GC, a snapshot write): do not replay a
                # burst of ticks that could fire an election all at once.
                self._next_tick = clock.ticks_add(now, self.tick_ms)
            else:
                self._next_tick = clock.ticks_add(self._next_tick, self.tick_ms)
            self._expire_reads()
        if self._read_batch:
            self._start_read()
        self._drive()

    # -- input ----------------------------------------------------------------
    def _on_datagram(self, buf, off, n, addr):
        typ = wire.peek_type(buf, off, n)
        if typ == wire.ADMIN:
            self._on_admin(buf, off, n, addr)
            return
        if wire.is_client_type(typ):
            self._on_client(buf, off, n, addr)
            return
        frm = self.t.last_peer
        if frm == 0:
            # Raft messages only from a listed peer address.
            self.counters.slots[DROP_UNKNOWN_PEER] += 1
            return
        m = self._rx_msg
        try:
            M.decode_into(m, buf, n, off)
        except DecodeError:
            self.counters.slots[DROP_MALFORMED] += 1
            return
        if m.frm != frm or m.to != self.id:
            self.counters.slots[DROP_MALFORMED] += 1
            return
        if m.term < self.raft.term and m.term != 0:
            # The core still answers it (so a stale leader steps down) but
            # otherwise ignores it; counted so status shows the churn.
            self.counters.slots[DROP_STALE_TERM] += 1
        self.node.step(m)

    def _on_client(self, buf, off, n, addr):
        try:
            typ, rid, p, cn = wire.decode_request(buf, off, n)
        except DecodeError:
            self.counters.slots[DROP_MALFORMED] += 1
            return
        if typ == wire.STATUS_Q:
            text = json.dumps(self.status()).encode()
            if len(text) > MAX_PAYLOAD - wire.REQ_HDR:
                text = b"{}"
            ln = wire.encode_status_into(self._resp, 0, rid, text)
            self.t.send_payload_to(addr, self._resp, ln)
            return
        try:
            op = codec.decode_command(buf, p, cn)[0]
        except DecodeError:
            self.stats["bad_request"] += 1
            self._reply(addr, rid, wire.BAD_REQUEST)
            return
        r = self.raft
        if r.role != LEADER:
            self.stats["not_leader"] += 1
            self._reply(addr, rid, wire.NOT_LEADER, r.lead)
            return
        if op == codec.GET:
            key = codec.decode_command(buf, p, cn)[3]
            if len(self._read_batch) >= self._max_pending:
                self.stats["busy"] += 1
                self._reply(addr, rid, wire.BUSY)
                return
            self._read_batch.append((addr, rid, key))
            return
        if len(self._pending) >= self._max_pending:
            self.stats["busy"] += 1
            self._reply(addr, rid, wire.BUSY)
            return
        try:
            idx = self.node.propose(bytes(buf[p:p + cn]))
        except NotLeader:
            self.stats["not_leader"] += 1
            self._reply(addr, rid, wire.NOT_LEADER, r.lead)
            return
        except EntryTooLarge:
            self.stats["bad_request"] += 1
            self._reply(addr, rid, wire.BAD_REQUEST)
            return
        except ProposalDropped:
            # LogFull or a leadership transfer: nothing was appended.
            self.stats["busy"] += 1
            self._reply(addr, rid, wire.BUSY)
            return
        self.stats["proposed"] += 1
        self._pending[idx] = (r.term, addr, rid)

    def _on_admin(self, buf, off, n, addr):
        try:
            rid, op, nid, ctx = wire.decode_admin(buf, off, n)
        except DecodeError:
            self.counters.slots[DROP_MALFORMED] += 1
            return
        r = self.raft
        if r.role != LEADER:
            self._reply(addr, rid, wire.NOT_LEADER, r.lead)
            return
        if op == wire.A_TRANSFER:
            # OK means started: the caller watches status for the new leader.
            if nid not in r.voters:
                self._reply(addr, rid, wire.BAD_REQUEST)
                return
            self.node.transfer_leader(nid)
            self._reply(addr, rid, wire.OK)
            return
        # Membership: answered OK once applied (see _apply), like a put.
        try:
            idx = self.node.propose_conf_change(op - 1, nid, ctx)
        except NotLeader:
            self._reply(addr, rid, wire.NOT_LEADER, r.lead)
            return
        except ProposalDropped:
            self._reply(addr, rid, wire.BUSY)  # another change is still pending
            return
        except (ConfigError, EntryTooLarge):
            self._reply(addr, rid, wire.BAD_REQUEST)
            return
        self._pending[idx] = (r.term, addr, rid)

    def _reply(self, addr, rid, code, leader=0, result=b""):
        ln = wire.encode_response_into(self._resp, 0, rid, code, leader, result)
        self.t.send_payload_to(addr, self._resp, ln)

    # -- reads ----------------------------------------------------------------
    def _start_read(self):
        batch = self._read_batch
        self._read_batch = []
        r = self.raft
        if r.role != LEADER:
            for a, rid, _ in batch:
                self._reply(a, rid, wire.NOT_LEADER, r.lead)
            return
        self._read_ctx = (self._read_ctx + 1) & 0x7FFFFFFF or 1
        ctx = self._read_ctx
        self._reads[ctx] = [r.ticks, batch]
        try:
            self.node.read_index(ctx)
        except NotLeader:
            del self._reads[ctx]
            for a, rid, _ in batch:
                self._reply(a, rid, wire.NOT_LEADER, r.lead)

    def _expire_reads(self):
        # The core drops read rounds when leadership changes; answer their
        # clients so they retry elsewhere instead of waiting out a timeout.
        reads = self._reads
        if not reads:
            return
        r = self.raft
        limit = 2 * r.cfg.election_tick
        for ctx in list(reads):
            ent = reads[ctx]
            if r.role != LEADER or r.ticks - ent[0] > limit:
                del reads[ctx]
                for a, rid, _ in ent[1]:
                    self.stats["retry"] += 1
                    self._reply(a, rid, wire.NOT_LEADER if r.role != LEADER else wire.RETRY,
                                r.lead)

    def _on_read_states(self, states):
        for index, ctx in states:
            ent = self._reads.pop(ctx, None)
            if ent is not None:
                self._ready_reads.append((index, ent[1]))

    def _serve_reads(self):
        rr = self._ready_reads
        if not rr:
            return
        applied = self.kv.applied_index
        keep = []
        for index, batch in rr:
            if index > applied:
                keep.append((index, batch))
                continue
            for a, rid, key in batch:
                v = self.kv.get_local(key)
                self.stats["reads"] += 1
                if v is None:
                    self._reply(a, rid, wire.OK, 0, b"\x01")
                else:
                    self._reply(a, rid, wire.OK, 0, codec.encode_result(codec.OK, v))
        self._ready_reads = keep

    # -- the Ready contract -----------------------------------------------------
    def _write_msg(self, tx, off):
        return M.encode_into(self._out, tx, off)

    def _send(self, m):
        self._out = m
        self.t.send(m.to, self._write_msg)

    def _drive(self):
        node = self.node
        st = self.storage
        k = 0
        while k < _MAX_READY and node.has_ready():
            k += 1
            rd = node.ready()
            # Messages that promise nothing go first, so followers write
            # their copy while we write ours (rawnode step 3 allows this).
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
                    self._maybe_snapshot(True)
                    st.append(rd.entries)
            hs = rd.hard_state
            # A hard state whose only news is the commit index (volatile in
            # the paper; a restarted node relearns it) is written every
            # _HS_COMMIT_LAG entries: one flash write fewer per commit.
            if hs is not None and (rd.sync_hard_state or hs[2] - self._hs[2] >= _HS_COMMIT_LAG):
                st.set_hard_state(hs)
                self._hs = hs
            # 2. send what may leave only once the above is durable
            for m in rd.persisted_messages:
                self._send(m)
            # 3. apply
            if rd.snapshot is not None:
                self._restore(rd.snapshot)
            if rd.committed_entries:
                self._apply(rd.committed_entries)
            if rd.read_states:
                self._on_read_states(rd.read_states)
            # 4. advance (it applies rd.conf_changes to the core)
            node.advance(rd)
            for c in rd.conf_changes:
                self._on_conf_change(c[1], c[2], c[3])
            self._serve_reads()
            self._maybe_snapshot()

    def _on_conf_change(self, op, nid, ctx):
        # ctx is "host:port" from raftctl: how every node learns where a
        # joining node listens. Booked for self too: others learn it from
        # our snapshots.
        if op == CC.REMOVE:
            self._book.pop(nid, None)
        elif ctx:
            try:
                host, port = ctx.decode().rsplit(":", 1)
                port = int(port)
                if nid != self.id:
                    self.t.set_peer(nid, host, port)
                self._book[nid] = b"%d=%s" % (nid, ctx)
            except (ValueError, OSError):
                self.counters.slots[DROP_MALFORMED] += 1

    def _restore(self, snap):
        data = snap.data
        n = 0
        if data[:4] == _BOOK:
            n = 6 + int.from_bytes(data[4:6], "little")
        self.kv.restore(memoryview(data)[n:])
        self.kv.applied_index = snap.index
        self._book = {}
        for w in data[6:n].split():
            try:
                nid, a = w.split(b"=", 1)
                self._on_conf_change(CC.ADD_LEARNER, int(nid), a)
            except ValueError:
                self.counters.slots[DROP_MALFORMED] += 1
        pend = self._pending
        for i in list(pend):
            if i <= snap.index:
                term, a, rid = pend.pop(i)
                self.stats["retry"] += 1
                self._reply(a, rid, wire.RETRY)

    def _apply(self, ents):
        kv = self.kv
        pend = self._pending
        for e in ents:
            idx = e[0]
            if e[2] == ENTRY_NORMAL and e[3]:
                res = kv.apply(idx, e[3])
            else:
                kv.skip(idx)
                res = b"" if e[2] == ENTRY_CONF else None
            self.stats["applied"] += 1
            if pend:
                p = pend.pop(idx, None)
                if p is not None:
                    if p[0] == e[1] and res is not None:
                        self._reply(p[1], p[2], wire.OK, 0, res)
                    else:
                        # Another leader's entry took this index: ours is lost.
                        self.stats["retry"] += 1
                        self._reply(p[1], p[2], wire.RETRY)

    def _maybe_snapshot(self, force=False):
        """Snapshot once snapshot_entries were applied since the last one, then
        compact all but snapshot_keep entries. force: snapshot whatever was
        applied and compact everything up to it (the flash ring is full)."""
        st = self.storage
        applied = self.kv.applied_index
        snap = st.snapshot()
        if applied - snap.index >= (1 if force else self.snapshot_entries):
            r = self.raft
            b = b" ".join(sorted(self._book.values()))
            # One buffer, filled in place: a board's heap holds the image
            # once while it is made, not three times.
            n = 6 + len(b)
            d = bytearray(n + self.kv.snapshot_size())
            d[:n] = _BOOK + len(b).to_bytes(2, "little") + b
            self.kv.snapshot_into(memoryview(d)[n:])
            snap = st.create_snapshot(applied, r.voters, r.learners, d)
            self.stats["snapshots"] += 1
            gc.collect()
        elif not force:
            return
        upto = snap.index - (0 if force else self.snapshot_keep)
        if upto > st.first_index() - 1:
            st.compact(upto)
            self.node.compacted(upto, st.term(upto))

    # -- inspection -----------------------------------------------------------
    def status(self):
        r = self.raft
        log = r.log
        st = {"id": self.id, "role": _role_name(r), "term": r.term, "vote": r.vote,
              "leader": r.lead, "commit": log.committed, "applied": log.applied,
              "first": log.snap_index + 1, "last": log.last,
              "snapshot": self.storage.snapshot().index,
              "drops": self.counters.as_dict(), "keys": len(self.kv),
              "voters": list(r.voters), "learners": list(r.learners),
              "uptime_ms": clock.ticks_diff(clock.ticks_ms(), self.started)}
        for k in ("proposed", "applied", "reads", "snapshots", "forced", "not_leader", "busy",
                  "retry"):
            st["n_" + k] = self.stats[k]
        ma = getattr(gc, "mem_alloc", None)
        if ma is not None:
            # Live heap, not live + garbage: comparable between samples.
            gc.collect()
            st["heap_used"] = ma()
            st["heap_free"] = gc.mem_free()
        if r.role == LEADER:
            prs = {}
            for p in r.peers:
                if p != r.id:
                    prs[str(p)] = r.prs[p].match
            st["match"] = prs
        return st


def initial_voters(node_cfg):
    """The first membership: node_cfg["voters"] if given, else every peer."""
    v = node_cfg.get("voters")
    return sorted(v) if v else sorted(p["id"] for p in node_cfg["peers"])


def slot_size(board):
    """Flash log slot size for a board: one maximal entry plus the slot header."""
    return board["max_entry_bytes"] + _LOG_SLOT_OVERHEAD
