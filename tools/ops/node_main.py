"""Run one mpraft node on this machine until killed.

    micropython tools/ops/node_main.py --config DIR/node1.json --data DIR/n1 [--board boards/unix/board.json]
    python3     tools/ops/node_main.py --config DIR/node1.json --data DIR/n1
    python3     tools/ops/node_main.py ... --metrics-port 9101 [--metrics-host H] [--log-json]

--config is a node file (node_id, cluster_id, key, peers; see
raftio/board.py), --data the folder used as this node's flash. Runs under
MicroPython's unix port and CPython alike. Prints one line when serving;
configuration errors print one line and exit 2. --metrics-port (HTTP
/metrics, /healthz, /readyz) and --log-json (one JSON object per event on
stdout) run the node in the CPython runtime of tools/cloud/noderuntime.py.
"""
import sys
sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

from raft.errors import RaftError
from raftio.board import load_board, load_node_config

USAGE = ("usage: node_main.py --config NODE.json --data DIR [--board BOARD.json] [--seconds N]\n"
         "                    [--flush on|off]   (off: measurement only, NOT durable)\n"
         "                    [--metrics-port P] [--metrics-host H] [--log-json]   (CPython)")
_FLAGS = ("log-json",)


class _NoFlushFile:
    """Benchmark-only: a file whose flush() does nothing. On the MicroPython
    unix port flush() is an fsync, so this measures what the flush per log
    entry costs. Writes still reach the OS (they survive a process kill, not
    a power cut)."""

    def __init__(self, f):
        self._f = f

    def flush(self):
        pass

    def __getattr__(self, name):
        return getattr(self._f, name)


class _NoFlushFS:
    def __init__(self, fs):
        self._fs = fs

    def open(self, name, mode):
        return _NoFlushFile(self._fs.open(name, mode))

    def __getattr__(self, name):
        return getattr(self._fs, name)


def parse(argv):
    opts = {"config": None, "data": None, "board": paths.ROOT + "/boards/unix/board.json",
            "seconds": "-1", "flush": "on", "metrics-port": None, "metrics-host": "127.0.0.1",
            "log-json": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a[2:] in _FLAGS:
            opts[a[2:]] = "1"
            i += 1
            continue
        if not a.startswith("--") or a[2:] not in opts or i + 1 >= len(argv):
            return None
        opts[a[2:]] = argv[i + 1]
        i += 2
    if opts["config"] is None or opts["data"] is None or opts["flush"] not in ("on", "off"):
        return None
    return opts


def main(argv):
    opts = parse(argv)
    if opts is None:
        print(USAGE)
        return 2
    try:
        seconds = int(opts["seconds"])
        port = None if opts["metrics-port"] is None else int(opts["metrics-port"])
    except ValueError:
        print(USAGE)
        return 2
    cloud = port is not None or opts["log-json"] is not None
    if cloud and sys.implementation.name != "cpython":
        print("node: --metrics-port and --log-json need CPython (tools/cloud is host-only)")
        return 2
    try:
        board = load_board(opts["board"])
        cfg = load_node_config(opts["config"], board)
    except RaftError as e:
        print("node: %s" % e)
        return 2
    from raftio.fs import RealFS
    from raftio.node import Node, initial_voters, slot_size
    from raftio.storage import FlashStorage
    voters = initial_voters(cfg)
    try:
        fs = RealFS(opts["data"])
        if opts["flush"] == "off":
            fs = _NoFlushFS(fs)
        if cloud:
            import metrics
            import noderuntime
            counting = metrics.Counting()
            fs = noderuntime.TimedFS(fs, counting.flash)
        storage = FlashStorage(fs, voters, (), board["flash_log_slots"],
                               slot_size(board))
        node = Node(cfg, board, storage)
    except (RaftError, OSError) as e:
        print("node %d: cannot start: %s" % (cfg["node_id"], e))
        return 2
    st = node.status()
    # With --log-json stdout carries only JSON lines; this one goes to stderr.
    print("node %d serving on port %d: term %d, commit %d, snapshot %d" % (
        cfg["node_id"], [p["port"] for p in cfg["peers"] if p["id"] == cfg["node_id"]][0],
        st["term"], st["commit"], st["snapshot"]), file=sys.stderr if opts["log-json"] else sys.stdout)
    if cloud:
        return _run_cloud(node, cfg, counting, opts, port, seconds)
    try:
        node.run(seconds * 1000 if seconds >= 0 else -1)
    except KeyboardInterrupt:
        pass
    node.close()
    return 0


def _run_cloud(node, cfg, counting, opts, port, seconds):  # CPython only
    import noderuntime
    hosts = {}
    for p in cfg["peers"]:
        if p["id"] != cfg["node_id"] and not p["host"].replace(".", "").isdigit():
            hosts[p["id"]] = (p["host"], p["port"])
    try:
        rt = noderuntime.Runtime(node, counting, opts["metrics-host"], port,
                                 sys.stdout if opts["log-json"] else None, hosts)
    except OSError as e:
        print("node %d: cannot serve metrics on %s:%s: %s" % (
            cfg["node_id"], opts["metrics-host"], port, e))
        node.close()
        return 2
    if rt.http is not None:
        print("node %d metrics on http://%s:%d/metrics" % (cfg["node_id"], opts["metrics-host"],
                                                           rt.http.port), file=sys.stderr)
    sys.stdout.flush()
    try:
        rt.run(seconds)
    except KeyboardInterrupt:
        pass
    rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
