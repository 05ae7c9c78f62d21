"""`raftctl member ...`: membership in etcdctl's style (raftctl.py calls run()).

    member list [--json]              id, address, role (voter, learner, joining,
                                      outgoing while joint, rejoining: a wiped
                                      node until promoted), match index,
                                      reachable, incarnation (docs/incarnation.md)
    member add NODE [HOST:PORT] [--learner]   add a voter (or a learner)
    member promote NODE               a learner becomes a voter
    member remove NODE
    member replace OLD NEW HOST:PORT  one joint change (thesis 4.3): OLD out,
                                      NEW in as a voter, never an even-sized
                                      configuration in between

Each change is answered once applied (replace: once the joint configuration
is left too). HOST:PORT (or the cluster file) gives the new node's address;
it travels in the change, so every member learns it. An invalid change
(already a member, not a learner, the last voter) is refused with one line
and exit status 2 (raftctl.Usage for what raftctl can tell by itself, the
leader's BAD_REQUEST otherwise).
"""
import json
import time

USAGE = ("member list [--json] | member add NODE [HOST:PORT] [--learner] | "
         "member promote NODE | member remove NODE | member replace OLD NEW HOST:PORT")


class Refused(Exception):
    """An invalid change: one line, exit status 2."""


def _id(s, what):
    try:
        n = int(s)
    except ValueError:
        raise Refused("%s wants a node id, got %r" % (what, s))
    if not 0 < n < 0x10000:
        raise Refused("%s: node id %d is not in 1..65535" % (what, n))
    return n


def _addr(nodes, nid, arg):
    if arg is not None:
        host, _, port = arg.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise Refused("address must be HOST:PORT, got %r" % arg)
        return arg
    known = [n for n in nodes if n[0] == nid]
    if not known:
        raise Refused("node %d is not in the cluster file; give its HOST:PORT" % nid)
    return "%s:%d" % (known[0][1], known[0][2])


def leader_status(c, ids, timeout_ms):
    """The status of the node that leads, asking every node in the file."""
    deadline = time.monotonic() + timeout_ms / 1000.0
    while True:
        for nid in ids:
            st = c.status(nid, 200)
            if st and st.get("role") == "leader":
                return st
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def members(st, nodes, reach):
    """Rows of `member list` from the leader's status."""
    addrs = dict((n[0], "%s:%d" % (n[1], n[2])) for n in nodes)
    voters = st.get("voters", [])
    out = st.get("voters_out", [])
    learners = st.get("learners", [])
    match = st.get("match", {})
    incs = st.get("incs", {})
    rejoin = st.get("rejoin", [])
    rows = []
    for nid in sorted(set(voters) | set(out) | set(learners)):
        m = st["last"] if nid == st["id"] else match.get(str(nid), 0)
        if nid in voters:
            role = "voter"
        elif nid in out:
            role = "outgoing"   # a voter until the joint configuration is left
        else:
            role = "learner"
        if m == 0 and nid != st["id"]:
            role = "joining"    # has acknowledged nothing yet
        if nid in rejoin:
            role = "rejoining"  # a new incarnation, a learner until caught up
        rows.append({"id": nid, "address": addrs.get(nid, "?"), "role": role, "match": m,
                     "reachable": reach(nid) if nid in addrs else None,
                     "inc": incs.get(str(nid), 0)})
    return rows


def format_members(rows):
    out = ["%-5s %-22s %-9s %8s  %-9s  %s" % ("id", "address", "role", "match", "reachable",
                                               "incarnation")]
    for r in rows:
        rc = {True: "yes", False: "no", None: "?"}[r["reachable"]]
        out.append("%-5d %-22s %-9s %8d  %-9s  %s" % (r["id"], r["address"], r["role"],
                                                      r["match"], rc, r["inc"] or "-"))
    return "\n".join(out)


def run(c, nodes, args, opts):
    """Returns the exit status; Refused for an invalid change."""
    from raft import confchange as CC
    from raftio import wire
    ids = [n[0] for n in nodes]
    timeout = opts["timeout"]
    learner = "--learner" in args
    args = [a for a in args if a != "--learner"]
    sub = args[0] if args else None
    want = {"list": 1, "add": (2, 3), "promote": 2, "remove": 2, "replace": 4}.get(sub)
    if want is None or len(args) not in (want if isinstance(want, tuple) else (want,)):
        raise Refused("usage: " + USAGE)
    st = leader_status(c, ids, timeout)
    if st is None:
        return None   # unavailable: raftctl answers 3
    voters = st.get("voters", [])
    learners = st.get("learners", [])
    if sub == "list":
        rows = members(st, nodes, lambda nid: c.status(nid, 300) is not None)
        print(json.dumps(rows, sort_keys=True) if opts.get("write_out") == "json" else format_members(rows))
        return 0
    if st.get("voters_out"):
        # The leader answers BUSY until it left; say why instead of waiting.
        raise Refused("the cluster is in a joint configuration (leaving it); retry shortly")
    nid = _id(args[1], sub)
    if sub == "add":
        if nid in voters or nid in learners:
            raise Refused("node %d is already a member" % nid)
        ctx = _addr(nodes, nid, args[2] if len(args) > 2 else None).encode()
        c.admin(wire.A_ADD_LEARNER if learner else wire.A_ADD_VOTER, nid, ctx)
        print("member %d added as a %s" % (nid, "learner" if learner else "voter"))
        return 0
    if sub == "promote":
        if nid not in learners:
            raise Refused("node %d is not a learner; only a learner can be promoted" % nid)
        c.admin(wire.A_ADD_VOTER, nid)
        print("member %d promoted to voter" % nid)
        return 0
    if sub == "remove":
        if nid not in voters and nid not in learners:
            raise Refused("node %d is not a member" % nid)
        c.admin(wire.A_REMOVE, nid)
        print("member %d removed" % nid)
        return 0
    new = _id(args[2], sub)
    if nid not in voters:
        raise Refused("node %d is not a voter" % nid)
    if new == nid or new in voters:
        raise Refused("node %d is already a voter" % new)
    addr = _addr(nodes, new, args[3])
    body = CC.encode_v2(CC.AUTO, ((CC.REMOVE, nid), (CC.ADD_VOTER, new)),
                        b"%d=%s" % (new, addr.encode()))
    c.admin(wire.A_JOINT, 0, body)
    # Answered once the joint configuration is entered; the leader leaves
    # it by itself: wait for that, so the next change is not refused BUSY.
    deadline = time.monotonic() + timeout / 1000.0
    while time.monotonic() < deadline:
        st = leader_status(c, ids, 500)
        if st and not st.get("voters_out") and new in st.get("voters", ()):
            print("member %d replaced by %d (voters %s)" % (
                nid, new, ",".join(str(v) for v in st["voters"])))
            return 0
        time.sleep(0.05)
    print("member %d replaced by %d (still leaving the joint configuration)" % (nid, new))
    return 0
