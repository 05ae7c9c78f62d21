"""Talk to an mpraft cluster.

    raftctl.py --cluster DIR/cluster.json put KEY VALUE
    raftctl.py --cluster DIR/cluster.json get KEY          (prints the value)
    raftctl.py --cluster DIR/cluster.json delete KEY
    raftctl.py --cluster DIR/cluster.json cas KEY OLD NEW
    raftctl.py --cluster DIR/cluster.json status [--json]
    raftctl.py --cluster DIR/cluster.json watch [--interval S] [--count N]
    raftctl.py --cluster DIR/cluster.json transfer NODE   (hand leadership to NODE)
    raftctl.py --cluster DIR/cluster.json add-learner NODE [HOST:PORT]
    raftctl.py --cluster DIR/cluster.json add-voter NODE [HOST:PORT]   (or promote a learner)
    raftctl.py --cluster DIR/cluster.json remove NODE
    raftctl.py --cluster DIR/cluster.json member list|add|promote|remove|replace ...
                                          (etcdctl style; see raftctl_member.py)

Membership changes go one at a time and are answered once applied; a
change refused as invalid (already a member, the last voter) exits 2.

`cas KEY OLD NEW` swaps only if KEY holds OLD; give --absent instead of OLD
(`cas KEY --absent NEW`) to require that KEY does not exist.

Exit status: 0 ok, 1 key not found or cas failed, 2 usage, 3 cluster
unavailable. Errors are one line on stderr. --timeout MS bounds each command
(default 5000).
"""
import json
import os
import sys
import time

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import raftctl_member  # noqa: E402

USAGE = ("usage: raftctl.py --cluster FILE [--timeout MS] put K V | get K | delete K | "
         "cas K OLD|--absent NEW | status [--json] | watch [--interval S] [--count N] | "
         "transfer NODE | add-learner NODE [HOST:PORT] | add-voter NODE [HOST:PORT] | remove NODE | "
         + raftctl_member.USAGE)

COLUMNS = ("id", "reachable", "role", "term", "leader", "commit", "applied", "last",
           "snapshot", "drops")


class Usage(Exception):
    pass


def _err(msg):
    sys.stderr.write("raftctl: %s\n" % msg)


def load_cluster(path):
    if os.path.isdir(path):
        path = os.path.join(path, "cluster.json")
    try:
        with open(path) as f:
            cl = json.load(f)
        nodes = [(int(n["id"]), str(n["host"]), int(n["port"])) for n in cl["nodes"]]
        return int(cl["cluster_id"]), str(cl["key"]), nodes
    except OSError as e:
        raise Usage("cannot read cluster file %s (%s)" % (path, e.strerror or e))
    except (ValueError, KeyError, TypeError) as e:
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


def parse(argv):
    opts = {"cluster": None, "timeout": 5000, "json": False, "interval": 1.0, "count": 0,
            "absent": False}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            raise Usage("")
        if a == "--json":
            opts["json"] = True
        elif a == "--learner":
            pos.append(a)   # member add NODE --learner
        elif a == "--absent":
            opts["absent"] = True
            pos.append(None)
        elif a in ("--cluster", "--timeout", "--interval", "--count"):
            if i + 1 >= len(argv):
                raise Usage("%s needs a value" % a)
            v = argv[i + 1]
            try:
                if a == "--cluster":
                    opts["cluster"] = v
                elif a == "--interval":
                    opts["interval"] = float(v)
                else:
                    opts[a[2:]] = int(v)
            except ValueError:
                raise Usage("%s wants a number, got %r" % (a, v))
            i += 1
        elif a.startswith("--"):
            raise Usage("unknown option %s" % a)
        else:
            pos.append(a)
        i += 1
    if opts["cluster"] is None:
        raise Usage("--cluster FILE is required")
    if not pos:
        raise Usage("no command given")
    want = {"put": 3, "get": 2, "delete": 2, "cas": 4, "status": 1, "watch": 1, "transfer": 2,
            "add-learner": 2, "add-voter": 2, "remove": 2, "member": 0}
    if pos[0] not in want:
        raise Usage("unknown command %r" % (pos[0],))
    if pos[0] == "member":
        pass  # raftctl_member checks its own arguments
    elif pos[0] in ("add-learner", "add-voter") and len(pos) == 3:
        pass  # NODE HOST:PORT
    elif len(pos) != want[pos[0]]:
        raise Usage("%s takes %d argument(s)" % (pos[0], want[pos[0]] - 1))
    if None in pos[:2] or (None in pos and pos[0] != "cas"):
        raise Usage("--absent only stands for OLD in cas")
    return opts, pos


def transfer(c, ids, arg, timeout_ms):
    """Hand leadership to node arg; 0 once it leads, 3 if it does not within timeout_ms."""
    from raftio import wire
    try:
        to = int(arg)
    except ValueError:
        raise Usage("transfer wants a node id, got %r" % arg)
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


def member(c, nodes, cmd, args):
    """Membership: add-learner/add-voter NODE [HOST:PORT], remove NODE.

    The node's address comes from HOST:PORT or the cluster file and travels
    in the change, so every member learns where the new node listens.
    Answered once the change is applied; one change at a time.
    """
    from raftio import wire
    try:
        nid = int(args[0])
    except ValueError:
        raise Usage("%s wants a node id, got %r" % (cmd, args[0]))
    ctx = b""
    if cmd != "remove":
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
        ctx = addr.encode()
    op = {"add-learner": wire.A_ADD_LEARNER, "add-voter": wire.A_ADD_VOTER,
          "remove": wire.A_REMOVE}[cmd]
    c.admin(op, nid, ctx)
    print("%s %d: applied" % (cmd, nid))
    return 0


def run(opts, pos):
    from raftio.client import Client, ClientError, ClusterUnavailable, RequestRejected
    cid, key, nodes = load_cluster(opts["cluster"])
    try:
        c = Client(cid, key, nodes, timeout_ms=opts["timeout"])
    except (ValueError, OSError) as e:
        raise Usage("bad cluster file: %s" % e)
    cmd = pos[0]
    try:
        if cmd == "put":
            c.put(pos[1], pos[2])
            return 0
        if cmd == "get":
            v = c.get(pos[1])
            if v is None:
                _err("key %r not found" % pos[1])
                return 1
            try:
                print(v.decode())
            except UnicodeError:
                print(repr(v))
            return 0
        if cmd == "delete":
            if not c.delete(pos[1]):
                _err("key %r not found" % pos[1])
                return 1
            return 0
        if cmd == "cas":
            ok, cur = c.cas(pos[1], pos[2], pos[3])
            if not ok:
                _err("cas failed: %r holds %s" % (pos[1], "nothing" if cur is None
                                                  else repr(cur.decode("utf-8", "replace"))))
                return 1
            return 0
        ids = [n[0] for n in nodes]
        if cmd == "transfer":
            return transfer(c, ids, pos[1], opts["timeout"])
        if cmd in ("add-learner", "add-voter", "remove"):
            return member(c, nodes, cmd, pos[1:])
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
        if cmd == "status":
            rows = status_rows(c, ids)
            if opts["json"]:
                print(json.dumps(rows, sort_keys=True))
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
    except ClusterUnavailable as e:
        _err(str(e))
        return 3
    except RequestRejected as e:
        _err(str(e))
        return 2
    except ClientError as e:
        _err(str(e))
        return 3
    finally:
        c.close()


def main(argv):
    try:
        opts, pos = parse(argv)
        return run(opts, pos)
    except Usage as e:
        if str(e):
            _err(str(e))
        sys.stderr.write(USAGE + "\n")
        return 2
    except KeyboardInterrupt:
        return 3
    except Exception as e:  # the contract: one line, never a traceback
        _err("%s: %s" % (type(e).__name__, e))
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
