"""Metrics with etcd-style names, in the Prometheus text exposition format (0.0.4).

Host-only (CPython): nothing here ships on a board. Two sources feed the
same families, so a dashboard works for CPython nodes and boards alike:

  - a node's status dict (raftio.engine.Engine.status(), what the
    authenticated status protocol returns): gauges and the counters the
    engine keeps (from_status); the node runtime (runtime.py) and the
    fleet exporter (exporter.py) both use it;
  - a counting observer on the engine (Counting): leader changes, elections,
    flash write latency, peer round trips, which a status poll cannot see
    between two polls.

Family names follow etcd's (etcd_server_has_leader ->
mpraft_has_leader, etcd_server_leader_changes_seen_total ->
mpraft_leader_changes_seen_total, ...); every name is listed in NAMES with
its type and help, and docs/cloud.md describes each.
"""

# name -> (type, help). The Grafana dashboard test checks it uses only these.
NAMES = {
    "mpraft_up": ("gauge", "1 if the node answered the exporter's last status query"),
    "mpraft_has_leader": ("gauge", "1 if the node knows a leader"),
    "mpraft_is_leader": ("gauge", "1 if the node is the leader"),
    "mpraft_leader_changes_seen_total": ("counter", "Leader changes this node has seen"),
    "mpraft_elections_total": ("counter", "Campaigns this node started (pre-vote included)"),
    "mpraft_term": ("gauge", "Current term"),
    "mpraft_commit_index": ("gauge", "Highest log index known committed"),
    "mpraft_applied_index": ("gauge", "Highest log index applied to the state machine"),
    "mpraft_proposals_committed_total": ("counter", "Log entries committed and applied here"),
    "mpraft_proposals_pending": ("gauge", "Proposals waiting to be applied (leader only)"),
    "mpraft_proposals_failed_total": ("counter", "Client requests refused or lost, by reason"),
    "mpraft_snapshots_total": ("counter", "Snapshots this node took"),
    "mpraft_datagrams_dropped_total": ("counter", "Datagrams dropped or failed, by reason"),
    "mpraft_flash_write_seconds": ("histogram",
                                   "Flash writes until durable (writes plus their flush)"),
    "mpraft_peer_round_trip_seconds": ("histogram",
                                       "Heartbeat to heartbeat response, leader to peer"),
    "mpraft_heap_used_bytes": ("gauge", "MicroPython heap in use after a collection"),
    "mpraft_heap_free_bytes": ("gauge", "MicroPython heap free after a collection"),
    "mpraft_uptime_seconds": ("gauge", "Seconds since the node started"),
    "mpraft_keys": ("gauge", "Keys in the key-value store"),
    "mpraft_voters": ("gauge", "Voting members in the node's configuration"),
    "mpraft_status_seconds": ("gauge", "Exporter: time the node took to answer its status query"),
    "process_resident_memory_bytes": ("gauge", "Resident memory of the node process"),
}

# Flash writes: a flush on a laptop SSD takes ~0.1 ms to tens of ms; a board's
# littlefs a few ms. Round trips on loopback ~0.1 ms, Wi-Fi ~2-50 ms.
FLASH_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
RTT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)

FAILED_REASONS = ("not_leader", "busy", "retry")


class Histogram:
    """Cumulative buckets as Prometheus wants them; observe() never allocates
    beyond the first call."""

    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last is +Inf
        self.sum = 0.0

    def observe(self, v):
        i = 0
        b = self.buckets
        while i < len(b) and v > b[i]:
            i += 1
        self.counts[i] += 1
        self.sum += v

    @property
    def count(self):
        return sum(self.counts)


class Family:
    """One metric family: samples (labels dict, value) or labelled histograms."""

    def __init__(self, name):
        if name not in NAMES:
            raise ValueError("metrics: %s is not a known metric (add it to NAMES)" % name)
        self.name = name
        self.type, self.help = NAMES[name]
        self.samples = []     # [(labels dict, value)]
        self.histograms = []  # [(labels dict, Histogram)]

    def add(self, labels, value):
        self.samples.append((labels, value))
        return self

    def add_histogram(self, labels, h):
        self.histograms.append((labels, h))
        return self


def _esc(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(d, extra=None):
    items = sorted(d.items())
    if extra is not None:
        items.append(extra)
    if not items:
        return ""
    return "{" + ",".join('%s="%s"' % (k, _esc(v)) for k, v in items) + "}"


def _num(v):
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def exposition(families):
    """The text exposition format: HELP and TYPE once per family, families
    merged by name (the exporter adds one family per node)."""
    merged = {}
    order = []
    for f in families:
        if f.name not in merged:
            merged[f.name] = Family(f.name)
            order.append(f.name)
        merged[f.name].samples.extend(f.samples)
        merged[f.name].histograms.extend(f.histograms)
    out = []
    for name in order:
        f = merged[name]
        if not f.samples and not f.histograms:
            continue
        out.append("# HELP %s %s" % (name, f.help))
        out.append("# TYPE %s %s" % (name, f.type))
        for labels, v in f.samples:
            out.append("%s%s %s" % (name, _labels(labels), _num(v)))
        for labels, h in f.histograms:
            acc = 0
            for i, le in enumerate(h.buckets):
                acc += h.counts[i]
                out.append("%s_bucket%s %d" % (name, _labels(labels, ("le", _num(float(le)))),
                                              acc))
            acc += h.counts[-1]
            out.append("%s_bucket%s %d" % (name, _labels(labels, ("le", "+Inf")), acc))
            out.append("%s_sum%s %s" % (name, _labels(labels), _num(h.sum)))
            out.append("%s_count%s %d" % (name, _labels(labels), acc))
    return "\n".join(out) + "\n"


def from_status(st, labels):
    """Families from one node's status dict (engine.status(), or the status
    protocol's JSON). Counters the engine keeps since boot (they restart at
    0 with the process, which Prometheus' rate() handles)."""
    fams = []

    def g(name, v):
        fams.append(Family(name).add(labels, v))

    lead = st.get("leader", 0)
    g("mpraft_has_leader", 1 if lead else 0)
    g("mpraft_is_leader", 1 if st.get("role") == "leader" else 0)
    g("mpraft_term", st.get("term", 0))
    g("mpraft_commit_index", st.get("commit", 0))
    g("mpraft_applied_index", st.get("applied", 0))
    g("mpraft_proposals_committed_total", st.get("n_applied", 0))
    if "pending" in st:
        g("mpraft_proposals_pending", st["pending"])
    f = Family("mpraft_proposals_failed_total")
    for r in FAILED_REASONS:
        f.add(dict(labels, reason=r), st.get("n_" + r, 0))
    fams.append(f)
    g("mpraft_snapshots_total", st.get("n_snapshots", 0))
    f = Family("mpraft_datagrams_dropped_total")
    for r, v in sorted(st.get("drops", {}).items()):
        f.add(dict(labels, reason=r), v)
    fams.append(f)
    if "heap_used" in st:
        g("mpraft_heap_used_bytes", st["heap_used"])
        g("mpraft_heap_free_bytes", st.get("heap_free", 0))
    g("mpraft_uptime_seconds", st.get("uptime_ms", 0) / 1000.0)
    if "keys" in st:
        g("mpraft_keys", st["keys"])
    g("mpraft_voters", len(st.get("voters", ())))
    return fams


class Counting:
    """The counting observer: what a status poll cannot see between two polls.

    Fed with events in the shape of raft.events.to_dict ({"event": "leader",
    "term": 5, "lead": 3, ...}) by the runtime, plus the timings the host
    runtime measures (flash writes, heartbeat round trips)."""

    def __init__(self):
        self.leader_changes = 0
        self.elections = 0
        self._lead = 0
        self.flash = Histogram(FLASH_BUCKETS)
        self.rtt = {}  # peer id -> Histogram

    def event(self, d):
        kind = d.get("event")
        if kind == "leader" or (kind == "role" and "lead" in d):
            lead = d.get("lead", 0)
            # etcd counts a change to a new known leader, not the loss of one.
            if lead and lead != self._lead:
                self.leader_changes += 1
            self._lead = lead
        elif kind == "election":
            self.elections += 1

    def round_trip(self, peer, seconds):
        h = self.rtt.get(peer)
        if h is None:
            h = self.rtt[peer] = Histogram(RTT_BUCKETS)
        h.observe(seconds)

    def families(self, labels):
        fams = [Family("mpraft_leader_changes_seen_total").add(labels, self.leader_changes),
                Family("mpraft_elections_total").add(labels, self.elections),
                Family("mpraft_flash_write_seconds").add_histogram(labels, self.flash)]
        f = Family("mpraft_peer_round_trip_seconds")
        for p in sorted(self.rtt):
            f.add_histogram(dict(labels, peer=str(p)), self.rtt[p])
        fams.append(f)
        return fams
