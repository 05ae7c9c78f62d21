"""CPU per put, stage by stage, for the leader and a follower, in one process.

    micropython -X heapsize=256M tools/bench/profile_path.py [--batch 28] [--rounds 200]
        [--nodes 5] [--gc on|off] [--group 1]   (--group 16: puts in client batches of 16)

The shipped engine, server, flash storage (real files, real flushes) and KV
store of every node run in this one process; datagrams are framed and
authenticated exactly as on the wire (raftio.frame) but handed over in
memory instead of through sockets. Each round a client sends `batch` puts
(one session each, as the benchmark's closed loop does) to the leader, and
the nodes exchange what they send until the round's puts are answered.
The stages of the leader's and one follower's path are timed with
ticks_us wrappers (their own cost, measured first, is taken out of the
callers). Nothing else runs in the process, so apart from the flushes
(fsync, which block) wall time is CPU time. Socket costs are not here:
tools/bench/profile_leader.py and the system time in /proc give those.
Runs under CPython too (slower, and not what a board runs).
"""
import sys
sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import gc  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from raft import msg as M  # noqa: E402
from raft.config import Config  # noqa: E402
from raftio import wire  # noqa: E402
from raftio.batch import BatchMachine, encode_into as encode_batch  # noqa: E402
from raftio.engine import Engine  # noqa: E402
from raftio.frame import HEADER, MAX_DATAGRAM, MAX_PAYLOAD, Framer  # noqa: E402
from raftio.fs import RealFS  # noqa: E402
from raftio.server import Server  # noqa: E402
from raftio.storage import FlashStorage  # noqa: E402
from raftkv import codec  # noqa: E402
from raftkv.kv import KVStateMachine  # noqa: E402

try:
    _now = time.ticks_us
    _diff = time.ticks_diff
except AttributeError:  # CPython
    def _now():
        return time.perf_counter_ns() // 1000

    def _diff(a, b):
        return a - b

CLUSTER_ID = 7
KEY = b"profile key, thirty-two bytes!!!"
CLIENT = 1000


class Clock:
    def ticks_ms(self):
        return 0

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, d):
        return a + d


class MemTransport:
    """The transport contract, in memory: sealed datagrams into the peers' inboxes."""

    def __init__(self, nid, net):
        self.id = nid
        self.net = net
        self.framer = Framer(CLUSTER_ID, KEY)
        self.counters = self.framer.counters
        self.tx = bytearray(MAX_DATAGRAM)
        self.last_peer = 0

    def set_peer(self, peer_id, host, port):
        pass

    def _put(self, to, n):
        n = self.framer.seal(self.tx, n)
        self.net.setdefault(to, []).append((self.id, bytes(self.tx[:n])))
        return True

    def send(self, peer_id, writer):
        return self._put(peer_id, writer(self.tx, HEADER))

    def send_payload_to(self, addr, data, n):
        self.tx[HEADER:HEADER + n] = memoryview(data)[:n]
        return self._put(addr, n)


STATS = {}
_STACK = []


def wrap(name, fn):
    slot = STATS.setdefault(name, [0, 0, 0, 0])

    def timed(*args):
        t0 = _now()
        acc = [0, 0]
        _STACK.append(acc)
        r = fn(*args)
        dt = _diff(_now(), t0)
        _STACK.pop()
        slot[0] += 1
        slot[1] += dt
        slot[2] += acc[0]
        slot[3] += acc[1]
        if _STACK:
            up = _STACK[-1]
            up[0] += dt
            up[1] += 1
        return r
    return timed


def wrapper_cost():
    def noop(a):
        return a
    w = wrap("_cal", noop)
    outer = [0, 0]
    _STACK.append(outer)
    best = None
    for _ in range(5):
        t0 = _now()
        for i in range(2000):
            w(i)
        t1 = _now()
        for i in range(2000):
            noop(i)
        t2 = _now()
        c = (_diff(t1, t0) - _diff(t2, t1)) / 2000
        best = c if best is None or c < best else best
    _STACK.pop()
    del STATS["_cal"]
    return best


def instrument(node, role):
    eng, srv, st = node
    p = role + ": "
    t = eng.transport
    t.framer.check = wrap(p + "authenticate in", t.framer.check)
    t.framer.seal = wrap(p + "authenticate out", t.framer.seal)
    srv.on_datagram = wrap(p + "decode+propose/step", srv.on_datagram)
    eng.drive = wrap(p + "drive (ready, advance, rest)", eng.drive)
    st.append = wrap(p + "persist (write)", st.append)
    st._log.sync = wrap(p + "flush (fsync, blocks)", st._log.sync)
    st.set_hard_state = wrap(p + "hard state (fsync, blocks)", st.set_hard_state)
    eng.machine.machine.apply = wrap(p + "apply (KV)", eng.machine.machine.apply)
    eng.machine.machine.is_read = wrap(p + "is_read (KV)", eng.machine.machine.is_read)
    rn = eng.rawnode
    rn.ready = wrap(p + "ready", rn.ready)
    rn.advance = wrap(p + "advance", rn.advance)
    rn.has_ready = wrap(p + "has_ready", rn.has_ready)
    eng._apply = wrap(p + "engine apply loop", eng._apply)
    eng.maybe_snapshot = wrap(p + "snapshots (fsync, blocks)", eng.maybe_snapshot)
    eng._send = wrap(p + "send", eng._send)
    eng._write_msg = wrap(p + "encode raft msg", eng._write_msg)
    if role == "leader":
        # The engine holds the server's bound method since the server was built.
        eng.reply = wrap(p + "reply (encode)", eng.reply)


def make_node(nid, ids, net, root):
    cfg = Config(nid, ids, election_tick=10, heartbeat_tick=1, ring_capacity=96,
                 max_entry_bytes=1280, max_size_per_msg=MAX_PAYLOAD - M.HEADER_SIZE)
    st = FlashStorage(RealFS(root + "/n%d" % nid), ids, (), 2048, 1300)
    machine = BatchMachine(KVStateMachine(128, 512, 4096, 256))
    # Snapshot policy as on the unix board (every 1,024 entries, 192 kept).
    eng = Engine(cfg, st, MemTransport(nid, net), machine, Clock(), lambda n: 0, 10, 1024,
                 192, 1024)
    return eng, Server(eng, eng.transport), st


def deliver(nodes, net, ids):
    """Hand every queued datagram to its node and drive them all, until quiet."""
    for _ in range(50):
        for nid in ids:
            box = net.get(nid)
            if not box:
                continue
            net[nid] = []
            eng, srv, _ = nodes[nid]
            t = eng.transport
            for frm, dg in box:
                buf = bytearray(dg)
                n = t.framer.check(buf, len(buf))
                if n >= 0:
                    t.last_peer = frm if frm in nodes else 0
                    srv.on_datagram(buf, HEADER, n, frm)
        for nid in ids:
            nodes[nid][0].drive()
        if not any(net.get(nid) for nid in ids):
            return


def _rmtree(path):
    """Remove path and everything under it (MicroPython has no shutil)."""
    for name in os.listdir(path):
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:
            _rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def main(argv):
    opts = {"batch": "28", "rounds": "200", "nodes": "5", "dir": "/tmp/mpraft-profile-path",
            "gc": "on", "group": "1"}
    i = 0
    while i + 1 < len(argv) and argv[i][2:] in opts:
        opts[argv[i][2:]] = argv[i + 1]
        i += 2
    if i != len(argv):
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    batch, rounds, n = int(opts["batch"]), int(opts["rounds"]), int(opts["nodes"])
    group = int(opts["group"])
    root = opts["dir"] + "/%d" % _now()
    try:
        os.mkdir(opts["dir"])
    except OSError:
        pass
    os.mkdir(root)
    try:
        return _run(batch, rounds, n, group, root, opts)
    finally:
        _rmtree(root)


def _run(batch, rounds, n, group, root, opts):
    bcmd = bytearray(MAX_PAYLOAD)
    ids = list(range(1, n + 1))
    net = {}
    nodes = {}
    for nid in ids:
        nodes[nid] = make_node(nid, ids, net, root)
    nodes[1][0].campaign()
    deliver(nodes, net, ids)
    client = Framer(CLUSTER_ID, KEY)
    buf = bytearray(MAX_DATAGRAM)
    cmd = bytearray(MAX_PAYLOAD)
    rid = [0]

    def request(c, ln):
        rid[0] += 1
        pl = wire.encode_request_into(buf, HEADER, rid[0], c, ln)
        m = client.seal(buf, pl)
        net.setdefault(1, []).append((CLIENT, bytes(buf[:m])))

    def answers():
        out = []
        for _, dg in net.pop(CLIENT, []):
            b = bytearray(dg)
            pl = client.check(b, len(b))
            out.append(wire.decode_reply(b, HEADER, pl))
        return out
    cids = []
    for s in range(batch):
        request(cmd, codec.encode_register_into(cmd))
        deliver(nodes, net, ids)
        a = answers()
        if not a or a[0][2] != wire.OK:
            print("profile_path: register answered %r (leader %d)" % (a, nodes[1][0].core.lead))
            return 1
        cids.append(codec.decode_client_id(a[0][4]))
    cost = wrapper_cost()
    instrument(nodes[1], "leader")
    instrument(nodes[2], "follower")
    seq = 0
    if opts["gc"] == "off":
        # Collections land on whichever stage allocates; off, the stages show
        # their own work (and the heap must hold every round: -X heapsize).
        gc.collect()
        gc.disable()
    t0 = _now()
    for r in range(rounds):
        seq += 1
        cmds = []
        for s in range(batch):
            ln = codec.encode_put_into(cmd, cids[s], seq, b"k%d" % s, b"v%d" % seq)
            cmds.append(bytes(cmd[:ln]))
        for k in range(0, batch, group):
            if group == 1:
                request(cmds[k], len(cmds[k]))
            else:
                request(bcmd, encode_batch(bcmd, cmds[k:k + group]))
        deliver(nodes, net, ids)
        got = answers()
        if len(got) != (batch + group - 1) // group or any(a[2] != wire.OK for a in got):
            print("profile_path: round %d got %r" % (r, got[:3]))
            return 1
    wall = _diff(_now(), t0)
    gc.enable()
    # The followers apply a round's entries once the next append brings the commit.
    puts = rounds * batch
    print("%d nodes in one process, %d puts in rounds of %d (%.0f us of wall time per put, "
          "all nodes and the client)" % (n, puts, batch, wall / puts))
    print("wrapper cost %.2f us per call, taken out of the callers" % cost)
    print("%-46s %9s %9s" % ("stage (self time)", "calls/put", "us/put"))
    for role in ("leader", "follower"):
        tot = 0.0
        for name in sorted(STATS):
            if not name.startswith(role):
                continue
            c, inside, child, ccalls = STATS[name]
            self_us = (inside - child - ccalls * cost) / puts
            if "blocks" not in name:
                tot += self_us
            print("%-46s %9.2f %9.2f" % (name, c / puts, self_us))
        print("%-46s %9s %9.2f" % (role + ": total without the flush", "", tot))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
