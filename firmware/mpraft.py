"""mpraft on a board: boot the node from /node.json, inspect it from the REPL.

main() reads node.json and board.json in the current directory (the board's
root), joins Wi-Fi on wifi_sta boards, opens the flash log in raft/ and runs
the node loop in the foreground. Ctrl-C pauses the loop into the REPL; run()
resumes it. A missing or bad config prints one line and returns (no crash
loop). Safe mode: a file /SAFE skips autostart.

REPL: status(), peers(), log(n), events(n), level(name), campaign(), stop(),
run(turns). The engine's observer (raftio/engine.py) reports persists and
applies, not role or term changes, so events are found by comparing the
node's state after every loop turn, kept in a ring of 32 (ms, level, text); levels
essential < info < debug < trace. Lean on purpose: the whole esp32 firmware
must fit in 48 KB of .mpy.
"""
import json
import time

node = None
LEVELS = ("essential", "info", "debug", "trace")
_lvl = 1
_ev = []
# Last observed role, term, leader, snapshots, drops, commit, applied.
_p = [0] * 7
_LV = b"\0\0\0\1\1\2\3"


def level(name=None):
    global _lvl
    if name:
        _lvl = LEVELS.index(name)
    return LEVELS[_lvl]


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
    global node
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
        print("mpraft: 3 fatal errors in a row; /SAFE written")
        return
    try:
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
        node = Node(c, b, FlashStorage(RealFS("raft"), initial_voters(c), (), b["flash_log_slots"],
                                       slot_size(b), "raft", b.get("log_segment_bytes", 4096)))
        if w and b["network"] == "wifi_sta":
            from raftio.clock import Clock
            from raftio.station import Station
            node.station = Station(n, w["ssid"], w["password"], Clock())
    except Exception as e:
        # KeyError names the missing field; ValueError says what is wrong.
        print("mpraft:", type(e).__name__, e)
        return
    print("mpraft: node", c["node_id"], "serving")
    run(reset=True)


def _observe(n):
    e = n.engine
    r = e.core
    p = _p
    for i, v in enumerate((r.role, r.term, r.lead, e.stats["snapshots"], sum(e.counters.slots),
                           r.log.committed, r.log.applied)):
        if v != p[i]:
            p[i] = v
            if _LV[i] <= _lvl:
                if len(_ev) > 31:
                    _ev.pop(0)
                _ev.append((time.ticks_ms(), i, v))


def run(turns=-1, reset=False):
    """Run the node loop (turns >= 0: that many turns); Ctrl-C pauses it.

    reset (how main() runs it): an error the loop cannot handle (a
    MemoryError, a bug) resets the board after 3 s, which Ctrl-C or /SAFE
    stops. Everything the node acknowledged is on flash, written to survive
    a power cut at any byte, so a reset is the recovery a power cut would be,
    and the node rejoins instead of sitting dead at the REPL."""
    n = node
    n.stopped = False
    try:
        while turns and not n.stopped:
            turns -= 1
            n.run_once()
            _observe(n)
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
    print(node.status())
    peers()


def peers():
    """Per peer: match, next, probe/replicate/snapshot, entries in flight."""
    r = node.engine.core
    for i in sorted(r.prs):
        p = r.prs[i]
        print(i, "self" if i == r.id else "match %d next %d %s inflight %d" % (
            p.match, p.next, ("probe", "replicate", "snapshot")[p.state], p.inflights.count))


def log(k=10):
    """The last k entries still in the log: index, term, then the command
    decoded (op, client id, seq, key, value[, old]) or noop."""
    from raftkv.codec import decode_command
    g = node.engine.core.log
    for e in g.slice(max(g.snap_index + 1, g.last - k + 1), g.last + 1, 0):
        try:
            c = decode_command(e[3]) if e[3] else None
        except Exception:
            c = None
        print(e[0], e[1], *(("noop",) if not e[3] else ("?", e[3]) if c is None else
                            (("register", "put", "get", "delete", "cas")[c[0] - 1],)
                            + c[1:5] + c[5:] * (c[0] == 5)))


def events(k=10):
    for t, i, v in _ev[-k:]:
        print(t, LEVELS[_LV[i]],
              ("role", "term", "leader", "snapshots", "drops", "commit", "applied")[i], v)


def campaign():
    node.engine.campaign()


def stop():
    node.stop()
    node.close()
