"""raftctl: talk to an mpraft cluster, in etcdctl's style.

    raftctl [--cluster FILE] [--timeout MS] [--write-out table|json|simple] COMMAND ...

    put KEY VALUE                 write; prints OK
    get KEY                       linearizable read; prints the value (exit 1 if absent)
    delete KEY                    prints OK (exit 1 if absent)
    cas KEY OLD|--absent NEW      swap only if KEY holds OLD (or, --absent, nothing)
    endpoint status               one row per node: id, address, role, term, leader,
                                  commit, applied, reachable
    status [--json]               every node's status with log bounds and drops
    watch [--interval S] [--count N]
    transfer NODE                 hand leadership to NODE
    add-learner NODE [HOST:PORT]  membership: one change at a time, answered once applied
    add-voter NODE [HOST:PORT]    (or promote a learner)
    remove NODE
    help [COMMAND]                this text, or one command's (also COMMAND --help)

The cluster file comes from --cluster, else the environment variable
MPRAFT_CLUSTER (as etcdctl takes ETCDCTL_ENDPOINTS); a folder means its
cluster.json. --write-out (-w) shapes get, status and endpoint status: table
(default), json, or simple (comma-separated values). --timeout MS bounds
each command (default 5000). `--` ends the options (`put -- k -v`).

Writes use one client session per cluster kept across calls
(tools/ops/ctlsession.py), so CLI calls never crowd device clients out of
the cluster's session table; reads register nothing.

Exit status: 0 ok, 1 key not found or cas failed, 2 usage or a refused
request (bad input is caught before anything is sent: key, value and node id
limits, --timeout 0, an unknown command; a membership change the leader
refuses says why: already a voter or learner, not a member, the last voter),
3 cluster unavailable or busy (no leader in time, another membership change
still pending). Errors are one line on stderr; help goes to stdout.
"""
import json
import os
import sys
import time

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import raftctl_member  # noqa: E402

ENV = "MPRAFT_CLUSTER"
USAGE = ("usage: raftctl [--cluster FILE] [--timeout MS] [-w table|json|simple] COMMAND ...\n"
         "commands: put get delete cas endpoint status watch transfer add-learner add-voter "
         "remove member help (raftctl help COMMAND)")

# command -> (arguments, one-line help). Arity comes from the arguments text.
COMMANDS = {
    "put": ("KEY VALUE", "write VALUE under KEY; prints OK"),
    "get": ("KEY", "print KEY's value (a linearizable read); exit 1 if absent"),
    "delete": ("KEY", "delete KEY; prints OK, exit 1 if absent"),
    "cas": ("KEY OLD|--absent NEW", "set KEY to NEW only if it holds OLD (--absent: nothing); "
            "prints OK, exit 1 and the current value if not"),
    "endpoint": ("status", "one row per node: id, address, role, term, leader, commit, "
                 "applied, reachable; exit 3 if no node answers"),
    "status": ("[--json]", "every node's status with log bounds and drop counters"),
    "watch": ("[--interval S] [--count N]", "status again every S seconds (N times; 0: until "
              "Ctrl-C)"),
    "transfer": ("NODE", "hand leadership to NODE, a voter; prints once it leads"),
    "add-learner": ("NODE [HOST:PORT]", "add NODE as a learner (its address from HOST:PORT or "
                    "the cluster file travels in the change); answered once applied"),
    "add-voter": ("NODE [HOST:PORT]", "add NODE as a voter, or promote a learner"),
    "remove": ("NODE", "remove a voter or a learner"),
    "bulk-load": ("FILE", "put every KEY VALUE line of FILE (- for stdin) in client batches "
                  "(16 sessions, up to 16 puts per datagram and log entry), each exactly-once"),
    "member": ("list|add|promote|remove|replace ...", raftctl_member.USAGE),
    "help": ("[COMMAND]", "this help, or one command's"),
}
_ARITY = {"put": (2,), "get": (1,), "delete": (1,), "cas": (3,), "endpoint": (1,),
          "status": (0,), "watch": (0,), "transfer": (1,), "add-learner": (1, 2),
          "add-voter": (1, 2), "remove": (1,), "bulk-load": (1,), "member": (1, 2, 3, 4, 5),
          "help": (0, 1)}
WRITE_OUT = ("table", "json", "simple")
ENDPOINT_COLUMNS = ("id", "address", "role", "term", "leader", "commit", "applied",
                    "reachable")
# A command's header (the CAS's, the largest) and the request's header: what
# a key and values may fill of one datagram (raftio/frame.py MAX_PAYLOAD).
_CMD_OVERHEAD = 15 + 5


class Usage(Exception):
    pass


class Help(Exception):
    pass


def _err(msg):
    sys.stderr.write("raftctl: %s\n" % msg)


def help_text(cmd=None):
    if cmd is None:
        return __doc__.strip()
    args, text = COMMANDS[cmd]
    return "usage: raftctl [global flags] %s %s\n  %s\nglobal flags: --cluster FILE (or $%s), " \
           "--timeout MS, --write-out table|json|simple" % (cmd, args, text, ENV)


def load_cluster(path):
    """(cluster id, key, [(id, host, port)], limits dict) of a cluster file."""
    if os.path.isdir(path):
        path = os.path.join(path, "cluster.json")
    try:
        with open(path) as f:
            cl = json.load(f)
        nodes = [(int(n["id"]), str(n["host"]), int(n["port"])) for n in cl["nodes"]]
        limits = cl.get("limits") or {}
        return int(cl["cluster_id"]), str(cl["key"]), nodes, dict(limits)
    except OSError as e:
        raise Usage("cannot read cluster file %s (%s)" % (path, e.strerror or e))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise Usage("cluster file %s is not {cluster_id, key, nodes: [{id, host, port}]} (%s)"
                    % (path, e))


def status_rows(client, ids, timeout_ms=300):
    rows = []
    for nid in ids:
        st = client.status(nid, timeout_ms)
        if st is None:
            rows.append({"id": nid, "reachable": False, "role": None, "term": None,
                         "leader": None, "commit": None, "applied": None})
            continue
        st["reachable"] = True
        rows.append(st)
    return rows


def format_table(rows):
    out = ["%-3s %-9s %-9s %6s %6s %8s %8s %8s %8s  %s" % (
        "id", "reachable", "role", "term", "leader", "commit", "applied", "last", "snapshot",
        "drops")]
    for r in rows:
        if not r["reachable"]:
            out.append("%-3d %-9s %-9s" % (r["id"], "no", "unreachable"))
            continue
        drops = r.get("drops") or {}
        dtxt = " ".join("%s=%d" % (k, drops[k]) for k in sorted(drops) if drops[k]) or "-"
        out.append("%-3d %-9s %-9s %6d %6d %8d %8d %8d %8d  %s" % (
            r["id"], "yes", r["role"], r["term"], r["leader"], r["commit"], r["applied"],
            r.get("last", 0), r.get("snapshot", 0), dtxt))
    return "\n".join(out)


def format_simple(rows, cols):
    """etcdctl's simple write-out: one line per row, values comma-separated."""
    return "\n".join(", ".join(_cell(r.get(c)) for c in cols) for r in rows)


def _cell(v):
    if v is None:
        return "-"
    if v is True or v is False:
        return "true" if v else "false"
    return str(v)


def endpoint_rows(client, nodes):
    rows = []
    for r, (nid, host, port) in zip(status_rows(client, [n[0] for n in nodes]), nodes):
        row = dict((c, r.get(c)) for c in ENDPOINT_COLUMNS)
        row["address"] = "%s:%d" % (host, port)
        rows.append(row)
    return rows


def format_endpoints(rows):
    """A bordered table, as etcdctl's `endpoint status -w table` prints."""
    cells = [list(c.upper() for c in ENDPOINT_COLUMNS)] + [
        [_cell(r[c]) for c in ENDPOINT_COLUMNS] for r in rows]
    w = [max(len(row[i]) for row in cells) for i in range(len(ENDPOINT_COLUMNS))]
    rule = "+" + "+".join("-" * (n + 2) for n in w) + "+"
    line = lambda row: "| " + " | ".join(v.ljust(n) for v, n in zip(row, w)) + " |"  # noqa: E731
    return "\n".join([rule, line(cells[0]), rule] + [line(r) for r in cells[1:]] + [rule])


def parse(argv, env=None):
    env = os.environ if env is None else env
    opts = {"cluster": None, "timeout": 5000, "write_out": "table", "interval": 1.0,
            "count": 0, "absent": False, "help": False}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":  # the rest are arguments, even if they start with a dash
            pos.extend(argv[i + 1:])
            break
        if a in ("-h", "--help"):
            opts["help"] = True
        elif a == "--json":
            opts["write_out"] = "json"
        elif a == "--learner":
            pos.append(a)   # member add NODE --learner
        elif a == "--absent":
            opts["absent"] = True
            pos.append(None)
        elif a.split("=", 1)[0] in ("--cluster", "--timeout", "--interval", "--count",
                                    "--write-out", "-w"):
            name, eq, v = a.partition("=")
            if not eq:
                if i + 1 >= len(argv):
                    raise Usage("%s needs a value" % a)
                v = argv[i + 1]
                i += 1
            _option(opts, name, v)
        elif a.startswith("-") and not a[1:].isdigit() and a != "-":
            raise Usage("unknown option %s (see raftctl --help)" % a)
        else:
            pos.append(a)
        i += 1
    if pos and pos[0] == "help":
        if len(pos) > 2 or (len(pos) == 2 and pos[1] not in COMMANDS):
            raise Usage("help takes one command name (%s)" % " ".join(sorted(COMMANDS)))
        raise Help(help_text(pos[1] if len(pos) == 2 else None))
    if opts["help"]:
        raise Help(help_text(pos[0] if pos and pos[0] in COMMANDS else None))
    if not pos:
        raise Usage("no command given")
    if pos[0] not in COMMANDS:
        raise Usage("unknown command %r (see raftctl --help)" % (pos[0],))
    if len(pos) - 1 not in _ARITY[pos[0]]:
        raise Usage("usage: raftctl %s %s" % (pos[0], COMMANDS[pos[0]][0]))
    if pos[0] == "endpoint" and pos[1] != "status":
        raise Usage("unknown endpoint command %r (endpoint status)" % (pos[1],))
    if None in pos[:2] or (None in pos and pos[0] != "cas"):
        raise Usage("--absent only stands for OLD in cas")
    if opts["cluster"] is None:
        opts["cluster"] = env.get(ENV) or None
    if opts["cluster"] is None:
        raise Usage("no cluster: give --cluster FILE or set %s" % ENV)
    return opts, pos


def _option(opts, name, v):
    if name == "--cluster":
        opts["cluster"] = v
    elif name in ("--write-out", "-w"):
        if v not in WRITE_OUT:
            raise Usage("--write-out must be one of %s, got %r" % ("|".join(WRITE_OUT), v))
        opts["write_out"] = v
    else:
        try:
            x = float(v) if name == "--interval" else int(v)
        except ValueError:
            raise Usage("%s wants a number, got %r" % (name, v))
        if name == "--timeout" and not 0 < x <= 3600000:
            raise Usage("--timeout must be 1..3600000 ms, got %s" % v)
        if x < 0:
            raise Usage("%s must not be negative, got %s" % (name, v))
        opts[name[2:]] = x


def node_id(text):
    try:
        nid = int(text)
    except ValueError:
        raise Usage("a node id is a number, got %r" % (text,))
    if not 0 < nid <= 0xFFFF:
        raise Usage("node id %d is out of range 1..65535" % nid)
    return nid


def check_kv(pos, limits):
    """Usage unless the command's key and values fit the limits: the wire's
    (a key of 255 bytes, one datagram per command) and, when the cluster file
    states them ("limits": {"max_key", "max_value"}), the cluster's."""
    from raftio.frame import MAX_PAYLOAD
    from raftkv.codec import WIRE_MAX_KEY
    cmd = pos[0]
    key = pos[1].encode()
    max_key = min(WIRE_MAX_KEY, int(limits.get("max_key", WIRE_MAX_KEY)))
    if len(key) > max_key:
        raise Usage("key of %d bytes is over the limit of %d" % (len(key), max_key))
    values = [v.encode() for v in pos[2:] if v is not None]
    room = MAX_PAYLOAD - _CMD_OVERHEAD - len(key)
    for v in values:
        limit = min(room - sum(len(x) for x in values) + len(v),
                    int(limits.get("max_value", room)))
        if len(v) > limit:
            raise Usage("value of %d bytes is over the limit of %d" % (len(v), max(limit, 0)))


def transfer(c, ids, arg, timeout_ms):
    """Hand leadership to node arg; 0 once it leads, 3 if it does not within timeout_ms."""
    from raftio import wire
    to = node_id(arg)
    if to not in ids:
        raise Usage("node %d is not in the cluster file (%s)" % (to, ", ".join(map(str, ids))))
    c.admin(wire.A_TRANSFER, to)
    deadline = time.monotonic() + timeout_ms / 1000.0
    while time.monotonic() < deadline:
        st = c.status(to, timeout_ms=200)
        if st and st.get("role") == "leader":
            print("node %d leads (term %d)" % (to, st["term"]))
            return 0
        time.sleep(0.02)
    _err("node %d did not take leadership within %d ms" % (to, timeout_ms))
    return 3


def member_ctx(nodes, cmd, args):
    """(node id, ctx) of add-learner/add-voter NODE [HOST:PORT], remove NODE.

    The node's address comes from HOST:PORT or the cluster file and travels
    in the change, so every member learns where the new node listens.
    """
    from raftio.wire import ADMIN_MAX_CTX
    nid = node_id(args[0])
    if cmd == "remove":
        return nid, b""
    if len(args) > 1:
        addr = args[1]
        host, _, port = addr.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise Usage("address must be HOST:PORT, got %r" % addr)
    else:
        known = [n for n in nodes if n[0] == nid]
        if not known:
            raise Usage("node %d is not in the cluster file; give its HOST:PORT" % nid)
        addr = "%s:%d" % (known[0][1], known[0][2])
    if len(addr.encode()) > ADMIN_MAX_CTX:
        raise Usage("address %r is over %d bytes" % (addr, ADMIN_MAX_CTX))
    return nid, addr.encode()


def member(c, nid, ctx, cmd):
    """Membership: answered once the change is applied; one change at a time."""
    from raftio import wire
    op = {"add-learner": wire.A_ADD_LEARNER, "add-voter": wire.A_ADD_VOTER,
          "remove": wire.A_REMOVE}[cmd]
    c.admin(op, nid, ctx)
    print("%s %d: applied" % (cmd, nid))
    return 0


def _print_value(v, opts, key):
    if opts["write_out"] == "json":
        print(json.dumps({"key": key, "value": v.decode("utf-8", "replace")}))
        return
    try:
        print(v.decode())
    except UnicodeError:
        print(repr(v))


def _validate(opts, pos, nodes, limits):
    """Every local check, before a socket opens."""
    cmd = pos[0]
    if cmd in ("put", "get", "delete", "cas"):
        check_kv(pos, limits)
    elif cmd in ("add-learner", "add-voter", "remove"):
        return member_ctx(nodes, cmd, pos[1:])
    elif cmd == "transfer":
        node_id(pos[1])
    return None


def bulk_load(c, path, sessions=16, chunk=512):
    """Put every `KEY VALUE` line of path (- for stdin) in client batches."""
    f = sys.stdin if path == "-" else None
    if f is None:
        try:
            f = open(path)
        except OSError as e:
            raise Usage("bulk-load: cannot read %s: %s" % (path, e.strerror))
    t = time.monotonic()
    n = 0
    pairs = []
    try:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            kv = line.split(None, 1)
            if len(kv) != 2:
                raise Usage("bulk-load: %s line %d: want KEY VALUE, got %r" % (path, lineno, line))
            pairs.append(kv)
            if len(pairs) >= chunk:
                n += c.put_many(pairs, sessions)
                pairs = []
        if pairs:
            n += c.put_many(pairs, sessions)
    finally:
        if f is not sys.stdin:
            f.close()
    dt = time.monotonic() - t
    print("loaded %d keys in %.2f s (%.0f puts/s)" % (n, dt, n / dt if dt > 0 else 0))
    return 0


def run(opts, pos):
    import ctlsession
    from raftio.client import (ChangePending, Client, ClientError, ClusterUnavailable,
                               RequestRejected)
    cid, key, nodes, limits = load_cluster(opts["cluster"])
    change = _validate(opts, pos, nodes, limits)
    try:
        c = Client(cid, key, nodes, timeout_ms=opts["timeout"])
    except (ValueError, OSError) as e:
        raise Usage("bad cluster file: %s" % e)
    cmd = pos[0]
    store = ctlsession.SessionStore(cid, key)
    session_wait_s = opts["timeout"] / 1000.0

    def write(op):
        return ctlsession.write(c, store, op, session_wait_s)

    try:
        if cmd == "put":
            write(lambda: c.put(pos[1], pos[2]))
            print("OK")
            return 0
        if cmd == "get":
            v = c.get(pos[1])
            if v is None:
                _err("key %r not found" % pos[1])
                return 1
            _print_value(v, opts, pos[1])
            return 0
        if cmd == "delete":
            if not write(lambda: c.delete(pos[1])):
                _err("key %r not found" % pos[1])
                return 1
            print("OK")
            return 0
        if cmd == "cas":
            ok, cur = write(lambda: c.cas(pos[1], pos[2], pos[3]))
            if not ok:
                _err("cas failed: %r holds %s" % (pos[1], "nothing" if cur is None
                                                  else repr(cur.decode("utf-8", "replace"))))
                return 1
            print("OK")
            return 0
        if cmd == "bulk-load":
            return bulk_load(c, pos[1])
        ids = [n[0] for n in nodes]
        if cmd == "transfer":
            return transfer(c, ids, pos[1], opts["timeout"])
        if cmd in ("add-learner", "add-voter", "remove"):
            return member(c, change[0], change[1], cmd)
        if cmd == "member":
            try:
                rc = raftctl_member.run(c, nodes, pos[1:], opts)
            except raftctl_member.Refused as e:
                _err(str(e))
                return 2
            if rc is None:
                _err("cluster unavailable: no leader answered within %d ms" % opts["timeout"])
                return 3
            return rc
        if cmd == "endpoint":
            rows = endpoint_rows(c, nodes)
            if opts["write_out"] == "json":
                print(json.dumps(rows, sort_keys=True))
            elif opts["write_out"] == "simple":
                print(format_simple(rows, ENDPOINT_COLUMNS))
            else:
                print(format_endpoints(rows))
            return 0 if any(r["reachable"] for r in rows) else 3
        if cmd == "status":
            rows = status_rows(c, ids)
            if opts["write_out"] == "json":
                print(json.dumps(rows, sort_keys=True))
            elif opts["write_out"] == "simple":
                print(format_simple(rows, ("id", "reachable", "role", "term", "leader",
                                           "commit", "applied", "last", "snapshot")))
            else:
                print(format_table(rows))
            return 0 if any(r["reachable"] for r in rows) else 3
        n = 0
        try:
            while opts["count"] <= 0 or n < opts["count"]:
                rows = status_rows(c, ids)
                sys.stdout.write("\x1b[H\x1b[2J" if sys.stdout.isatty() else "")
                print(time.strftime("%H:%M:%S ") + opts["cluster"])
                print(format_table(rows))
                sys.stdout.flush()
                n += 1
                if opts["count"] <= 0 or n < opts["count"]:
                    time.sleep(opts["interval"])
        except KeyboardInterrupt:
            pass
        return 0
    except ChangePending as e:
        _err(str(e))
        return 3
    except ClusterUnavailable as e:
        _err(str(e))
        return 3
    except RequestRejected as e:
        _err(_rejected(e))
        return 2
    except ClientError as e:
        _err(str(e))
        return 3
    finally:
        c.close()


def _rejected(e):
    """The refusal in words: the reason the node gave, or a TOO_LARGE/FULL
    the state machine answered (limits of this cluster)."""
    text = str(e)
    if text.endswith("TOO_LARGE"):
        return "refused: key or value over the cluster's limits (TOO_LARGE)"
    if text.endswith("FULL"):
        return "refused: the cluster holds its maximum number of keys (FULL)"
    return text


def main(argv, env=None):
    try:
        opts, pos = parse(argv, env)
        return run(opts, pos)
    except Help as h:
        print(str(h))
        return 0
    except Usage as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        return 3
    except Exception as e:  # the contract: one line, never a traceback
        _err("unexpected error: %s" % (str(e) or type(e).__name__))
        return 3


if __name__ == "__main__":
    try:
        rc = main(sys.argv[1:])
        sys.stdout.flush()
    except BrokenPipeError:  # `raftctl --help | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        rc = 0
    sys.exit(rc)
