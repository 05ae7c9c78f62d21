"""One node with the stages of its request path timed (tools/bench/profile_leader.py runs it).

    micropython tools/bench/profile_node.py --config NODE.json --data DIR --board BOARD.json --out FILE

MicroPython has no profiler (no sys.settrace in the unix port), so this
wraps the functions of the path a put takes through a node with a timer
each, then runs the node like tools/ops/node_main.py. Every second it
writes FILE (JSON, replaced atomically): per stage the calls, the time
inside it and the time inside the wrapped stages it called (so self time
= inside - children), the entries applied, and the wrapper's own cost per
call measured at start (the driver subtracts it per child call). Times are
wall microseconds from ticks_us: they include time the process waited
(a flush, a send that woke another process which then ran) or was
preempted, so they are read next to the user/system CPU split from /proc
(docs/profile.md).
"""
import sys
sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

try:
    _now = time.ticks_us
    _diff = time.ticks_diff
except AttributeError:  # CPython
    def _now():
        return time.perf_counter_ns() // 1000

    def _diff(a, b):
        return a - b

# name -> [calls, inside us, children us, children calls]
STATS = {}
# Per active wrapped call: [time in wrapped callees, their number].
_STACK = []


def wrap(name, fn):
    slot = STATS.setdefault(name, [0, 0, 0, 0])

    def timed(*args):
        t0 = _now()
        acc = [0, 0]
        _STACK.append(acc)
        try:
            return fn(*args)
        finally:
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
    return timed


def patch(owner, attr, name):
    setattr(owner, attr, wrap(name, getattr(owner, attr)))


def instrument():
    """Wrap the stages of the request path (classes and module functions the
    server, engine and storage look up at call time)."""
    from raft import msg as M
    from raft.rawnode import RawNode
    from raftio import wire
    from raftio.engine import Engine
    from raftio.frame import Framer
    from raftio.server import Server
    from raftio.storage import FlashStorage
    from raftio.udp import UdpEndpoint
    from raftkv.kv import KVStateMachine
    patch(UdpEndpoint, "poll", "wait (poll)")
    patch(UdpEndpoint, "recv", "receive (socket)")
    patch(Framer, "check", "authenticate in")
    patch(Server, "on_datagram", "dispatch")
    patch(wire, "decode_request", "decode request")
    patch(M, "decode_into", "decode raft msg")
    patch(KVStateMachine, "is_read", "decode command (is_read)")
    patch(Engine, "propose", "propose")
    patch(Engine, "step", "step (acks)")
    patch(Engine, "drive", "drive (other)")
    patch(RawNode, "ready", "ready")
    patch(RawNode, "advance", "advance")
    patch(FlashStorage, "append", "persist entries")
    patch(FlashStorage, "set_hard_state", "persist hard state")
    patch(M, "encode_into", "encode raft msg")
    patch(UdpEndpoint, "_send_sealed", "send (socket)")
    patch(Framer, "seal", "authenticate out")
    patch(KVStateMachine, "apply", "apply")
    patch(Server, "_reply", "reply (encode)")


def wrapper_cost():
    """Microseconds one wrapped call adds, measured on a no-op."""
    def noop(a):
        return a
    w = wrap("_calibration", noop)
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
        # What a caller sees beyond the callee's own measured interval.
        c = (_diff(t1, t0) - _diff(t2, t1)) / 2000
        best = c if best is None or c < best else best
    _STACK.pop()
    del STATS["_calibration"]
    return best


def main(argv):
    opts = {"config": None, "data": None, "board": paths.ROOT + "/boards/unix/board.json",
            "out": None, "seconds": "-1"}
    i = 0
    while i + 1 < len(argv) and argv[i].startswith("--") and argv[i][2:] in opts:
        opts[argv[i][2:]] = argv[i + 1]
        i += 2
    if i != len(argv) or None in (opts["config"], opts["data"], opts["out"]):
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    from raftio.board import load_board, load_node_config
    from raftio.fs import RealFS
    from raftio.node import Node, initial_voters, slot_size
    from raftio.storage import FlashStorage
    board = load_board(opts["board"])
    cfg = load_node_config(opts["config"], board)
    cost = wrapper_cost()
    instrument()
    storage = FlashStorage(RealFS(opts["data"]), initial_voters(cfg), (),
                           board["flash_log_slots"], slot_size(board))
    node = Node(cfg, board, storage)
    print("profiled node %d serving" % cfg["node_id"])
    out = opts["out"]
    last = _now()
    start = last
    limit = int(opts["seconds"]) * 1000000
    while limit < 0 or _diff(_now(), start) < limit:
        node.run_once()
        if _diff(_now(), last) >= 1000000:
            last = _now()
            eng = node.engine
            doc = {"t_us": last, "applied": eng.stats["applied"], "role": eng.core.role,
                   "wrapper_us": cost, "stats": STATS}
            with open(out + ".tmp", "w") as f:
                f.write(json.dumps(doc))
            os.rename(out + ".tmp", out)
    node.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
