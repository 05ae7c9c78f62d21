"""Structured recording of a simulator run, for the timeline page.

    rec = SimRecorder(sim)   # sim.rec = rec; sim.step() calls rec.end_step()
    ...
    data = rec.data(summary) # plain dict, see docs/timeline.md; page.write(path, data)

The recorder only observes: it reads node state after every step, taps the
network's send to count datagrams, and takes the marks the simulator makes
when it injects a fault. It draws no random number and changes no state, so
a run's digest is the same with and without it (host_tests check it on
CPython and MicroPython). Nothing of it exists when sim.rec is None.

What is kept, and how big runs stay small:
  - role spans per node: one record per change of (role, term), so their
    number is the number of elections, crashes and membership changes;
  - commit and applied index per node: at most one point per `res` steps
    (the last value in that window), res = steps // 2500;
  - datagrams: counted per sender in buckets of `bucket` steps (sent and
    lost), and kept one by one only for the rare kinds that explain an
    election or a catch-up (votes, pre-votes, their answers, TimeoutNow,
    the first chunk of a snapshot), at most _MAX_MSGS of them;
  - client ops: the step of each history event, 4 bytes each.
Portable: runs wherever the simulator does. Where the heap runs out (a long
run under MicroPython) recording stops and the page says at which step; the
run goes on unchanged.
"""
import gc
from array import array

from raft import events as EV
from raft.roles import CANDIDATE, LEADER, PRE_CANDIDATE

# Role codes of a span; the first four are raft.roles' numbers.
ROLES = ("follower", "candidate", "leader", "pre-candidate", "learner", "down", "removed")
_LEARNER = 4
_DOWN = 5
_REMOVED = 6

# Message types of raft.msg, by number, for the page's legend.
MSG_TYPES = ("?", "app", "app_resp", "vote", "vote_resp", "prevote", "prevote_resp",
             "heartbeat", "heartbeat_resp", "snap", "snap_resp", "read_index",
             "read_index_resp", "timeout_now")
# Kept one by one: votes and pre-votes with their answers, TimeoutNow, snapshots.
_KEEP = (3, 4, 5, 6, 9, 13)
_SNAP = 9
_MAX_MSGS = 20000
_CLIENT_BASE = 1000
_PAYLOAD = 7   # raftio.frame.HEADER: the Raft message starts there
# raft.msg's header (<BBHHIIIIIIIH) from there: flags at 1, to at 2, term at
# 6, index at 14, hint (a snapshot chunk's offset) at 22; 36 bytes in all.

_CHUNK = 64
# MicroPython: recording stops when less than this is free after a collection.
_MIN_FREE = 640 * 1024
try:
    import sys
    _MICROPYTHON = sys.implementation.name == "micropython"
except AttributeError:
    _MICROPYTHON = False


class Rows:
    """An append-only list kept in chunks of _CHUNK: MicroPython's heap does
    not compact, and a list that keeps doubling soon needs a contiguous block
    the simulator's churn has broken up. page.py writes the chunks as one
    JSON list; list(rows) is the plain list."""

    def __init__(self):
        self.chunks = [[]]
        self.n = 0

    def append(self, x):
        c = self.chunks[-1]
        if len(c) == _CHUNK:
            c = []
            self.chunks.append(c)
        c.append(x)
        self.n += 1

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        # The last two only (what the recorder revisits).
        c = self.chunks[-1]
        if i == -1:
            return c[-1]
        if i == -2 and len(c) < 2:
            return self.chunks[-2][-1]
        return c[i]

    def __setitem__(self, i, x):
        if i != -1:
            raise IndexError("Rows: only the last item can be replaced")
        self.chunks[-1][-1] = x

    def __iter__(self):
        for c in self.chunks:
            for x in c:
                yield x


class Packed:
    """Rows of `width` ints packed into fixed arrays of _CHUNK rows: 4 bytes
    an int where a tuple costs a heap block each (MicroPython's heap is what
    bounds a recorded run there). Iterating yields lists."""

    def __init__(self, width):
        self.w = width
        self.chunks = []
        self.n = 0

    def append(self, row):
        i = self.n % _CHUNK
        if i == 0:
            self.chunks.append(array("i", [0] * (_CHUNK * self.w)))
        self._put(self.n, row)
        self.n += 1

    def _put(self, j, row):
        c = self.chunks[j // _CHUNK]
        o = (j % _CHUNK) * self.w
        for k in range(self.w):
            c[o + k] = row[k]

    def __len__(self):
        return self.n

    def _row(self, j):
        c = self.chunks[j // _CHUNK]
        o = (j % _CHUNK) * self.w
        return [c[o + k] for k in range(self.w)]

    def __getitem__(self, i):
        if not -self.n <= i < 0:
            raise IndexError("Packed: only negative indexes")
        return self._row(self.n + i)

    def __setitem__(self, i, row):
        if not -self.n <= i < 0:
            raise IndexError("Packed: only negative indexes")
        self._put(self.n + i, row)

    def __iter__(self):
        for j in range(self.n):
            yield self._row(j)


def _flat(x):
    # Plain lists all the way down, as the page's JSON reads back.
    if isinstance(x, (Rows, Packed, list, tuple)):
        return [_flat(y) for y in x]
    return x


SNAP_TAKEN = 0
SNAP_INSTALLED = 1
SNAP_SENT = 2


def _u16(b, o):
    return b[o] | b[o + 1] << 8


def _u32(b, o):
    return b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24


class SimRecorder:
    # The engines report events up to this level to event() (pre-votes are DEBUG).
    EVENT_LEVEL = EV.DEBUG

    def __init__(self, sim):
        self.sim = sim
        steps = sim.opts.get("steps", 0)
        self.res = max(1, steps // 2500)
        self.bucket = max(1, steps // 1000)
        ids = sim.ids
        self.ids = ids
        self.row = {}
        for k, i in enumerate(ids):
            self.row[i] = k
        n = len(ids)
        self.spans = [Rows() for _ in range(n)]  # [start, end, role, term]
        self.index = [Packed(3) for _ in range(n)]  # [step, commit, applied]
        self.last = [None] * n                   # (role, term)
        self.last_vote = [None] * n              # (term, vote)
        self.last_snaps = [0] * n                # engine.stats["snapshots"]
        self.elections = Packed(4)   # [step, node, term, pre-vote]
        self.votes = Packed(5)       # [step, voter, candidate, term, pre-vote]
        self.msgs = Packed(7)        # [step, from, to, type, flags, term, lost]
        self.msgs_capped = 0
        self.snaps = Packed(5)       # [step, node, kind, index, peer]
        self.marks = Rows()
        self.faults = []                         # [start, end, kind, nodes, text]
        self._open_fault = None
        self.confs = []
        self._conf_seen = 0
        # Datagram counts per bucket: rows are the nodes then the clients,
        # sized once here, while the heap is still whole.
        nb = steps // self.bucket + 2
        self.sent = [[0] * nb for _ in range(n + 1)]
        self.lost = [[0] * nb for _ in range(n + 1)]
        self.op_steps = Rows()
        self.stopped = 0   # the step where the heap ran out (0: recording)
        self._tap(sim.net)

    # -- taps and marks -------------------------------------------------------
    def _tap(self, net):
        send = net.send
        rec = self

        def tapped(now, frm, to, payload):
            d = net.dropped
            send(now, frm, to, payload)
            if not rec.stopped:
                try:
                    rec._count(now, frm, to, payload, net.dropped != d)
                except MemoryError:
                    rec._stop()
        net.send = tapped

    def _stop(self):
        # Out of heap: keep what we have, record no more.
        self.stopped = self.sim.now or 1

    def _count(self, now, frm, to, payload, lost):
        r = self.row.get(frm, len(self.ids)) if frm < _CLIENT_BASE else len(self.ids)
        b = now // self.bucket
        s = self.sent[r]
        while len(s) <= b:
            s.append(0)
        s[b] += 1
        if lost:
            ls = self.lost[r]
            while len(ls) <= b:
                ls.append(0)
            ls[b] += 1
        if frm >= _CLIENT_BASE or to >= _CLIENT_BASE or len(payload) < _PAYLOAD + 36:
            return
        t = payload[_PAYLOAD]
        if t not in _KEEP:
            return
        if t == _SNAP and _u32(payload, _PAYLOAD + 22) != 0:
            return  # later chunks of a snapshot: counted above
        if len(self.msgs) >= _MAX_MSGS:
            self.msgs_capped += 1
            return
        self.msgs.append((now, frm, to, t, payload[_PAYLOAD + 1],
                          _u32(payload, _PAYLOAD + 6), 1 if lost else 0))
        if t == _SNAP:
            self.snaps.append((now, frm, SNAP_SENT, _u32(payload, _PAYLOAD + 14),
                               _u16(payload, _PAYLOAD + 2)))

    def mark(self, kind, node=0, text=""):
        """An instant the simulator made happen: crash, power cut, restart..."""
        if not self.stopped:
            try:
                self.marks.append([self.sim.now, kind, node, text])
            except MemoryError:
                self._stop()

    def fault_begin(self, kind, nodes, text):
        """A fault that lasts until fault_end (partitions: one at a time)."""
        self.fault_end()
        self._open_fault = [self.sim.now, -1, kind, list(nodes), text]

    def fault_end(self):
        f = self._open_fault
        if f is not None:
            f[1] = self.sim.now
            self.faults.append(f)
            self._open_fault = None

    def event(self, node, ev):
        """An engine's event (raft/events.py): what polling cannot see. A
        pre-vote leaves no trace in the node's state, so only its event
        tells who granted one; real votes, roles and snapshots are read
        from the state after each step."""
        if ev[0] == EV.VOTE and ev[3] and not self.stopped:
            try:
                self.votes.append((self.sim.now, node.id, ev[2], ev[1], 1))
            except MemoryError:
                self._stop()

    def snap_installed(self, node, index):
        if not self.stopped:
            try:
                self.snaps.append((self.sim.now, node.id, SNAP_INSTALLED, index, 0))
            except MemoryError:
                self._stop()

    # -- after every step -------------------------------------------------------
    def end_step(self):
        if not self.stopped:
            try:
                self._end_step()
            except MemoryError:
                self._stop()

    def _end_step(self):
        sim = self.sim
        if _MICROPYTHON and sim.now & 127 == 0:
            # The simulator needs the heap more than the page does: stop
            # recording while it still has room (collecting changes nothing
            # in the run).
            gc.collect()
            if gc.mem_free() < _MIN_FREE:
                self._stop()
                return
        now = sim.now
        res = self.res
        for k, i in enumerate(self.ids):
            n = sim.nodes[i]
            if not n.up:
                self._role(k, now, _DOWN, -1)
                continue
            eng = n.engine
            r = eng.core
            role = r.role
            if i in r.learners:
                role = _LEARNER
            elif i not in r.voters:
                role = _REMOVED
            term = r.term
            self._role(k, now, role, term)
            if r.vote and self.last_vote[k] != (term, r.vote):
                self.last_vote[k] = (term, r.vote)
                self.votes.append((now, i, r.vote, term, 0))
            log = r.log
            pts = self.index[k]
            c = log.committed
            a = log.applied
            if not pts or pts[-1][1] != c or pts[-1][2] != a:
                if pts and now - pts[-1][0] < res and len(pts) > 1 and \
                        pts[-2][0] // res == now // res:
                    pts[-1] = (now, c, a)
                else:
                    pts.append((now, c, a))
            s = eng.stats["snapshots"]
            if s != self.last_snaps[k]:
                self.last_snaps[k] = s
                self.snaps.append((now, i, SNAP_TAKEN, a, 0))
        ck = sim.checker
        if ck.conf_changes != self._conf_seen:
            self._conf_seen = ck.conf_changes
            c = ck.confs[-1]
            self.confs.append([now, c[0], list(c[1]), list(c[2])])
        wl = sim.workload
        if wl is not None and hasattr(wl, "history"):  # the lock clients keep none
            h = wl.history
            st = self.op_steps
            while len(st) < len(h):
                st.append(now)

    def _role(self, k, now, role, term):
        cur = (role, term)
        if self.last[k] == cur:
            return
        prev = self.last[k]
        self.last[k] = cur
        sp = self.spans[k]
        if sp:
            sp[-1][1] = now
        sp.append([now, -1, role, term])
        if role == PRE_CANDIDATE or (role == CANDIDATE and
                                     (prev is None or prev != (CANDIDATE, term))):
            self.elections.append((now, self.ids[k], term, 1 if role == PRE_CANDIDATE else 0))

    # -- the result -------------------------------------------------------------
    def data(self, summary, command="", flat=True):
        """The timeline of the run so far as a plain dict (docs/timeline.md);
        flat=False leaves the long lists as Rows, which page.write streams."""
        sim = self.sim
        now = self.stopped or sim.now
        for sp in self.spans:
            if sp:
                sp[-1][1] = now
        faults = list(self.faults)
        if self._open_fault is not None:
            f = list(self._open_fault)
            f[1] = now
            faults.append(f)
        out = {"version": 1, "source": "sim", "unit": "tick", "t0": 0, "t1": now,
               "title": "simulator seed %d" % sim.opts["seed"],
               "command": command, "nodes": list(self.ids), "roles": list(ROLES),
               "spans": self.spans, "elections": self.elections, "votes": self.votes,
               "leaders": _leaders(self.ids, self.spans),
               "msg_types": list(MSG_TYPES), "msgs": self.msgs,
               "msgs_capped": self.msgs_capped,
               "index": self.index, "snaps": self.snaps, "confs": self.confs,
               "faults": faults, "marks": self.marks,
               "density": {"bucket": self.bucket,
                           "rows": ["node %d" % i for i in self.ids] + ["clients"],
                           "sent": self.sent, "lost": self.lost},
               "violations": [[_step_of(v, now), v] for v in summary.get("violations", ())],
               "meta": _meta(summary)}
        if self.stopped:
            out["meta"].append(["recording", "stopped at step %d: out of memory" % self.stopped])
        if sim.trace_on:
            tr = []
            for line in sim.trace:
                sp = line.find(" ")
                tr.append([int(line[:sp]), line[sp + 1:]])
            out["trace"] = tr
        wl = sim.workload
        if wl is not None and hasattr(wl, "history"):
            out["ops"] = _ops(wl, self.op_steps, now, summary)
        if flat:
            for k in ("spans", "elections", "votes", "msgs", "index", "snaps", "marks"):
                out[k] = _flat(out[k])
            if "ops" in out:
                out["ops"]["rows"] = _flat(out["ops"]["rows"])
        return out


def _leaders(ids, spans):
    """[start, end, node, term] of every leader span, oldest first."""
    out = []
    for k, sp in enumerate(spans):
        for s in sp:
            if s[2] == LEADER:
                out.append([s[0], s[1], ids[k], s[3]])
    out.sort()
    return out


def _step_of(v, default):
    # Checker violations read "step N: what".
    if v.startswith("step "):
        try:
            return int(v[5:v.find(":")])
        except ValueError:
            pass
    return default


_META = ("seed", "nodes", "steps", "faults", "commits", "elections", "crashes",
         "partitions", "power_cuts", "snapshots_installed", "messages", "dropped",
         "digest", "clients", "reads", "ops", "linearizable", "exactly_once")


def _meta(summary):
    out = []
    for k in _META:
        if k in summary:
            out.append([k, summary[k]])
    return out


def _ops(wl, steps, now, summary):
    """Client operations from the workload's history: one row per op,
    [process, f, key, invoke step, completion step or -1, outcome, value,
    invoke line, unorderable 0/1]; outcomes as in lincheck (ok, fail, info)."""
    h = wl.history
    bad = {}
    for line in getattr(wl, "unorderable", None) or ():
        bad[line] = 1
    rows = Rows()
    open_ = {}
    it = iter(steps)
    for i in range(len(h)):
        ev = h.event(i)
        try:
            t = next(it)
        except StopIteration:
            t = now  # closed by the summary, after the last step
        p = ev["process"]
        if ev["type"] == "invoke":
            v = ev.get("value")
            row = [p, ev["f"], ev["key"], t, -1, "open", _vtext(v), i + 1,
                   bad.get(i + 1, 0)]
            open_[p] = row
            rows.append(row)
        else:
            row = open_.pop(p, None)
            if row is None:
                continue
            row[4] = t
            row[5] = ev["type"]
            if ev["f"] == "get" and ev["type"] == "ok":
                row[6] = _vtext(ev.get("value"))
    return {"procs": sorted(set(r[0] for r in rows)), "rows": rows,
            "linearizable": summary.get("linearizable"),
            "key": summary.get("lincheck_key"),
            "unorderable": sorted(bad)}


def _vtext(v):
    if v is None:
        return ""
    if isinstance(v, list):
        return "%s -> %s" % ("absent" if v[0] is None else v[0], v[1])
    return str(v)
