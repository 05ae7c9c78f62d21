"""A board's node: the engine with UDP, the real clock, flash and a state machine.

This module only composes: the Ready loop, proposals, reads and snapshots
live in raftio/engine.py, the datagram handling in raftio/server.py, the
same code the simulator runs with a simulated network, clock and flash.

node.on_event(fn) / node.events: what the core and engine report
(raft/events.py) at node.set_event_level(level). Code on the same board
that proposes and reads uses raftio/app.py's AppNode, a Node with the
in-process API (an optional module: the dedicated firmware leaves it out).
The machine is the KV store unless one is given (any object with the
engine's state machine interface, e.g. raftapp's counter or lock service),
with the cluster's limits from the node file ("limits", written from the
cluster file) or else the board's, and the node's "capacity" when a board
was flashed with --force into a cluster whose limits it cannot hold
(README, "Cluster limits").
"""
import gc


from raft import msg as M
from raft.config import Config
from raft import events as EV
from raftio import clock, identity
from raftio.batch import BatchMachine
from raftio.engine import Engine
from raftio.frame import MAX_PAYLOAD
from raftio.server import Server
from raftio.udp import UdpTransport
from raftkv.kv import KVStateMachine

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_LOG_SLOT_OVERHEAD = const(20)  # raftio.logfile.HEADER
_EVENT_RING = const(32)   # events kept for mpraft.events()


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
    """One board's node: node_cfg (raftio/board.py) and board settings,
    with storage (raftio.storage.FlashStorage over the node's data folder in
    production, MemoryStorage in tests)."""

    def __init__(self, node_cfg, board, storage, seed=None, max_keys=None, snapshot_keep=None,  # mpraft: boot
                 machine=None):
        self.id = nid = node_cfg["node_id"]
        self.board = board
        peers = {}
        for p in node_cfg["peers"]:
            peers[p["id"]] = (p["host"], p["port"])
        # Incarnations (docs/incarnation.md): ours from the flash's identity
        # (a fresh one on a blank flash), the founders' from the node file.
        fs = getattr(storage, "fs", None)
        incs = {}
        for k, v in node_cfg.get("incs", {}).items():
            incs[int(k)] = v
        cfg = Config(nid, initial_voters(node_cfg), election_tick=board["election_ticks"],
                     inc=identity.ensure(fs, nid, node_cfg.get("inc", 0)) if fs is not None
                     else 0, incs=incs,
                     heartbeat_tick=board["heartbeat_ticks"],
                     ring_capacity=board["ring_capacity"],
                     max_entry_bytes=board["max_entry_bytes"],
                     max_size_per_msg=MAX_PAYLOAD - M.HEADER_SIZE,
                     # Committed entries per Ready: a node rebooting with
                     # thousands of them on flash must not read them into
                     # one list (it died of a MemoryError at every boot).
                     max_apply_bytes=MAX_PAYLOAD)
        if seed is None:
            seed = clock.ticks_ms() ^ (nid << 16)
        if max_keys is None:
            max_keys = board["heap_budget_bytes"] // 32
        if machine is None:
            lim = node_cfg.get("limits") or board
            machine = KVStateMachine(lim["max_key"], lim["max_value"], lim.get("max_keys", max_keys),
                                     lim["max_sessions"])
            cap = node_cfg.get("capacity")
            if cap:
                machine.cap_sessions = cap["max_sessions"]
                machine.app.cap_keys = cap["max_keys"]
        self.machine = machine
        key = node_cfg["key"]
        if isinstance(key, str):
            key = bytes(int(key[i:i + 2], 16) for i in range(0, len(key), 2))
        self.transport = UdpTransport(nid, peers, node_cfg["cluster_id"], key,
                                      allow_unknown=True)
        self.storage = storage
        if snapshot_keep is None:
            snapshot_keep = min(board["ring_capacity"] * 2, board["snapshot_entries"])
        # The last _EVENT_RING events as (ticks_ms, event), oldest first.
        self.events = []
        self._listeners = []
        self.clock = clock.Clock()
        # Client batches (raftio/batch.py) are unwrapped around the KV store.
        self.engine = Engine(cfg, storage, self.transport, BatchMachine(self.machine), self.clock,
                             _Rand(seed).below, board["tick_ms"], board["snapshot_entries"],
                             snapshot_keep, 4 * board["ring_capacity"], observer=self)
        self.server = Server(self.engine, self.transport, self.status)
        self.stopped = False
        # raftio.station.Station on a wifi_sta board: polled once per turn.
        self.station = None

    def close(self):
        self.transport.close()
        close = getattr(self.storage, "close", None)
        if close is not None:
            close()

    def run(self, duration_ms=-1):
        """Serve until stop() (or duration_ms passes, if >= 0)."""
        start = clock.ticks_ms()
        while not self.stopped:
            self.run_once()
            if duration_ms >= 0 and clock.ticks_diff(clock.ticks_ms(), start) >= duration_ms:
                break

    def run_once(self):
        self.server.run_once()
        if self.station is not None:
            self.station.poll()

    # -- events (raft/events.py) ---------------------------------------------
    def event(self, ev):
        """The engine's observer hook: keep the event, tell the listeners."""
        ring = self.events
        if len(ring) >= _EVENT_RING:
            ring.pop(0)
        ring.append((self.clock.ticks_ms(), ev))
        for fn in self._listeners:
            fn(ev)

    def on_event(self, fn):
        """Call fn(ev) for every event at or below the event level."""
        self._listeners.append(fn)

    def set_event_level(self, level):
        """0 or "off", 1 "essential" (default), 2 "info", 3 "debug", 4 "trace"."""
        self.engine.set_event_level(EV.level_of(level))

    def stop(self):
        self.stopped = True

    def status(self):
        st = self.engine.status()
        ma = getattr(gc, "mem_alloc", None)
        if ma is not None:
            # Live heap, not live + garbage: comparable between samples.
            gc.collect()
            st["heap_used"] = ma()
            st["heap_free"] = gc.mem_free()
        s = self.station
        if s is not None:
            st["wifi"] = {"up": s.up, "drops": s.drops, "attempts": s.attempts,
                          "rejoins": s.rejoins}
        return st


def initial_voters(node_cfg):
    """The first membership: node_cfg["voters"] if given, else every peer."""
    v = node_cfg.get("voters")
    return sorted(v) if v else sorted(p["id"] for p in node_cfg["peers"])


def slot_size(board):
    """Flash log slot size for a board: one maximal entry plus the slot header."""
    return board["max_entry_bytes"] + _LOG_SLOT_OVERHEAD
