"""A simulated node: the engine that ships, with simulated infrastructure.

A SimNode is raftio.engine.Engine and raftio.server.Server, the code a
board runs, built from:
  - SimTransport: datagrams framed and authenticated (raftio.frame) and
    encoded exactly as on the wire, carried by the simulator's faulty
    network (simnet.Network) instead of a socket;
  - SimClock: milliseconds that move only when the simulator steps, with
    ticks_ms's wrap (it starts just before the wrap, so every long run
    crosses it);
  - the fake flash (raftio.fakeflash) under the real flash formats when
    power cuts are simulated, MemoryStorage otherwise;
  - ChainMachine: the KV state machine (raftkv), or the workload's (the
    lock service with --machine lock), plus a CRC chain over every
    applied entry, which the checker compares across nodes and snapshots.
Only the storage survives a crash; a restart builds a new engine from it.
"""
import binascii
import struct

from raft.config import READ_LEASE, READ_SAFE, Config
from raft.errors import DecodeError
from raft.memstorage import MemoryStorage
from raftio import wire
from raftio.engine import Engine
from raftio.fakeflash import FakeBlockDev, FakeFlash
from raftio.rawlog import RawLog, RawStorage
from raftio.frame import HEADER, MAX_DATAGRAM, SEND_ERROR, Framer
from raftio.server import Server
from raftio.storage import FlashStorage
from raftkv import codec
from raftkv.codec import REGISTER, SESSION_EXPIRED, STALE_SEQ
from raftkv.kv import KVStateMachine

CLUSTER_ID = 0x51A
KEY = b"simulated cluster key, 32 bytes!"
TICK_MS = 10
_PERIOD = 1 << 30
_MASK = _PERIOD - 1
_HALF = 1 << 29
# Clients live at addresses CLIENT_BASE + pid; nodes at their id.
CLIENT_BASE = 1000


class SimClock:
    """The clock contract of raftio.clock, advanced by the simulator."""

    def __init__(self, start=_PERIOD - 50000):
        self.now = start & _MASK

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return ((a - b + _HALF) & _MASK) - _HALF

    def ticks_add(self, a, d):
        return (a + d) & _MASK

    def advance(self, ms):
        self.now = (self.now + ms) & _MASK


class SimTransport:
    """The transport contract of raftio.udp.UdpTransport over simnet.

    Addresses are ints: a node's id, or CLIENT_BASE + pid for a client.
    set_peer(id, "sim", port) learns that node id lives at address port."""

    def __init__(self, sim, nid):
        self.sim = sim
        self.id = nid
        self.framer = Framer(CLUSTER_ID, KEY)
        self.counters = self.framer.counters
        self.tx = bytearray(MAX_DATAGRAM)
        # [(from address, datagram)] delivered, not yet received.
        self.inbox = []
        # Node id of the sender of the frame last returned by recv(); 0 = not a peer.
        self.last_peer = 0
        # Invariant: _addr_of and _peer_of are inverse maps.
        self._addr_of = {}
        self._peer_of = {}
        for i in sim.ids:
            self.set_peer(i, "sim", i)

    def set_peer(self, peer_id, host, port):
        if host != "sim":
            raise ValueError("simnet: no host %r" % host)
        old = self._addr_of.pop(peer_id, None)
        if old is not None:
            self._peer_of.pop(old, None)
        self._addr_of[peer_id] = port
        self._peer_of[port] = peer_id

    def _put(self, to, n):
        n = self.framer.seal(self.tx, n)
        self.sim.net.send(self.sim.now, self.id, to, bytes(self.tx[:n]))
        return True

    def send(self, peer_id, writer):
        to = self._addr_of.get(peer_id)
        if to is None:
            self.counters.slots[SEND_ERROR] += 1  # as UdpTransport counts it
            return False
        return self._put(to, writer(self.tx, HEADER))

    def send_payload_to(self, addr, data, n):
        self.tx[HEADER:HEADER + n] = memoryview(data)[:n]
        return self._put(addr, n)

    def poll(self, timeout_ms):
        # Never blocks: the simulator decides what has arrived by now.
        return bool(self.inbox)

    def recv(self):
        inbox = self.inbox
        while inbox:
            frm, buf = inbox.pop(0)
            plen = self.framer.check(buf, len(buf))
            if plen >= 0:
                self.last_peer = self._peer_of.get(frm, 0)
                return buf, HEADER, plen, frm
        return None

    def close(self):
        pass


class SimClientPort:
    """A simulated client's end of the wire: requests in the client protocol
    (raftio/wire.py), sealed like every datagram, onto the simulator's
    network from client address CLIENT_BASE + pid; replies opened back."""

    def __init__(self, sim):
        self.sim = sim
        self.framer = Framer(CLUSTER_ID, KEY)
        self.tx = bytearray(MAX_DATAGRAM)

    def send(self, pid, to, rid, cmd):
        n = self.framer.seal(self.tx, wire.encode_request_into(self.tx, HEADER, rid, cmd))
        sim = self.sim
        sim.net.send(sim.now, CLIENT_BASE + pid, to, bytes(self.tx[:n]))

    def open(self, datagram):
        """(rid, code, leader, body) of a reply, or None if it is not one."""
        n = self.framer.check(datagram, len(datagram))
        if n < 0:
            return None
        try:
            return wire.decode_reply(datagram, HEADER, n)[1:]
        except DecodeError:
            return None


class ChainMachine:
    """The node's state machine (the KV machine, or any session machine
    given as inner, kept in `kv` by its historical name), plus what the
    checker and the clients' ledger need: `chain`, a CRC over every applied
    entry (index, term, data) kept in the snapshot; `executed`, the (client,
    seq) the last apply executed (not a cached duplicate, not a no-op);
    `last_result` and `duplicate` (answered from the session cache) of the
    last apply."""

    def __init__(self, max_sessions, inner=None):
        if inner is None:
            inner = KVStateMachine(max_key=16, max_value=32, max_keys=64,
                                   max_sessions=max_sessions)
        self.kv = inner
        self.chain = 0
        self.executed = None
        self.last_result = None
        self.duplicate = False

    @property
    def applied_index(self):
        return self.kv.applied_index

    @applied_index.setter
    def applied_index(self, i):
        self.kv.applied_index = i

    def apply(self, index, data):
        self.executed = None
        kv = self.kv
        dup = kv.duplicates
        res = kv.apply(index, data)
        self.last_result = res
        self.duplicate = kv.duplicates != dup
        if res is not None and kv.duplicates == dup:
            try:
                op, cid, seq, _, _, _ = codec.decode_command(data)
                st = codec.decode_result(res)[0]
            except Exception:
                return res
            if op != REGISTER and st not in (SESSION_EXPIRED, STALE_SEQ):
                self.executed = (cid, seq)
        return res

    def skip(self, index):
        self.executed = None
        self.last_result = None
        self.duplicate = False
        self.kv.skip(index)

    def chain_entry(self, e):
        self.chain = binascii.crc32(e[3], binascii.crc32(b"%d:%d:" % (e[0], e[1]), self.chain))

    def is_read(self, data):
        return self.kv.is_read(data)

    def query(self, data):
        return self.kv.query(data)

    def snapshot_size(self):
        return 8 + self.kv.snapshot_size()

    def snapshot_into(self, buf):
        struct.pack_into("<II", buf, 0, self.kv.applied_index, self.chain)
        self.kv.snapshot_into(memoryview(buf)[8:])

    def restore(self, data):
        self.chain = struct.unpack_from("<II", data, 0)[1]
        self.kv.restore(memoryview(data)[8:])


class _Observer:
    """What the simulator learns from the engine: the checker's hooks, the
    chain, and the clients' exactly-once ledger."""

    def __init__(self, n):
        self.n = n

    def persisted(self, rd):
        self.n.sim.checker.persisted(self.n, rd)

    def applied(self, e, res):
        n = self.n
        n.machine.chain_entry(e)
        n.sim.checker.applied(n, e)
        wl = n.sim.workload
        if wl is not None:
            wl.on_apply(n, e)

    def restored(self, snap):
        n = self.n
        n.sim.snapshots_installed += 1
        if n.sim.rec is not None:
            n.sim.rec.snap_installed(n, snap.index)
        n.sim.checker.restored(n, snap)


class _RecordingObserver(_Observer):
    """With --timeline: the engine's events too (raft/events.py), for the
    recorder. A separate class, as the engine looks the hook up once and
    builds no event for an observer without it."""

    def event(self, ev):
        self.n.sim.rec.event(self.n, ev)


class SimNode:
    """One node: durable storage survives crashes; everything else does not."""

    def __init__(self, sim, nid):
        self.id = nid
        self.sim = sim
        self.rand = sim.rand.fork()
        # The incarnation this node's flash holds (0: unbound; wipe fault).
        self.inc = sim.incs.get(nid, 0)
        self._durable = None
        if sim.flash:
            # Real flash formats over a fake flash that can lose power at
            # any byte of any write (raftio/fakeflash.py).
            self.fs = FakeFlash()
            self.storage = self.open_storage()
        else:
            self.fs = None
            self.storage = MemoryStorage(sim.ids)
        self.up = True
        self.boot()

    def open_storage(self, fs=None):
        fs = self.fs if fs is None else fs
        if self.sim.opts.get("log") == "raw":
            # A raw NOR partition of 32 1 KB blocks (raftio/rawlog.py) on the
            # same fake flash: the same power cuts, NOR rules enforced.
            return RawStorage(fs, self.sim.ids, (), 320, 96, "raft",
                              RawLog(FakeBlockDev(fs, "raftlog", 32, 1024), 320, 96))
        return FlashStorage(fs, self.sim.ids, (), slots=320, slot_size=96)

    def durable_storage(self):
        """While the power is off (the flash refuses every read): a storage
        opened on a copy of what reached the flash, which is what the next
        boot finds; the checker asks it what is durable. Cached until the
        flash changes (a power cycle replaces it)."""
        d = self._durable
        if d is None or d[0] is not self.fs:
            d = self._durable = (self.fs, self.open_storage(self.fs.reboot()))
        return d[1]

    def wipe(self, inc):
        """The whole flash is lost (identity included): the node is down
        and boots (the simulator's restart) as incarnation inc."""
        self.up = False
        self.inc = inc
        if self.fs is not None:
            self.fs = FakeFlash()
            self.storage = self.open_storage()
        else:
            self.storage = MemoryStorage(self.sim.ids)
        self.sim.checker.wiped(self)

    def power_cycle(self):
        """Reboot the flash: whatever did not reach it is gone."""
        if self.fs is not None:
            self.fs = self.fs.reboot(reuse=True)
            self.storage = self.open_storage()

    def boot(self):
        s = self.sim
        o = s.opts
        cfg = Config(self.id, s.ids, election_tick=o["election"], heartbeat_tick=1,
                     read_only=READ_LEASE if o["reads"] == "lease" else READ_SAFE,
                     ring_capacity=o["ring"], max_inflight=16,
                     max_size_per_msg=o["batch_bytes"],
                     max_entry_bytes=min(64, o["batch_bytes"] - 7),
                     max_apply_bytes=o["apply_bytes"], inc=self.inc, incs=s.incs)
        self.transport = SimTransport(s, self.id)
        wl = s.workload
        make = getattr(wl, "machine", None)
        self.machine = ChainMachine(wl.max_sessions if wl is not None else 16,
                                    make() if make is not None else None)
        self.engine = Engine(cfg, self.storage, self.transport, self.machine, s.clock,
                             self.rand.below, TICK_MS, o["snap_every"] or 1 << 30,
                             o["snap_keep"], 4 * o["ring"],
                             _Observer(self) if s.rec is None else _RecordingObserver(self))
        if s.rec is not None:
            # Votes are reported at DEBUG: the recorder wants the pre-votes.
            self.engine.set_event_level(s.rec.EVENT_LEVEL)
        self.server = Server(self.engine, self.transport)
        self.up = True

    @property
    def applied(self):
        return self.machine.applied_index

    def deliver(self, frm, datagram):
        self.transport.inbox.append((frm, datagram))
