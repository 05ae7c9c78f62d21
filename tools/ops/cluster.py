"""Run a local mpraft cluster: N node processes on 127.0.0.1, one data folder each.

    python3 tools/ops/cluster.py up --nodes 5 --dir DIR [--runtime micropython|cpython]
    python3 tools/ops/cluster.py status --dir DIR
    python3 tools/ops/cluster.py kill NODE --dir DIR      (SIGKILL)
    python3 tools/ops/cluster.py start NODE --dir DIR
    python3 tools/ops/cluster.py down --dir DIR
    python3 tools/ops/cluster.py add-node --id 7 [--host H] [--port P] --dir DIR
    python3 tools/ops/cluster.py run --nodes 5 --dir DIR  (up, then stay in the foreground until Ctrl-C)
    python3 tools/ops/cluster.py up --proxy --dir DIR; cluster.py faults --dir DIR --drop 0.1 --partition 1,2/3,4,5

--proxy routes node-to-node traffic through tools/ops/udp_proxy.py, which applies
the faults set with `faults` (drop, duplicate, delay, reorder, partitions and
one-way cuts); `faults` with no options heals everything.

--netns (root only) puts each node in its own network namespace on a bridge
(tools/ops/netns.py): node N listens on 10.213.X.(N+1), the address cluster.json
lists, and cluster.json records the namespaces under "netns". `faults` then
maps onto nftables and links: --drop P (share of node-to-node datagrams
dropped), --partition and one-way --cut as nft drop rules in the receiving
node's namespace, --linkdown 3,4 as `ip link set <veth> down` (clients lose
those nodes too). --dup/--reorder/--delay need netem, which this kernel
lacks: one-line error, exit 2. `down` also removes the namespaces, veths
and bridge (idempotent; it finds them by name, so leftovers of a crash go too).

`up` picks free UDP ports, writes DIR/cluster.json ({"cluster_id", "key",
"nodes": [{"id", "host", "port"}], "incs": the founders' incarnations,
"provisioned": the ids whose data folder got its identity, once;
docs/incarnation.md}, what raftctl.py --cluster reads), one
node file per node (DIR/nodeN.json), a copy of the board file
(DIR/board.json, --board, default boards/unix/board.json), starts the nodes with their flash in
DIR/nN and their output in DIR/nN.log, records pids in DIR/pids.json, waits
until a leader answers and returns. An existing DIR/cluster.json is reused,
so `up` after `down` restarts the same cluster with its data.

Cluster limits: cluster.json carries "limits" {max_key, max_value,
max_keys, max_sessions}, the state-machine limits every node applies with
(lib/raftkv/limits.py), copied into each node file. Default: the board's
(its sizes and heap_budget_bytes // 32 keys, what nodes used before);
`--limits fit` fits them to the board by the memory model (what a real
board of that kind can hold), `--limits max_keys=100,max_sessions=16`
changes some. `make flash` refuses a board that cannot hold them.

`add-node --id N [--host H] [--port P]` adds a node to DIR/cluster.json (a
free loopback port by default) and writes its node file, so the new node
(`start N`, or a board flashed with NODE=N) boots outside the membership;
it prints the `raftctl add-learner N HOST:PORT` that brings it in.

Every node binds 127.0.0.1 only (with --netns: its namespace's address).
Exit status: 0 ok, 2 usage, 3 no leader in time (or --netns unavailable).
Also usable as a module (the demo and the tests call up/kill/start/down).
"""
import binascii
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

TOOLS = os.path.dirname(os.path.abspath(__file__))  # tools/ops: node_main.py, udp_proxy.py
ROOT = paths.ROOT

import netns as _netns  # noqa: E402
from raftio.client import Client  # noqa: E402
from raft.errors import ConfigError  # noqa: E402
from raftkv import limits as _limits  # noqa: E402
from raftio import identity  # noqa: E402
from raftio.fs import RealFS  # noqa: E402

HOST = "127.0.0.1"
BOARD = os.path.join(ROOT, "boards", "unix", "board.json")


class ClusterError(Exception):
    pass


def micropython():
    """The unix port: the checkout's .venv, else beside this Python (a pip
    install with the [micropython] extra), else PATH."""
    for p in (os.path.join(ROOT, ".venv", "bin", "micropython"),
              os.path.join(os.path.dirname(sys.executable), "micropython")):
        if os.path.exists(p):
            return p
    return "micropython"


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def load(d):
    with open(os.path.join(d, "cluster.json")) as f:
        return json.load(f)


def parse_limits(text, board):
    """--limits: "fit" (fitted to the board), or k=v,k=v over the board's."""
    if text == "fit":
        return _limits.fit(board)
    lim = _limits.of_board(board)
    for kv in text.split(","):
        k, _, v = kv.partition("=")
        if k not in lim or not v.isdigit():
            raise ClusterError("--limits: %r is not fit or k=v with k in %s"
                               % (kv, ", ".join(_limits.FIELDS)))
        lim[k] = int(v)
    try:
        return _limits.validate(lim, "--limits")
    except ConfigError as e:
        raise ClusterError(str(e))


def create(d, nodes=5, cluster_id=None, key=None, board=None, proxy=False, netns=False,
           voters=None, limits=None):
    """Write cluster.json, the node files and DIR/board.json; returns the cluster dict.

    voters=k < nodes: only nodes 1..k form the first membership; the others
    run but stay outside until `raftctl add-learner/add-voter` brings them in.

    With proxy=True, node i reaches node j through proxy port
    cluster["proxy"]["i-j"] (tools/ops/udp_proxy.py) instead of j's own port.
    With netns=True, each node gets its own namespace and address
    (tools/ops/netns.py), recorded as cluster["netns"].
    limits: the cluster's state-machine limits (a dict, or a --limits
    string); default the board's.
    """
    if proxy and netns:
        raise ClusterError("--proxy and --netns cannot be combined")
    if netns:
        _netns.check()  # before writing anything: not root -> one line, no half-made folder
    os.makedirs(d, exist_ok=True)
    with open(board or BOARD) as f:
        text = f.read()
    bd = json.loads(text)
    if limits is None or isinstance(limits, str):
        limits = parse_limits(limits, bd) if limits else _limits.of_board(bd)
    limits = _limits.validate(limits)
    with open(os.path.join(d, "board.json"), "w") as f:
        f.write(text)
    if cluster_id is None:
        cluster_id = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
    if key is None:
        key = binascii.hexlify(os.urandom(32)).decode()
    if netns:
        spec = _netns.allocate(d, cluster_id, list(range(1, nodes + 1)))
        # Each node has its own address and port space: fixed, readable ports.
        cl = {"cluster_id": cluster_id, "key": key, "limits": limits, "netns": spec,
              "nodes": [{"id": i, "host": spec["nodes"][str(i)]["addr"], "port": 7000 + i}
                        for i in range(1, nodes + 1)]}
        if voters and voters < nodes:
            cl["voters"] = list(range(1, voters + 1))
        return _write(d, _bind(cl))
    ports = free_ports(nodes + (nodes * (nodes - 1) if proxy else 0))
    cl = {"cluster_id": cluster_id, "key": key, "limits": limits,
          "nodes": [{"id": i + 1, "host": HOST, "port": ports[i]} for i in range(nodes)]}
    if voters and voters < nodes:
        cl["voters"] = list(range(1, voters + 1))
    if proxy:
        links = {}
        k = nodes
        for i in range(1, nodes + 1):
            for j in range(1, nodes + 1):
                if i != j:
                    links["%d-%d" % (i, j)] = ports[k]
                    k += 1
        cl["proxy"] = links
    return _write(d, _bind(cl))


def _bind(cl):
    """The founders' incarnations (docs/incarnation.md): start() writes each
    one's identity into its data folder the first time, and only then."""
    ids = cl.get("voters") or [n["id"] for n in cl["nodes"]]
    cl["incs"] = {str(i): identity.fresh() for i in ids}
    cl["provisioned"] = []
    return cl


def provision(d, nid, data):
    """Write node nid's identity into its data folder if the cluster file
    binds it and it was never provisioned; its node file then loses "inc"
    (the first-boot provisioning), so a data folder deleted later (a wiped
    board) boots as a new incarnation and rejoins."""
    cl = _load_or_none(d)
    if cl is None or str(nid) not in cl.get("incs", {}) or nid in cl.get("provisioned", ()):
        return False
    os.makedirs(data, exist_ok=True)
    fs = RealFS(data)
    if not identity.load(fs, nid):
        identity.save(fs, nid, cl["incs"][str(nid)])
    cl.setdefault("provisioned", []).append(nid)
    with open(os.path.join(d, "cluster.json.tmp"), "w") as f:
        json.dump(cl, f, indent=1)
    os.replace(os.path.join(d, "cluster.json.tmp"), os.path.join(d, "cluster.json"))
    if os.path.exists(os.path.join(d, "node%d.json" % nid)):
        write_node_file(d, cl, nid)
    return True


def _write(d, cl):
    with open(os.path.join(d, "cluster.json"), "w") as f:
        json.dump(cl, f, indent=1)
    for n in cl["nodes"]:
        write_node_file(d, cl, n["id"])
    return cl


def write_node_file(d, cl, nid, key=None, name=None):
    peers = cl["nodes"]
    if "proxy" in cl:
        peers = [p if p["id"] == nid else
                 {"id": p["id"], "host": HOST, "port": cl["proxy"]["%d-%d" % (nid, p["id"])]}
                 for p in cl["nodes"]]
    nf = {"node_id": nid, "cluster_id": cl["cluster_id"], "key": key or cl["key"],
          "peers": peers}
    if "voters" in cl:
        nf["voters"] = cl["voters"]
    if "limits" in cl:
        nf["limits"] = cl["limits"]
    if "incs" in cl:
        nf["incs"] = cl["incs"]
        if str(nid) in cl["incs"] and nid not in cl.get("provisioned", ()):
            # A founder's first boot (a board flashed with a copy of this
            # file): adopt this incarnation (raftio/identity.py).
            nf["inc"] = cl["incs"][str(nid)]
    path = os.path.join(d, name or "node%d.json" % nid)
    with open(path, "w") as f:
        json.dump(nf, f, indent=1)
    return path


def add_node(d, nid, host=HOST, port=None):
    """Add node nid (host:port; a free port if None) to DIR/cluster.json and
    write its node file; returns the address. The running members learn of
    it from `raftctl add-learner`, whose change carries the address. The
    first membership is pinned as "voters" (it was every node), so the new
    node boots as an outsider, never as a founding voter."""
    cl = load(d)
    if "proxy" in cl or "netns" in cl:
        raise ClusterError("add-node: not for --proxy or --netns clusters (their links are "
                           "made at up)")
    ids = [n["id"] for n in cl["nodes"]]
    if not 0 < nid <= 0xFFFF:
        raise ClusterError("add-node: node id %d is out of range 1..65535" % nid)
    if nid in ids:
        raise ClusterError("add-node: node %d is already in %s/cluster.json" % (nid, d))
    if port is None:
        port = free_ports(1)[0]
    if not host or not 0 < port < 0x10000:
        raise ClusterError("add-node: bad address %s:%s" % (host, port))
    for n in cl["nodes"]:
        if (n["host"], n["port"]) == (host, port):
            raise ClusterError("add-node: node %d already listens on %s:%d" % (n["id"], host,
                                                                               port))
    cl.setdefault("voters", ids)
    cl["nodes"].append({"id": nid, "host": host, "port": port})
    _write(d, cl)
    return "%s:%d" % (host, port)


def _pids(d):
    try:
        with open(os.path.join(d, "pids.json")) as f:
            return {int(k): v for k, v in json.load(f).items()}
    except (OSError, ValueError):
        return {}


def _save_pids(d, pids):
    tmp = os.path.join(d, "pids.json.tmp")
    with open(tmp, "w") as f:
        json.dump({str(k): v for k, v in sorted(pids.items())}, f)
    os.replace(tmp, os.path.join(d, "pids.json"))


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        # A zombie child of ours counts as dead.
        r = os.waitpid(pid, os.WNOHANG)
        return r == (0, 0)
    except ChildProcessError:
        return True


def start(d, nid, runtime="micropython", config=None, data=None, heap="16M", flush="on",
          extra=(), tree=None):
    """Start node nid (or a custom node file/data folder); returns its pid.
    extra: more node_main.py arguments (e.g. --metrics-port, CPython only).

    flush="off" is for measurements only: log writes are not flushed (on the
    MicroPython unix port flush is fsync), so they would not survive a power cut.
    tree: another checkout of this repository whose node code runs instead
    (the benchmark's A/B against an earlier commit).
    """
    interp = [micropython()] if runtime == "micropython" else [sys.executable]
    cl = _load_or_none(d)
    if cl is not None and "netns" in cl:
        # `ip netns exec` execs the interpreter, so the pid recorded is the node's.
        interp = _netns.exec_prefix(cl["netns"], nid) + interp
    if heap and runtime == "micropython":
        interp += ["-X", "heapsize=%s" % heap]
    config = config or os.path.join(d, "node%d.json" % nid)
    data = data or os.path.join(d, "n%d" % nid)
    provision(d, nid, data)
    log = open(os.path.join(d, "n%d.log" % nid), "a")
    board = os.path.join(d, "board.json")
    if not os.path.exists(board):
        board = BOARD
    if tree:
        # Another checkout reads its own copy of the board's settings: an
        # older node refuses fields it does not know (the benchmark's A/B).
        with open(board) as f:
            board = os.path.join(tree, "boards", json.load(f)["name"], "board.json")
        # Nor does it know the node file's "limits" (it uses its board's,
        # the default limits, README "Cluster limits") or incarnations (it
        # runs unbound, as every cluster did before them).
        with open(config) as f:
            nf = json.load(f)
        if [nf.pop(k) for k in ("limits", "inc", "incs") if k in nf]:
            config = os.path.join(d, "node%d.tree.json" % nid)
            with open(config, "w") as f:
                json.dump(nf, f, indent=1)
    # Board emulation (node_main.py --net-profile ...): per cluster, and per start.
    extra = list(cl.get("node_args", ()) if cl is not None else ()) + list(extra)
    main = os.path.join(tree, "tools", "ops", "node_main.py") if tree else os.path.join(TOOLS, "node_main.py")
    p = subprocess.Popen(interp + [main, "--config", config,
                                   "--data", data, "--board", board, "--flush", flush] + extra,
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         cwd=ROOT, start_new_session=True)
    log.close()
    pids = _pids(d)
    pids[nid] = {"pid": p.pid, "runtime": runtime, "flush": flush}
    _save_pids(d, pids)
    return p.pid


def pid(d, nid):
    """The running process of node nid, or None."""
    ent = _pids(d).get(nid)
    return ent["pid"] if ent and alive(ent["pid"]) else None


def kill(d, nid, sig=signal.SIGKILL):
    pids = _pids(d)
    ent = pids.pop(nid, None)
    _save_pids(d, pids)
    if ent is None:
        return False
    try:
        os.kill(ent["pid"], sig)
    except OSError:
        return False
    for _ in range(200):
        if not alive(ent["pid"]):
            break
        time.sleep(0.01)
    return True


def _load_or_none(d):
    try:
        return load(d)
    except (OSError, ValueError):
        return None


def down(d):
    for nid in sorted(_pids(d)):
        kill(d, nid, signal.SIGKILL)
    cl = _load_or_none(d)
    if cl is not None and "netns" in cl:
        _netns.destroy(cl["netns"]["tag"])


def client(d, **kw):
    cl = load(d)
    return Client(cl["cluster_id"], cl["key"],
                  [(n["id"], n["host"], n["port"]) for n in cl["nodes"]], **kw)


def statuses(d, c=None, timeout_ms=300):
    """[(id, status dict or None)] for every node."""
    own = c is None
    if own:
        c = client(d)
    try:
        return [(n["id"], c.status(n["id"], timeout_ms)) for n in load(d)["nodes"]]
    finally:
        if own:
            c.close()


def leader(d, c=None, timeout_ms=200):
    """Id of the leader with the highest term among the nodes that answer, or 0."""
    best = (0, 0)
    for nid, st in statuses(d, c, timeout_ms):
        if st and st["role"] == "leader" and st["term"] >= best[1]:
            best = (nid, st["term"])
    return best[0]


def wait_leader(d, timeout_s=15.0, exclude=(), give_up=None):
    """The leader's id once one answers (not in exclude); 0 after timeout_s,
    or as soon as give_up() is true (e.g. every node process has exited)."""
    c = client(d)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            lead = leader(d, c, 100)
            if lead and lead not in exclude:
                return lead
            if give_up is not None and give_up():
                return 0
            time.sleep(0.05)
        return 0
    finally:
        c.close()


def start_proxy(d):
    log = open(os.path.join(d, "proxy.log"), "a")
    p = subprocess.Popen([sys.executable, os.path.join(TOOLS, "udp_proxy.py"), d],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         cwd=ROOT, start_new_session=True)
    log.close()
    pids = _pids(d)
    pids[0] = {"pid": p.pid, "runtime": "proxy"}
    _save_pids(d, pids)
    return p.pid


def faults(d, **kw):
    """Set the proxy's faults: drop, dup, reorder (0..1), delay_ms [lo, hi],
    partition [[ids], [ids]], cut [[i, j]]. No arguments: heal everything.
    A --netns cluster takes drop, partition, cut and down [ids] (links set
    down); dup, reorder and delay_ms raise netns.NetnsError there."""
    cl = _load_or_none(d)
    if cl is not None and "netns" in cl:
        _netns.set_faults(d, cl["netns"], kw)
        return
    tmp = os.path.join(d, "faults.json.tmp")
    with open(tmp, "w") as f:
        json.dump(kw, f)
    os.replace(tmp, os.path.join(d, "faults.json"))
    # The proxy re-reads the file every 50 ms.
    time.sleep(0.12)


def up(d, nodes=5, runtime="micropython", timeout_s=20.0, heap="16M", flush="on", board=None,
       proxy=False, netns=False, voters=None, tree=None, node_args=None, limits=None):
    """node_args: extra node_main.py arguments for every node, kept in
    cluster.json (e.g. ["--net-profile", "esp32"]); limits: see create."""
    if not os.path.exists(os.path.join(d, "cluster.json")):
        create(d, nodes, board=board, proxy=proxy, netns=netns, voters=voters, limits=limits)
        if node_args:
            cl = load(d)
            cl["node_args"] = list(node_args)
            _write(d, cl)
    cl = load(d)
    if netns and "netns" not in cl:
        raise ClusterError("%s/cluster.json is not a --netns cluster; use another --dir" % d)
    if "netns" in cl:
        # After `down` (or a crash) the namespaces are gone: rebuild them and
        # the recorded faults, as the proxy re-reads faults.json when it starts.
        _netns.ensure(cl["netns"])
        _netns.apply(cl["netns"], _netns.load_faults(d))
    pids = _pids(d)
    if "proxy" in cl and not (0 in pids and alive(pids[0]["pid"])):
        start_proxy(d)
    for n in cl["nodes"]:
        if n["id"] in pids and alive(pids[n["id"]]["pid"]):
            continue
        start(d, n["id"], runtime, heap=heap, flush=flush, tree=tree)
    lead = wait_leader(d, timeout_s)
    if not lead:
        raise ClusterError("no leader within %.0f s; see %s/n*.log" % (timeout_s, d))
    return lead


USAGE = ("usage: cluster.py up|run|status|down [--nodes N] --dir DIR [--runtime micropython|cpython]\n"
         "                                   [--board BOARD.json] [--heap 16M] [--proxy|--netns]\n"
         "                                   [--voters K]   (only nodes 1..K are members at first)\n"
         "                                   [--limits fit|max_keys=N,max_sessions=N,...]\n"
         "       cluster.py kill|start NODE --dir DIR\n"
         "       cluster.py add-node --id N [--host H] [--port P] --dir DIR"
         "   (then: raftctl add-learner)\n"
         "       cluster.py faults --dir DIR [--drop P] [--dup P] [--reorder P] [--delay LO,HI]\n"
         "                                   [--partition 1,2/3,4,5] [--cut 1-2,2-1]"
         "   (no options: heal)\n"
         "                                   [--linkdown 3,4]   (--netns only)")


def main(argv):
    opts = {"nodes": "5", "voters": "0", "dir": None, "runtime": "micropython", "heap": "16M",
            "board": None, "proxy": False, "drop": "0", "dup": "0", "reorder": "0", "delay": None,
            "partition": None, "cut": None, "netns": False, "linkdown": None, "id": None,
            "host": HOST, "port": None, "limits": None}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--proxy", "--netns"):
            opts[a[2:]] = True
            i += 1
        elif a.startswith("--"):
            k = a[2:]
            if k not in opts or i + 1 >= len(argv):
                print(USAGE)
                return 2
            opts[k] = argv[i + 1]
            i += 2
        else:
            pos.append(a)
            i += 1
    if not pos or opts["dir"] is None or opts["runtime"] not in ("micropython", "cpython"):
        print(USAGE)
        return 2
    if opts["proxy"] and opts["netns"]:
        print("cluster: --proxy and --netns cannot be combined")
        return 2
    cmd = pos[0]
    d = opts["dir"]
    if opts["limits"] is not None:
        try:  # a usage error, before anything is made or started
            with open(opts["board"] or BOARD) as f:
                parse_limits(opts["limits"], json.load(f))
        except (ClusterError, OSError, ValueError) as e:
            print("cluster: %s" % e)
            return 2
    try:
        nodes = int(opts["nodes"])
        if cmd in ("up", "run"):
            lead = up(d, nodes, opts["runtime"], heap=opts["heap"], board=opts["board"],
                      proxy=opts["proxy"], netns=opts["netns"], voters=int(opts["voters"]),
                      limits=opts["limits"])
            print("cluster up in %s: %d nodes, leader %d; raftctl.py --cluster %s/cluster.json"
                  % (d, len(load(d)["nodes"]), lead, d))
            if cmd == "run":
                try:
                    while True:
                        time.sleep(1)
                except KeyboardInterrupt:
                    pass
                down(d)
                print("cluster down")
            return 0
        if cmd == "faults":
            cl = load(d)
            if "proxy" not in cl and "netns" not in cl:
                print("cluster: %s was not started with --proxy or --netns" % d)
                return 2
            if "netns" in cl and (float(opts["dup"]) or float(opts["reorder"]) or opts["delay"]):
                print("cluster: --dup/--reorder/--delay need netem, which this kernel lacks;"
                      " use up --proxy for them")
                return 2
            if opts["linkdown"] and "netns" not in cl:
                print("cluster: --linkdown needs a --netns cluster")
                return 2
            f = {}
            for k in ("drop", "dup", "reorder"):
                v = float(opts[k])
                if not 0 <= v <= 1:
                    raise ValueError(k)
                if v:
                    f[k] = v
            if opts["delay"]:
                lo, _, hi = opts["delay"].partition(",")
                f["delay_ms"] = [float(lo), float(hi or lo)]
            if opts["partition"]:
                f["partition"] = [[int(x) for x in g.split(",")]
                                  for g in opts["partition"].split("/")]
            if opts["cut"]:
                f["cut"] = [[int(x) for x in c.split("-")] for c in opts["cut"].split(",")]
            if opts["linkdown"]:
                f["down"] = [int(x) for x in opts["linkdown"].split(",")]
            faults(d, **f)
            print("faults: %s" % (json.dumps(f) if f else "none (healed)"))
            return 0
        if cmd == "down":
            down(d)
            return 0
        if cmd == "add-node":
            if opts["id"] is None:
                print("cluster: add-node needs --id N")
                return 2
            try:
                nid = int(opts["id"])
                addr = add_node(d, nid, opts["host"], None if opts["port"] is None
                                else int(opts["port"]))
            except ValueError:
                print("cluster: add-node wants numbers for --id and --port")
                return 2
            except ClusterError as e:  # a usage error here, not an unavailable cluster
                print("cluster: %s" % e)
                return 2
            path = os.path.join(d, "cluster.json")
            print("node %d added to %s at %s (node file %s)" % (
                nid, path, addr, os.path.join(d, "node%d.json" % nid)))
            print("start it: cluster.py start %d --dir %s  (a board: make flash NODE=%d "
                  "CLUSTER=%s ...)" % (nid, d, nid, path))
            print("then: raftctl --cluster %s add-learner %d %s" % (path, nid, addr))
            return 0
        if cmd == "status":
            import raftctl
            return raftctl.main(["--cluster", os.path.join(d, "cluster.json"), "status"])
        if cmd in ("kill", "start"):
            if len(pos) != 2:
                print(USAGE)
                return 2
            nid = int(pos[1])
            if nid not in [n["id"] for n in load(d)["nodes"]]:
                print("cluster: no node %d in %s/cluster.json" % (nid, d))
                return 2
            if cmd == "kill":
                print("killed node %d" % nid if kill(d, nid) else "node %d was not running" % nid)
            else:
                print("started node %d, pid %d" % (nid, start(d, nid, opts["runtime"])))
            return 0
    except ValueError:
        print(USAGE)
        return 2
    except (OSError, ClusterError) as e:
        print("cluster: %s" % e)
        return 3
    except _netns.NetnsError as e:
        # Already one whole line, e.g. "cluster.py: --netns needs root (CAP_NET_ADMIN)".
        print(e)
        return 3
    print(USAGE)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
