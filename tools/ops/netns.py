"""Network namespaces for a local cluster: one namespace per node on a private bridge (root only).

    sudo python3 tools/ops/cluster.py up --nodes 5 --dir /tmp/nc --netns
    python3 tools/ops/raftctl.py --cluster /tmp/nc/cluster.json put k v
    sudo python3 tools/ops/netns.py show --dir /tmp/nc           # namespaces, addresses, links, drops
    sudo python3 tools/ops/netns.py cut 3 --dir /tmp/nc          # ip link set <node 3's veth> down
    sudo python3 tools/ops/netns.py heal 3 --dir /tmp/nc         # ... up
    sudo python3 tools/ops/netns.py drop 10 --dir /tmp/nc        # nodes drop 10% of datagrams from peers
    sudo python3 tools/ops/netns.py partition 1,2/3,4,5 --dir /tmp/nc
    sudo python3 tools/ops/netns.py clear --dir /tmp/nc          # no drops, no partition, every link up
    sudo python3 tools/ops/cluster.py faults --dir /tmp/nc --drop 0.1 --partition 1,2/3,4,5
    sudo python3 tools/ops/cluster.py down --dir /tmp/nc         # also removes namespaces, veths, bridge
    sudo python3 tools/ops/netns.py cleanup --dir /tmp/nc        # the same removal, without cluster.py

Layout for a cluster with tag T (6 hex digits from the cluster folder and id):
bridge `mpr-brT` holding 10.213.X.1/24 in the host namespace; node N lives
in namespace `mpr-T-N` with `eth0` = 10.213.X.(N+1)/24, joined to the
bridge by the host-side veth `mprTvN`; lo is up in every namespace. X is
the first /24 in 10.213.1-254 that no interface on the host uses, chosen
under a lock file so parallel clusters never share one. Every address used
is inside namespaces (or on the bridge) that this tool created.

Host clients (raftctl.py, raftio.client, the benchmark's load) bind
0.0.0.0, so they reach the nodes from the bridge's address 10.213.X.1: no
NAT is needed (a client bound to 127.0.0.1 could not send out of a real
interface). Nothing else on the host is touched; `down` still removes the
`ip mpr-T` NAT table that earlier versions created.

Faults (nftables, `inet mpraft` table in each node's namespace, input hook;
node-to-node datagrams only, clients' traffic passes, as with udp_proxy.py):
- drop P: `ip saddr <peers> numgen random mod 10000 < P*100 drop`
  (P in percent, steps of 0.01%);
- partition 1,2/3,4,5: each node drops datagrams from nodes outside its
  group; nodes named in no group are cut off from everyone;
- cut i-j (one way, cluster.py faults --cut): node j drops datagrams from i;
- link down N (cut/heal, cluster.py faults --linkdown N): node N's veth is
  set down, so nothing reaches it or leaves it, clients included.
Delay, duplication and reordering need netem, which this kernel lacks: use
`cluster.py up --proxy` for those. The current faults live in DIR/faults.json;
`cluster.py faults` replaces all of them, the commands above change one.

Every `ip`/`nft` call goes through run(): bounded by a timeout, one-line
errors (NetnsError). Exit status: 0 ok, 2 usage, 3 error.
"""
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

NET = "10.213"
LOCK = "/run/mpraft-netns.lock"
TABLE = "mpraft"    # the per-namespace fault table (inet family)
IFACE = "eth0"      # the node's end of its veth, inside its namespace
NOT_ROOT = "cluster.py: --netns needs root (CAP_NET_ADMIN)"


class NetnsError(Exception):
    pass


def run(args, timeout=10, check=True, stdin=None):
    """Run one ip/nft command; (returncode, stdout, stderr). Raises NetnsError on failure if check."""
    if os.geteuid() != 0:
        raise NetnsError(NOT_ROOT)
    try:
        p = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        hint = " (apt-get install -y nftables)" if args[0] == "nft" else ""
        raise NetnsError("netns: `%s` not found on this machine%s" % (args[0], hint))
    except subprocess.TimeoutExpired:
        raise NetnsError("netns: `%s` timed out after %d s" % (" ".join(args), timeout))
    if check and p.returncode != 0:
        err = (p.stderr.strip() or p.stdout.strip() or "exit %d" % p.returncode).splitlines()[0]
        raise NetnsError("netns: `%s` failed: %s" % (" ".join(args), err))
    return p.returncode, p.stdout, p.stderr


def tag_of(d, cluster_id):
    return hashlib.sha1(("%s:%d" % (os.path.realpath(d), cluster_id)).encode()).hexdigest()[:6]


def spec_for(tag, x, ids):
    """The names and addresses of a cluster's namespaces (recorded as cluster.json "netns")."""
    return {"tag": tag, "bridge": "mpr-br" + tag, "nat_table": "mpr-" + tag,
            "subnet": "%s.%d.0/24" % (NET, x), "host_addr": "%s.%d.1" % (NET, x),
            "nodes": {str(i): {"ns": "mpr-%s-%d" % (tag, i), "veth": "mpr%sv%d" % (tag, i),
                               "addr": "%s.%d.%d" % (NET, x, i + 1)} for i in ids}}


def _used_nets():
    _, out, _ = run(["ip", "-o", "-4", "addr", "show"])
    used = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) > 3 and f[2] == "inet" and f[3].startswith(NET + "."):
            used[int(f[3].split(".")[2])] = f[1]
    return used


class _Lock:
    """Serialises subnet choice and bridge creation between concurrent cluster.py runs."""

    def __enter__(self):
        self.f = open(LOCK, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def check():
    """Fail with one line unless we are root and `ip netns` and `nft` both work."""
    if os.geteuid() != 0:
        raise NetnsError(NOT_ROOT)
    run(["ip", "netns", "list"])
    run(["nft", "--version"])


def allocate(d, cluster_id, ids):
    """Pick a free 10.213.X.0/24 for a new cluster, build its namespaces, return the spec."""
    check()
    if max(ids) > 250:
        raise NetnsError("netns: node ids must be <= 250 (one /24 per cluster)")
    tag = tag_of(d, cluster_id)
    with _Lock():
        used = _used_nets()
        start = int(tag, 16) % 254
        for k in range(254):
            x = 1 + (start + k) % 254
            if x not in used:
                break
        else:
            raise NetnsError("netns: every %s.X.0/24 is in use; `ip -4 addr` shows them" % NET)
        spec = spec_for(tag, x, ids)
        _ensure(spec)
    return spec


def ensure(spec):
    """Create whatever of the spec is missing (after `down`, or a crash); idempotent."""
    check()
    with _Lock():
        _ensure(spec)


def _exists_link(name, ns=None):
    pre = ["ip", "-n", ns] if ns else ["ip"]
    return run(pre + ["link", "show", "dev", name], check=False)[0] == 0


def _namespaces():
    _, out, _ = run(["ip", "netns", "list"])
    return set(line.split()[0] for line in out.splitlines() if line.strip())


def _ensure(spec):
    br, x = spec["bridge"], spec["subnet"].split(".")[2]
    owner = _used_nets().get(int(x))
    if owner is not None and owner != br:
        raise NetnsError("netns: %s is now used by %s; `cluster.py down` and remove cluster.json"
                         " to pick another" % (spec["subnet"], owner))
    if not _exists_link(br):
        run(["ip", "link", "add", br, "type", "bridge"])
    run(["ip", "addr", "replace", spec["host_addr"] + "/24", "dev", br])
    run(["ip", "link", "set", br, "up"])
    have = _namespaces()
    for i in sorted(spec["nodes"], key=int):
        n = spec["nodes"][i]
        if n["ns"] not in have:
            run(["ip", "netns", "add", n["ns"]])
        if not _exists_link(n["veth"]):
            if _exists_link(IFACE, n["ns"]):
                run(["ip", "-n", n["ns"], "link", "del", IFACE])
            run(["ip", "link", "add", n["veth"], "type", "veth", "peer", "name", IFACE,
                 "netns", n["ns"]])
        run(["ip", "link", "set", n["veth"], "master", br, "up"])
        run(["ip", "-n", n["ns"], "addr", "replace", n["addr"] + "/24", "dev", IFACE])
        run(["ip", "-n", n["ns"], "link", "set", IFACE, "up"])
        run(["ip", "-n", n["ns"], "link", "set", "lo", "up"])


def exec_prefix(spec, nid):
    """argv prefix that runs a command inside node nid's namespace (ip execs it: same pid)."""
    return ["ip", "netns", "exec", spec["nodes"][str(nid)]["ns"]]


def destroy(tag):
    """Remove every namespace, veth, bridge and table of cluster `tag`, killing what runs
    inside; idempotent, and finds leftovers by name, so it also cleans up after a crash."""
    if os.geteuid() != 0:
        raise NetnsError(NOT_ROOT)
    nss = sorted(n for n in _namespaces() if n.startswith("mpr-%s-" % tag))
    for ns in nss:
        _, out, _ = run(["ip", "netns", "pids", ns], check=False)
        for pid in out.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
    _, out, _ = run(["ip", "-o", "link", "show"])
    links = []
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith("mpr%sv" % tag) or name == "mpr-br" + tag:
            links.append(name)
    # Veths first: deleting a namespace frees its end asynchronously.
    for name in sorted(links, key=lambda s: s.startswith("mpr-br")):
        run(["ip", "link", "del", name], check=False)
    for ns in nss:
        for _ in range(50):
            if run(["ip", "netns", "del", ns], check=False)[0] == 0 or ns not in _namespaces():
                break
            time.sleep(0.05)
    run(["nft", "delete", "table", "ip", "mpr-" + tag], check=False)
    left = leftovers(tag)
    if left:
        raise NetnsError("netns: could not remove %s" % ", ".join(left))


def leftovers(tag):
    """Names of this cluster's namespaces, links and host table that still exist."""
    left = sorted(n for n in _namespaces() if n.startswith("mpr-%s-" % tag))
    _, out, _ = run(["ip", "-o", "link", "show"])
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith("mpr%sv" % tag) or name == "mpr-br" + tag:
            left.append(name)
    if run(["nft", "list", "table", "ip", "mpr-" + tag], check=False)[0] == 0:
        left.append("nft table ip mpr-" + tag)
    return left


# -- faults ---------------------------------------------------------------------------

def blocked_from(faults, j, ids):
    """Node ids whose datagrams node j must drop under a partition or one-way cuts."""
    out = set()
    for a, b in faults.get("cut", ()):
        if b == j:
            out.add(a)
    part = faults.get("partition")
    if part:
        side = {}
        for k, group in enumerate(part):
            for n in group:
                side[n] = k
        for i in ids:
            if i != j and side.get(i, -1 - i) != side.get(j, -1 - j):
                out.add(i)
    return sorted(out)


def ruleset(spec, faults, j):
    """The nft script for node j's namespace (replaces its table atomically)."""
    ids = sorted(int(i) for i in spec["nodes"])
    addr = {i: spec["nodes"][str(i)]["addr"] for i in ids}
    rules = []
    blocked = blocked_from(faults, j, ids)
    if blocked:
        rules.append("ip saddr { %s } counter drop" % ", ".join(addr[i] for i in blocked))
    drop = int(round(float(faults.get("drop", 0)) * 10000))
    peers = [addr[i] for i in ids if i != j]
    if drop > 0 and peers:
        rules.append("ip saddr { %s } numgen random mod 10000 < %d counter drop"
                     % (", ".join(peers), drop))
    body = "".join("  %s\n" % r for r in rules)
    return ("add table inet %s\ndelete table inet %s\ntable inet %s {\n"
            " chain input { type filter hook input priority filter; policy accept;\n%s }\n}\n"
            % (TABLE, TABLE, TABLE, body))


def apply(spec, faults):
    """Make the namespaces match faults: {"drop": 0..1, "partition": [[ids]...],
    "cut": [[i, j]...], "down": [ids]}; absent keys mean no such fault."""
    for k in ("dup", "reorder", "delay_ms"):
        if faults.get(k):
            raise NetnsError("netns: --dup/--reorder/--delay need netem, which this kernel lacks;"
                             " use cluster.py up --proxy for them")
    down = set(int(i) for i in faults.get("down", ()))
    for i in sorted(spec["nodes"], key=int):
        n = spec["nodes"][i]
        run(["ip", "netns", "exec", n["ns"], "nft", "-f", "-"], stdin=ruleset(spec, faults, int(i)))
        run(["ip", "link", "set", n["veth"], "down" if int(i) in down else "up"])


def load_faults(d):
    try:
        with open(os.path.join(d, "faults.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def save_faults(d, faults):
    tmp = os.path.join(d, "faults.json.tmp")
    with open(tmp, "w") as f:
        json.dump(faults, f)
    os.replace(tmp, os.path.join(d, "faults.json"))


def set_faults(d, spec, faults):
    apply(spec, faults)
    save_faults(d, faults)


def drops(spec):
    """{node id: datagrams dropped by its nft rules so far}."""
    out = {}
    for i in sorted(spec["nodes"], key=int):
        _, text, _ = run(["ip", "netns", "exec", spec["nodes"][i]["ns"], "nft", "list", "table",
                          "inet", TABLE], check=False)
        total = 0
        words = text.split()
        for k, w in enumerate(words[:-1]):
            if w == "packets":
                total += int(words[k + 1])
        out[int(i)] = total
    return out


def show(spec):
    lines = ["bridge %s %s (subnet %s)" % (spec["bridge"], spec["host_addr"], spec["subnet"])]
    dropped = drops(spec)
    for i in sorted(spec["nodes"], key=int):
        n = spec["nodes"][i]
        _, out, _ = run(["ip", "-o", "link", "show", "dev", n["veth"]], check=False)
        flags = out.split("<", 1)[1].split(">", 1)[0].split(",") if "<" in out else []
        state = "up" if "UP" in flags else "down"
        lines.append("node %s: ns %s addr %s veth %s link %s, nft dropped %d"
                     % (i, n["ns"], n["addr"], n["veth"], state, dropped[int(i)]))
    return "\n".join(lines)


USAGE = ("usage: netns.py cut|heal NODE --dir DIR | drop PERCENT --dir DIR |"
         " partition 1,2/3,4,5 --dir DIR | clear|show|cleanup --dir DIR")


def main(argv):
    d = None
    pos = []
    i = 0
    while i < len(argv):
        if argv[i] == "--dir" and i + 1 < len(argv):
            d = argv[i + 1]
            i += 2
        else:
            pos.append(argv[i])
            i += 1
    if d is None or not pos:
        print(USAGE)
        return 2
    try:
        with open(os.path.join(d, "cluster.json")) as f:
            cl = json.load(f)
    except (OSError, ValueError) as e:
        print("netns: cannot read %s/cluster.json (%s)" % (d, e))
        return 3
    spec = cl.get("netns")
    if spec is None:
        print("netns: %s was not started with --netns" % d)
        return 2
    cmd, args = pos[0], pos[1:]
    try:
        f = load_faults(d)
        if cmd in ("cut", "heal") and len(args) == 1 and args[0] in spec["nodes"]:
            down = set(f.get("down", ()))
            if cmd == "cut":
                down.add(int(args[0]))
            else:
                down.discard(int(args[0]))
            f["down"] = sorted(down)
        elif cmd == "drop" and len(args) == 1:
            p = float(args[0])
            if not 0 <= p <= 100:
                raise ValueError(p)
            f["drop"] = p / 100.0
        elif cmd == "partition" and len(args) == 1:
            f["partition"] = [[int(x) for x in g.split(",")] for g in args[0].split("/")]
        elif cmd == "clear" and not args:
            f = {}
        elif cmd == "show" and not args:
            print(show(spec))
            return 0
        elif cmd == "cleanup" and not args:
            destroy(spec["tag"])
            print("removed namespaces, veths and bridge of %s" % spec["tag"])
            return 0
        else:
            print(USAGE)
            return 2
        set_faults(d, spec, f)
        print("faults: %s" % (json.dumps(f, sort_keys=True) if f else "none (healed)"))
        return 0
    except ValueError:
        print(USAGE)
        return 2
    except NetnsError as e:
        print(e)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
