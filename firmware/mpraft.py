"""mpraft on a board: boot the node from /node.json, inspect it from the REPL.

main() reads node.json and board.json in the current directory (the board's
root), joins Wi-Fi on wifi_sta boards, opens the flash log in raft/ and runs
the node loop in the foreground. Ctrl-C pauses the loop into the REPL; run()
resumes it. A missing or bad config prints one line and returns (no crash
loop). Safe mode: a file /SAFE skips autostart.

REPL: status(), peers(), log(n), events(n), level(name), campaign(), stop(),
run(turns). events(n) shows what the core and the engine reported
(raft/events.py: role and leader changes with the term, elections, leases,
snapshots, membership changes, refused proposals), the node keeping the
last 32; level(name) chooses how much: essential < info < debug < trace.
Lean on purpose: the whole esp32 firmware must fit in 48 KB of .mpy.
"""
import gc
import json
import time

from raft import events as EV

node = None
# Why the node is not running (set when boot fails), for status().
_why = "main() not run"


def level(name=None):
    """The event level: "essential" (default), "info", "debug", "trace" or "off"."""
    if name is not None:
        node.set_event_level(name)
    return EV.LEVEL_NAMES[node.engine.core.event_level]


def _load(f):
    try:
        with open(f) as h:
            return json.load(h)
    except Exception:
        raise ValueError("no valid /" + f)


def _bad(what):
    raise ValueError("node.json: bad " + what)


def main():
    """Boot: one line and return on any problem, else run the node."""
    if boot():
        print("mpraft: node", node.id, "serving")
        run(reset=True)


def boot(machine=None, make=None):
    """Make the node from /node.json and /board.json (joining Wi-Fi on
    wifi_sta boards, its flash log in raft/) without running it; the node,
    or None after one line saying why. machine: the replicated state
    machine (default the KV store); make: the node class (default
    raftio.node.Node; raftio.app.AppNode for code that proposes and reads,
    an optional module: build --with-optional).
    /SAFE skips it."""
    global node, _why
    try:
        open("SAFE")
        print("mpraft: /SAFE")
        return
    except OSError:
        pass
    if _crashes() >= 3:
        # A crash loop (3 fatal resets with no 10,000 good turns between):
        # stop resetting, keep the flash as it is for inspection.
        open("SAFE", "w").close()
        _crashed(-1)
        _why = "3 fatal errors in a row; /SAFE written"
        print("mpraft:", _why)
        return
    try:
        node = _build(machine, make)
    except Exception as e:
        # KeyError names the missing field; ValueError says what is wrong.
        _why = "%s %s" % (type(e).__name__, e)
        print("mpraft:", _why)
        return None
    finally:
        # The board build moves boot-only code (defs marked for it, see
        # tools/board/bootpart.py) into the part mpraft_boot: garbage from
        # here on, read from flash again only by another boot. The other
        # parts the boot used (mpraft_snap, to restore a snapshot) go too:
        # they hold no state and load again on first use (docs/memory.md).
        import sys
        for m in [m for m in sys.modules if m.startswith(__name__ + "_")]:
            sys.modules.pop(m)
    return node


def _build(machine, make):  # mpraft: boot
    c = _load("node.json")
    b = _load("board.json")
    for k in ("node_id", "cluster_id", "key", "peers"):
        if type(c[k]) is not (str if k == "key" else list if k == "peers" else int):
            _bad(k)
    k = c["key"]
    if len(k) % 2 or not 31 < len(k) < 129:
        _bad("key")
    ids = [p["id"] for p in c["peers"]]
    if c["node_id"] not in ids:
        _bad("node_id")
    w = c.get("wifi")
    if w and b["network"] == "wifi_sta":
        import network
        n = network.WLAN(network.STA_IF)
        n.active(1)
        n.connect(w["ssid"], w["password"])
        for _ in range(150):
            if n.isconnected():
                break
            time.sleep_ms(100)
        else:
            _bad("wifi")
    from raftio.fs import RealFS
    from raftio.node import Node, initial_voters, slot_size
    from raftio.storage import FlashStorage
    mk = FlashStorage
    p = b.get("log_partition")
    if p:
        # The log on a raw flash partition (an optional module; boards/README.md).
        from raftio.rawlog import storage as mk
    nd = (make or Node)(c, b, mk(RealFS("raft"), initial_voters(c), (), b["flash_log_slots"],
                                 slot_size(b), "raft", p or b["log_segment_bytes"]),
                        machine=machine)
    if w and b["network"] == "wifi_sta":
        from raftio.clock import Clock
        from raftio.station import Station
        nd.station = Station(n, w["ssid"], w["password"], Clock())
    return nd


def run(turns=-1, reset=False):
    """Run the node loop (turns >= 0: that many turns); Ctrl-C pauses it.

    reset (how main() runs it): an error the loop cannot handle (a
    MemoryError, a bug) resets the board after 3 s, which Ctrl-C or /SAFE
    stops. Everything the node acknowledged is on flash, written to survive
    a power cut at any byte, so a reset is the recovery a power cut would be,
    and the node rejoins instead of sitting dead at the REPL."""
    n = node
    if n is None:
        return status()
    # Collect once an eighth of the free heap is allocated, not only when
    # it is full: garbage filling the whole heap between collections spread
    # long-lived objects (log entries, keys, the KV table) over all of it,
    # and a resumed node (the REPL's allocations, a burst of queued
    # datagrams) met MemoryError on a 2 KB table growth with 100 KB free
    # (docs/repl.md).
    gc.collect()
    gc.threshold(gc.mem_free() >> 3)
    n.stopped = False
    try:
        while turns and not n.stopped:
            turns -= 1
            n.run_once()
            if turns == -10001 and reset:
                _crashed(-1)  # served a while: not a crash loop
    except KeyboardInterrupt:
        print("mpraft: paused; mpraft.run() resumes")
    except Exception as e:
        if not reset:
            raise
        import sys
        sys.print_exception(e)
        _crashed(_crashes() + 1)
        print("mpraft: fatal; reset in 3 s (Ctrl-C stops it)")
        time.sleep_ms(3000)
        import machine
        machine.reset()


def _crashes():
    try:
        with open("CRASHES") as f:
            return int(f.read())
    except Exception:
        return 0


def _crashed(k):
    # The count of fatal resets in a row, in /CRASHES; -1 removes it.
    try:
        if k < 0:
            import os
            os.remove("CRASHES")
        else:
            with open("CRASHES", "w") as f:
                f.write(str(k))
    except OSError:
        pass


def status():
    """The node's state as a table (counters: the ones that moved), then peers()."""
    if node is None:
        print("node not running:", _why)
        return
    from raftio.show import status as show
    show(node)


def peers():
    """On the leader, per peer: match, next, probe/replicate/snapshot,
    entries in flight. Elsewhere who leads: only the leader tracks them."""
    from raftio.show import peers as show
    show(node)


def log(k=10):
    """The last k entries still in the log: index, term, then the command
    decoded (op, client id, seq, key, value[, old]), a membership change
    (conf add-voter 6; a joint one lists its steps) or noop."""
    from raftio.show import log as show
    show(node, k)


def events(k=10):
    """The last k events, oldest first: seconds before now, level, kind,
    term, then its values (a role or membership op by name)."""
    from raftio.show import events as show
    show(node, k)


def campaign():
    node.engine.campaign()


def stop():
    node.stop()
    node.close()
