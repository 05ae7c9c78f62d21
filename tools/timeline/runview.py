"""A real cluster run as timeline data: the run log plus the nodes' event logs.

    data = runview.load("/tmp/mpraft-chaos-x/cluster")   # or the run.jsonl itself
    page.write("chaos.html", data)

Inputs (docs/timeline.md):
  - run.jsonl, written by tools/ops/chaos.py and cluster_demo.py through
    runlog.RunLog: status polls, injected faults, client ops with the time of
    their invocation and completion;
  - when present, each node's JSON-lines event log (n<ID>.log, or
    n<ID>.events.jsonl): raft.events.to_dict objects with "node" and "time"
    (UTC, RFC 3339, as tools/cloud writes them with --log-json) or
    "unix_ms"; other lines in those files are ignored. Events are exact
    where polls are samples, so a node with events takes its roles,
    elections, votes and snapshots from them.
The time axis is milliseconds since the run log was opened. Client ops are
checked by tools/history/lincheck.py here, so the ops it could not order are
highlighted whatever the tool that ran the cluster concluded. CPython only.
"""
import json
import os
import time

import lincheck
from simrec import ROLES

_ROLE = {"follower": 0, "candidate": 1, "leader": 2, "pre-candidate": 3, "learner": 4,
         "down": 5, "removed": 6, "paused": 7, "silent": 8}
# paused: SIGSTOPped by the tool; silent: up as far as the tool knows, but
# it did not answer a status request.
CLUSTER_ROLES = tuple(ROLES) + ("paused", "silent")
_DOWN = 5
_PAUSED = 7
_SILENT = 8
_LINCHECK_BUDGET = 2000000


class RunLogError(ValueError):
    """The input is not a run log; args[0] says why in one line."""


def _read_jsonl(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line (the tool was killed): skip it
    return out


def _unix_ms(ev):
    if "unix_ms" in ev:
        return float(ev["unix_ms"])
    s = ev.get("time")
    if not isinstance(s, str) or len(s) < 19:
        return None
    try:
        t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    ms = 0.0
    if len(s) > 20 and s[19] == ".":
        frac = s[20:].rstrip("Z")
        try:
            ms = float("0." + frac) * 1000.0
        except ValueError:
            ms = 0.0
    import calendar
    return calendar.timegm(t) * 1000.0 + ms


def _node_logs(d, nodes):
    """{node id: [event dicts with "t" in run-log ms]} from d's node logs."""
    out = {}
    for nid in nodes:
        for name in ("n%d.events.jsonl" % nid, "n%d.log" % nid):
            p = os.path.join(d, name)
            if os.path.exists(p):
                evs = [e for e in _read_jsonl(p) if "event" in e]
                if evs:
                    out[nid] = evs
                    break
    return out


def load(path, lincheck_budget=_LINCHECK_BUDGET):
    """Timeline data (the dict page.write takes) of the run at path: a run
    log file, or the folder holding run.jsonl and the node logs."""
    if os.path.isdir(path):
        d = path
        path = os.path.join(d, "run.jsonl")
    else:
        d = os.path.dirname(path) or "."
    if not os.path.exists(path):
        raise RunLogError("runview: no run log at %s (chaos.py and cluster_demo.py write "
                          "run.jsonl in the cluster folder)" % path)
    recs = _read_jsonl(path)
    if not recs or recs[0].get("kind") != "meta":
        raise RunLogError("runview: %s does not start with a meta line: not a run log" % path)
    meta = recs[0]
    nodes = sorted(set(meta.get("nodes") or [r["node"] for r in recs
                                              if r.get("kind") == "status" and "node" in r]))
    if not nodes:
        raise RunLogError("runview: %s names no nodes" % path)
    t1 = max([r.get("t", 0) for r in recs] + [1.0])
    events = _node_logs(d, nodes)
    t0_ms = float(meta.get("t0_unix", 0)) * 1000.0
    for nid in events:
        keep = []
        for e in events[nid]:
            u = _unix_ms(e)
            if u is not None:
                e["t"] = round(u - t0_ms, 1)
                if 0 <= e["t"] <= t1 + 1000:
                    keep.append(e)
        keep.sort(key=lambda e: e["t"])
        events[nid] = keep
    return _build(meta, recs, nodes, events, t1, lincheck_budget)


def _build(meta, recs, nodes, events, t1, budget):
    row = {n: k for k, n in enumerate(nodes)}
    down_iv = _down_intervals(recs, nodes, t1)
    spans = [[] for _ in nodes]
    index = [[] for _ in nodes]
    elections, votes, snaps, marks, faults, confs = [], [], [], [], [], []
    obs = [[] for _ in nodes]   # (t, role code, term) observations per node
    last_snap = {}
    last_conf = None
    for r in recs:
        kind = r.get("kind")
        t = r.get("t", 0)
        if kind == "status" and r.get("node") in row:
            k = row[r["node"]]
            if _inside(down_iv[r["node"]], t):
                # Killed or paused: an answer logged now left before that.
                continue
            if not r.get("up"):
                obs[k].append((t, _SILENT, -1, "no answer to status"))
                continue
            if r["node"] not in events:
                role = _ROLE.get(r.get("role"), 0)
                if r["node"] in (r.get("learners") or ()):
                    role = 4
                obs[k].append((t, role, r.get("term", -1), ""))
            if "commit" in r:
                index[k].append([t, r["commit"], r.get("applied", r["commit"])])
            s = r.get("snapshot")
            if s and s != last_snap.get(r["node"]) and r["node"] not in events:
                if r["node"] in last_snap:
                    snaps.append([t, r["node"], 0, s, 0])
                last_snap[r["node"]] = s
            if r.get("role") == "leader" and "voters" in r:
                conf = (list(r["voters"]), list(r.get("learners") or []))
                if last_conf is not None and conf != last_conf:
                    confs.append([t, r.get("commit", 0), conf[0], conf[1]])
                last_conf = conf
        elif kind == "fault":
            _fault(r, t, marks)
        elif kind == "note":
            marks.append([t, "other", r.get("node", 0), r.get("text", "")])
    faults = _fault_spans(recs, t1)
    for nid in nodes:
        k = row[nid]
        for a, b, what in down_iv[nid]:
            obs[k].append((a, _PAUSED if what == "pause" else _DOWN, -1, what))
            # A restarted node boots until it answers; a resumed one is
            # what it was, known at the next poll.
            obs[k].append((b, -1 if what == "pause" else _DOWN, -1, "restarting"))
        for e in events.get(nid, ()):
            _event(e, nid, obs[k], elections, votes, snaps, index[k])
        obs[k].sort(key=lambda o: o[0])
        spans[k] = _spans(obs[k], t1)
        if nid not in events:
            for i, s in enumerate(spans[k]):
                if s[2] in (1, 3) and (i == 0 or spans[k][i - 1][2:4] != s[2:4]):
                    elections.append([s[0], nid, s[3], 1 if s[2] == 3 else 0])
    ops = _ops(recs, t1, budget)
    out = {"version": 1, "source": "cluster", "unit": "ms", "t0": 0, "t1": t1,
           "title": "%s run%s" % (meta.get("source", "cluster"),
                                   " seed %s" % meta["seed"] if "seed" in meta else ""),
           "command": meta.get("command", ""), "nodes": nodes, "roles": list(CLUSTER_ROLES),
           "spans": spans, "elections": sorted(elections), "votes": sorted(votes),
           "leaders": _leaders(nodes, spans),
           "msg_types": [], "msgs": [], "msgs_capped": 0,
           "index": index, "snaps": sorted(snaps), "confs": confs, "faults": faults,
           "marks": marks, "density": _net_density(recs, t1) or _density(ops, t1),
           "violations": [],
           "meta": [[k, meta[k]] for k in sorted(meta) if k not in ("t", "kind", "t0_unix",
                                                                     "command", "nodes")]}
    out["meta"].append(["node event logs", ",".join(str(n) for n in sorted(events)) or "none"])
    if ops is not None:
        out["ops"] = ops
    return out


def _inside(ivs, t):
    for a, b, _ in ivs:
        if a <= t <= b:
            return True
    return False


def _down_intervals(recs, nodes, t1):
    """{node: [(start, end, "kill"|"pause")]} from the faults the tool injected."""
    out = {n: [] for n in nodes}
    open_ = {}
    for r in recs:
        if r.get("kind") != "fault":
            continue
        f, n = r.get("fault"), r.get("node")
        if n not in out:
            continue
        if f in ("kill", "pause"):
            open_[n] = (r["t"], f)
        elif f in ("restart", "resume") and n in open_:
            a, what = open_.pop(n)
            out[n].append((a, r["t"], what))
    for n, (a, what) in open_.items():
        out[n].append((a, t1, what))
    return out


def _fault(r, t, marks):
    f = r.get("fault", "fault")
    if f in ("kill", "restart", "pause", "resume", "transfer", "remove", "rejoin"):
        marks.append([t, f, r.get("node", 0), r.get("text", f)])


def _fault_spans(recs, t1):
    """[start, end, kind, nodes, text] of partitions (until healed or the
    next one) and network noise (until the next setting or the final heal)."""
    out = []
    part = noise = None
    for r in recs:
        if r.get("kind") != "fault":
            continue
        f, t = r.get("fault"), r["t"]
        if f in ("partition", "heal") and part is not None:
            out.append([part[0], t, "partition", part[1], part[2]])
            part = None
        if (f == "noise" or (f == "heal" and r.get("all"))) and noise is not None:
            out.append([noise[0], t, "noise", [], noise[1]])
            noise = None
        if f == "partition":
            part = (t, r.get("nodes") or [], r.get("text", "partition"))
        elif f == "noise" and r.get("levels"):
            noise = (t, r.get("text", "noise"))
    if part is not None:
        out.append([part[0], t1, "partition", part[1], part[2]])
    if noise is not None:
        out.append([noise[0], t1, "noise", [], noise[1]])
    out.sort()
    return out


def _event(e, nid, obs, elections, votes, snaps, index):
    t = e["t"]
    ev = e.get("event")
    term = e.get("term", -1)
    if ev == "role":
        obs.append((t, _ROLE.get(e.get("role"), 0), term, ""))
    elif ev == "election":
        pre = e.get("pre", e.get("pre_vote"))
        elections.append([t, nid, term, 1 if pre else 0])
    elif ev == "vote":
        votes.append([t, nid, e.get("candidate", 0), term, 1 if e.get("pre") else 0])
    elif ev == "commit" and "commit" in e:
        index.append([t, e["commit"], index[-1][2] if index else 0])
    elif ev in ("snap_taken", "snap_installed"):
        snaps.append([t, nid, 0 if ev == "snap_taken" else 1, e.get("index", 0), 0])
    elif ev == "snap_sent":
        snaps.append([t, nid, 2, e.get("index", 0), e.get("peer", 0)])


def _spans(obs, t1):
    """[start, end, role, term] from time-ordered observations (t, role,
    term, why); role -1 means unknown from t on, which ends the open span."""
    out = []
    for t, role, term, _ in obs:
        is_open = out and out[-1][1] == t1
        if role < 0:
            if is_open:
                out[-1][1] = t
            continue
        if is_open and out[-1][2] == role and out[-1][3] == term:
            continue
        if is_open:
            out[-1][1] = t
        out.append([t, t1, role, term])
    return [s for s in out if s[1] > s[0]]


def _leaders(nodes, spans):
    out = []
    for k, sp in enumerate(spans):
        for s in sp:
            if s[2] == 2:
                out.append([s[0], s[1], nodes[k], s[3]])
    out.sort()
    return out


def _ops(recs, t1, budget):
    evs = [r for r in recs if r.get("kind") == "op"]
    if not evs:
        return None
    hist = []
    for r in evs:
        h = {k: r[k] for k in ("process", "type", "f", "key", "value") if k in r}
        hist.append(h)
    try:
        res = lincheck.check_events(hist, max_configs=budget)
    except lincheck.HistoryError as e:
        raise RunLogError("runview: client ops: %s" % e)
    bad = set(o["invoke"] for o in res.get("ops_unorderable", ()))
    rows, open_ = [], {}
    for i, r in enumerate(evs):
        p = r.get("process")
        if r.get("type") == "invoke":
            row = [p, r.get("f"), r.get("key"), r["t"], -1, "open", _vtext(r.get("value")), i + 1,
                   1 if i + 1 in bad else 0]
            open_[p] = row
            rows.append(row)
        else:
            row = open_.pop(p, None)
            if row is None:
                continue
            row[4] = r["t"]
            row[5] = r.get("type")
            if r.get("f") == "get" and r.get("type") == "ok":
                row[6] = _vtext(r.get("value"))
    return {"procs": sorted(set(r[0] for r in rows)), "rows": rows,
            "linearizable": res["linearizable"], "key": res.get("key"),
            "unorderable": sorted(bad)}


def _vtext(v):
    if v is None:
        return ""
    if isinstance(v, list):
        return "%s -> %s" % ("absent" if v[0] is None else v[0], v[1])
    return str(v)


def _net_density(recs, t1):
    """Datagrams between nodes per bucket, forwarded and lost (dropped or
    cut by a partition), from the fault proxy's running totals; None
    without a proxy."""
    net = [r for r in recs if r.get("kind") == "net"]
    if len(net) < 2:
        return None
    # Totals come with the status polls (0.1 s apart or more): a bucket of
    # twice the mean gap between them never shows empty columns between.
    gap = (net[-1]["t"] - net[0]["t"]) / (len(net) - 1)
    bucket = max(1, int(t1 // 1000), int(2 * gap))
    n = int(t1 // bucket) + 1
    sent, lost = [0] * n, [0] * n
    prev = net[0]
    for r in net[1:]:
        b = min(n - 1, int(r["t"] // bucket))
        f = r.get("forwarded", 0) - prev.get("forwarded", 0)
        ls = (r.get("dropped", 0) + r.get("cut", 0)) - (prev.get("dropped", 0) + prev.get("cut", 0))
        if f >= 0 and ls >= 0:  # a restarted proxy starts from 0: skip that step
            sent[b] += f + ls
            lost[b] += ls
        prev = r
    return {"bucket": bucket, "label": "datagrams", "sublabel": "via proxy / lost",
            "rows": ["proxy"], "sent": [sent], "lost": [lost]}


def _density(ops, t1):
    """Client ops completed per bucket (ok) and not (fail, info): the
    cluster's throughput and its failures, where the simulator shows
    datagrams."""
    bucket = max(1, int(t1 // 250))  # wide enough that a busy client fills each
    n = int(t1 // bucket) + 1
    done, bad = [0] * n, [0] * n
    for r in (ops or {}).get("rows", ()):
        if r[4] >= 0:
            b = min(n - 1, int(r[4] // bucket))
            if r[5] == "ok":
                done[b] += 1
            else:
                bad[b] += 1
    return {"bucket": bucket, "label": "client ops", "sublabel": "ok / fail+info",
            "rows": ["clients"], "sent": [done], "lost": [bad]}
