"""CPU time and work per committed put: the figure that sets a board's speed.

CPU time is user + system from /proc/PID/stat (clock ticks, usually 10 ms;
a 10 s window at thousands of puts/s makes that resolution about 1%),
sampled for every node process at both ends of a measured window and
divided by the puts acknowledged inside it. Unlike puts/s it does not move
with how busy the machine is, so runs on different days compare.

Work per put on the leader comes from its status (raftio/node.py): the
counters below, read before and after the window and divided by the
puts in the entries it applied meanwhile (entries x batch size). A node that does not report a counter (an
older commit) shows None.
"""
import os

_TCK = os.sysconf("SC_CLK_TCK")
COUNTERS = ("dgrams_in", "dgrams_out", "macs", "flushes", "alloc_bytes")


def cpu_split(pid):
    """(user, system) CPU seconds of process pid, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces) start at state.
    p = s[s.rfind(")") + 2:].split()
    return int(p[11]) / _TCK, int(p[12]) / _TCK


def cpu_s(pid):
    """User + system CPU seconds of process pid, or None if it is gone."""
    u = cpu_split(pid)
    return u[0] + u[1] if u is not None else None


def sample(pids):
    """{node id: (user, system) CPU seconds} for {node id: pid}."""
    return dict((nid, cpu_split(pid)) for nid, pid in pids.items())


def leader_of(st):
    """The node whose status says leader (highest term), or 0."""
    best = (0, -1)
    for nid, s in st.items():
        if s and s.get("role") == "leader" and s.get("term", 0) > best[1]:
            best = (nid, s["term"])
    return best[0]


def per_put(cpu0, cpu1, puts, lead):
    """CPU microseconds per put: leader, mean follower, all nodes together;
    and the leader's and mean follower's system share."""
    if not puts:
        return {"leader_us": None, "follower_us": None, "all_us": None}
    us = {}
    sys_us = {}
    for nid in cpu0:
        a, b = cpu0[nid], cpu1.get(nid)
        if a is not None and b is not None:
            us[nid] = (b[0] + b[1] - a[0] - a[1]) * 1e6 / puts
            sys_us[nid] = (b[1] - a[1]) * 1e6 / puts
    fol = [k for k in us if k != lead]
    return {"leader_us": us.get(lead),
            "follower_us": sum(us[k] for k in fol) / len(fol) if fol else None,
            "all_us": sum(us.values()), "leader_sys_us": sys_us.get(lead),
            "follower_sys_us": sum(sys_us[k] for k in fol) / len(fol) if fol else None,
            "node_us": dict((str(k), v) for k, v in us.items())}


def work_per_put(st0, st1, batch=1):
    """Leader counters per put between two status dicts: per applied entry
    divided by batch, the puts each entry carries (a client batch is one
    entry; dividing by entries alone overstated batched runs batch-fold)."""
    out = {}
    if not st0 or not st1:
        return out
    n = (st1.get("n_applied", 0) - st0.get("n_applied", 0)) * batch
    out["applied"] = n
    for k in COUNTERS:
        a, b = st0.get(k), st1.get(k)
        out[k] = (b - a) / n if a is not None and b is not None and n > 0 else None
    return out


def fmt(x, spec="%6.1f", width=6):
    return spec % x if x is not None else "-".rjust(width)


HEADER = ("%-10s %5s %5s %8s %7s | %7s %7s %7s %7s | %6s %6s %5s %6s %7s"
          % ("system", "batch", "infl", "puts/s", "p50 ms", "leader", "follow", "all", "client",
             "dg_in", "dg_out", "macs", "flush", "alloc B"))
RULE = ("%-10s %5s %5s %8s %7s | %31s | %s"
        % ("", "", "", "", "", "CPU us per committed put", "leader, per put"))


def row_line(name, r):
    w = r.get("work", {})
    return ("%-10s %5d %5d %8.0f %7.2f | %7s %7s %7s %7s | %6s %6s %5s %6s %7s" % (
        name, r.get("batch", 1), r["inflight"], r["puts_per_s"], r["p50_ms"],
        fmt(r.get("leader_us"), "%7.1f", 7), fmt(r.get("follower_us"), "%7.1f", 7),
        fmt(r.get("all_us"), "%7.1f", 7), fmt(r.get("client_us"), "%7.1f", 7),
        fmt(w.get("dgrams_in"), "%6.2f"), fmt(w.get("dgrams_out"), "%6.2f"),
        fmt(w.get("macs"), "%5.2f", 5), fmt(w.get("flushes"), "%6.3f"),
        fmt(w.get("alloc_bytes"), "%7.0f", 7)))


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2.0


def merge_rounds(rows):
    """One row per in-flight level: the median of every figure over the rounds."""
    by = {}
    for r in rows:
        by.setdefault((r.get("batch", 1), r["inflight"]), []).append(r)
    out = []
    for key in sorted(by):
        rs = by[key]
        m = {"batch": key[0], "inflight": key[1], "rounds": len(rs)}
        for k in ("puts_per_s", "p50_ms", "p99_ms", "leader_us", "follower_us", "all_us",
                  "client_us", "leader_sys_us", "follower_sys_us"):
            m[k] = median([r.get(k) for r in rs])
        m["work"] = dict((k, median([r.get("work", {}).get(k) for r in rs]))
                         for k in COUNTERS)
        out.append(m)
    return out


def ratios(new, old):
    """new / old per level for the CPU figures and throughput: at the same
    batch size where old ran it, else against old unbatched."""
    o = dict(((r.get("batch", 1), r["inflight"]), r) for r in old)
    out = []
    for r in new:
        b = o.get((r.get("batch", 1), r["inflight"])) or o.get((1, r["inflight"]))
        if b is None:
            continue
        q = {"inflight": r["inflight"], "batch": r.get("batch", 1)}
        for k in ("leader_us", "follower_us", "all_us", "puts_per_s", "p50_ms"):
            q[k] = r[k] / b[k] if r.get(k) and b.get(k) else None
        out.append(q)
    return out
