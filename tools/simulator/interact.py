"""Data-driven interaction scripts for the pure Raft core (etcd raft testdata style).

    python3 tools/simulator/interact.py host_tests/testdata/election.txt [more.txt ...] [--rewrite]
    micropython tools/simulator/interact.py host_tests/testdata/election.txt

A script is a list of commands, each followed by a line `----` and the
output it must print, ending at a blank line. Lines starting with `#` are
comments. Without --rewrite the outputs are checked (exit status 1 and the
first differences on a mismatch); with --rewrite the file is rewritten with
the actual outputs (review the diff before committing it).

Commands (ids are node numbers, 1..N):
  add-nodes N [election=10 heartbeat=1 pre-vote=true check-quorum=true
               max-inflight=32 max-size=1300 max-entry=1024 ring=1024 seed=1]
  campaign ID | transfer-leader FROM TO | propose ID DATA | read-index ID CTX
  tick N [ID ...]      tick every live node (or those listed) N times, no delivery
  run N                N steps: deliver what is in flight, then tick everybody
  deliver [N]          deliver the messages in flight (or the first N), printing each
  deliver-to ID        deliver only the in-flight messages addressed to ID
  drop-to ID           discard the in-flight messages addressed to ID
  stabilize [verbose]  deliver until quiet; verbose prints every message
  partition A B [| C D]   cut the groups apart (unlisted nodes form one more group)
  isolate ID | cut A B | heal | drop PERMILLE
  crash ID | restart ID
  set-log ID TERMS [term=T commit=C]   replace ID's disk, e.g. `set-log 3 1x5 2x20`
  status [ID] | log ID | entries ID | applied ID | stats
  and membership, snapshots and a hand-driven Ready loop: conf-change,
  conf, snapshot, compact, manual, ready, persist, send, apply
  (tools/simulator/interact_conf.py)

After every command the script also prints role/term/leader changes and
new read states, so the output shows what happened, not only what was asked.
"""
import sys
sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

from raft import msg as M
from raft.core import ROLE_NAMES
from raft.errors import RaftError
from interact_conf import ConfCommands, ScriptError, _int
from raftnet import Net, fmt_entry, fmt_msg

SEP = "----"


_OPTS = {"election": "election_tick", "heartbeat": "heartbeat_tick", "pre-vote": "pre_vote",
         "check-quorum": "check_quorum", "max-inflight": "max_inflight",
         "max-size": "max_size_per_msg", "max-entry": "max_entry_bytes",
         "ring": "ring_capacity"}


def _terms(args):
    out = []
    for a in args:
        if "x" in a:
            t, n = a.split("x", 1)
            out += [_int(t, "term")] * _int(n, "count")
        else:
            out.append(_int(a, "term"))
    return out


class Interaction(ConfCommands):
    def __init__(self):
        self.net = None
        self.out = []
        self.rejects = 0
        self._seen = {}

    def p(self, s):
        self.out.append(s)

    def _need_net(self):
        if self.net is None:
            raise ScriptError("no nodes yet: start with add-nodes N")
        return self.net

    def _id(self, s):
        net = self._need_net()
        i = _int(s, "node id")
        if i not in net.nodes:
            raise ScriptError("no node %d (nodes are %r)" % (i, net.ids))
        return i

    def _on_ready(self, i, rd):
        for m in rd.messages + rd.persisted_messages:
            if m.type == M.APP_RESP and m.reject:
                self.rejects += 1

    def _trace_out(self, verbose):
        net = self.net
        t = net.trace
        net.trace = []
        if verbose:
            for kind, m in t:
                self.p(("  " if kind == "deliver" else "  dropped ") + fmt_msg(m))
        return t

    def _changes(self):
        net = self.net
        if net is None:
            return
        for i in net.ids:
            r = net.raft(i)
            if not net.up[i]:
                self._seen[i] = None
                continue
            now = (r.role, r.term, r.lead)
            old = self._seen.get(i)
            if old != now:
                self.p("%d: %s term=%d lead=%d" % (i, ROLE_NAMES[r.role], r.term, r.lead))
                self._seen[i] = now
            rs = net.read_states[i]
            for idx, ctx in rs:
                self.p("%d: read-state ctx=%d index=%d" % (i, ctx, idx))
            del rs[:]

    def run(self, line):
        self.out = []
        w = line.split()
        cmd = w[0]
        args = w[1:]
        fn = getattr(self, "c_" + cmd.replace("-", "_"), None)
        if fn is None:
            raise ScriptError("unknown command %r" % cmd)
        try:
            fn(args)
        except RaftError as e:
            self.p("error: %s %s" % (type(e).__name__, e.args[0] if e.args else ""))
        if self.net is not None:
            self.net.drive_all()
            self._trace_out(False)
        self._changes()
        if not self.out:
            self.out.append("ok")
        return self.out

    # -- commands ------------------------------------------------------------
    def c_add_nodes(self, args):
        if not args:
            raise ScriptError("add-nodes N [key=value ...]")
        n = _int(args[0], "N")
        kw = {}
        seed = 1
        voters = 0
        for a in args[1:]:
            if "=" not in a:
                raise ScriptError("option %r is not key=value" % a)
            k, v = a.split("=", 1)
            if k == "seed":
                seed = _int(v, k)
            elif k == "voters":
                voters = _int(v, k)
            elif k in _OPTS:
                if v in ("true", "false"):
                    kw[_OPTS[k]] = v == "true"
                else:
                    kw[_OPTS[k]] = _int(v, k)
            else:
                raise ScriptError("unknown option %r (choose from seed, voters, %s)"
                                  % (k, ", ".join(sorted(_OPTS))))
        self.net = Net(n, seed=seed, **kw)
        if voters:
            self._newcomers(voters)
        self.net.trace = []
        self.net.on_ready = self._on_ready
        self._seen = {}
        for i in self.net.ids:
            r = self.net.raft(i)
            self._seen[i] = (r.role, r.term, r.lead)
        c = self.net.config(1)
        self.p("nodes 1..%d election=%d heartbeat=%d pre-vote=%s check-quorum=%s" % (
            n, c.election_tick, c.heartbeat_tick, str(c.pre_vote).lower(),
            str(c.check_quorum).lower()))
        for i in self.net.ids:
            self.p("%d: election timeout %d" % (i, self.net.raft(i).randomized_election_timeout))

    def c_campaign(self, args):
        i = self._id(args[0])
        self.net.nodes[i].campaign()
        self.net.drive(i)

    def c_transfer_leader(self, args):
        a = self._id(args[0])
        b = self._id(args[1])
        self.net.nodes[a].transfer_leader(b)
        self.net.drive(a)

    def c_propose(self, args):
        if len(args) != 2:
            raise ScriptError("propose ID DATA")
        i = self._id(args[0])
        idx = self.net.propose(i, args[1].encode())
        self.p("%d: proposed index %d" % (i, idx))

    def c_read_index(self, args):
        i = self._id(args[0])
        self.net.nodes[i].read_index(_int(args[1], "ctx"))
        self.net.drive(i)

    def c_tick(self, args):
        n = _int(args[0], "N") if args else 1
        ids = [self._id(a) for a in args[1:]] or None
        self._need_net().tick(n, ids)

    def c_run(self, args):
        self._need_net().run(_int(args[0], "N") if args else 1)

    def c_deliver(self, args):
        net = self._need_net()
        net.drive_all()
        self._trace_out(False)
        net.deliver(_int(args[0], "N") if args else 100000)
        self._trace_out(True)

    def c_deliver_to(self, args):
        net = self._need_net()
        i = self._id(args[0])
        net.drive_all()
        self._trace_out(False)
        keep = [m for m in net.queue if m.to != i]
        net.queue = [m for m in net.queue if m.to == i]
        net.deliver()
        net.queue = keep + net.queue
        self._trace_out(True)

    def c_drop_to(self, args):
        net = self._need_net()
        i = self._id(args[0])
        net.drive_all()
        for m in net.queue:
            if m.to == i:
                self.p("  dropped " + fmt_msg(m))
        net.queue = [m for m in net.queue if m.to != i]

    def c_stabilize(self, args):
        net = self._need_net()
        d0 = net.delivered
        x0 = net.dropped
        r0 = net.stabilize(500)
        t = self._trace_out(bool(args and args[0] == "verbose"))
        self.p("stable after %d rounds: %d delivered, %d dropped" % (
            r0, net.delivered - d0, net.dropped - x0))
        return t

    def c_partition(self, args):
        groups = [[]]
        for a in args:
            if a == "|":
                groups.append([])
            else:
                groups[-1].append(self._id(a))
        self.net.partition(*groups)

    def c_isolate(self, args):
        self.net.isolate(self._id(args[0]))

    def c_cut(self, args):
        self.net.cut(self._id(args[0]), self._id(args[1]))

    def c_heal(self, args):
        self._need_net().recover()

    def c_drop(self, args):
        self._need_net().drop = _int(args[0], "per mille")

    def c_crash(self, args):
        i = self._id(args[0])
        self.net.crash(i)
        self.p("%d: crashed" % i)

    def c_restart(self, args):
        i = self._id(args[0])
        self.net.restart(i)
        r = self.net.raft(i)
        self.p("%d: restarted term=%d vote=%d commit=%d last=%d" % (
            i, r.term, r.vote, r.log.committed, r.log.last))

    def c_set_log(self, args):
        i = self._id(args[0])
        terms = []
        kw = {}
        for a in args[1:]:
            if "=" in a:
                k, v = a.split("=", 1)
                if k not in ("term", "commit", "vote"):
                    raise ScriptError("set-log options are term=, vote=, commit=")
                kw[k] = _int(v, k)
            else:
                terms += _terms([a])
        self.net.set_log(i, terms, **kw)
        self._status(i)

    def _status(self, i):
        net = self.net
        if not net.up[i]:
            self.p("%d: down" % i)
            return
        r = net.raft(i)
        log = r.log
        s = "%d: %s term=%d vote=%d lead=%d commit=%d applied=%d last=%d" % (
            i, ROLE_NAMES[r.role], r.term, r.vote, r.lead, log.committed, log.applied,
            log.last)
        self.p(s)
        if r.role == 2:
            for p in r.peers:
                if p != i:
                    self.p("   %d: %r" % (p, r.prs[p]))

    def c_status(self, args):
        net = self._need_net()
        for i in [self._id(a) for a in args] or net.ids:
            self._status(i)

    def c_log(self, args):
        """Runs of terms: `1..5 t1 | 6..35 t4`."""
        i = self._id(args[0])
        ents = self.net.log_of(i)
        runs = []
        for idx, t, _ in ents:
            if runs and runs[-1][2] == t:
                runs[-1][1] = idx
            else:
                runs.append([idx, idx, t])
        r = self.net.raft(i) if self.net.up[i] else None
        head = "%d: commit=%d " % (i, r.log.committed) if r else "%d: (down) " % i
        self.p(head + (" | ".join("%d..%d t%d" % tuple(x) for x in runs) or "empty"))

    def c_entries(self, args):
        i = self._id(args[0])
        st = self.net.storages[i]
        lo = st.first_index()
        hi = st.last_index()
        ents = st.entries(lo, hi + 1, 0) if hi >= lo else []
        line = []
        for e in ents:
            line.append(fmt_entry(e))
            if len(line) == 8:
                self.p(" ".join(line))
                line = []
        if line or not ents:
            self.p(" ".join(line) or "empty")

    def c_applied(self, args):
        i = self._id(args[0])
        ds = self.net.data_applied(i)
        self.p("%d: applied %s" % (i, " ".join(d.decode() for d in ds) or "nothing"))

    def c_stats(self, args):
        net = self._need_net()
        self.p("sent=%d delivered=%d dropped=%d app-rejects=%d" % (
            net.sent, net.delivered, net.dropped, self.rejects))


def run_text(text, name="script"):
    """Run a script; returns (rewritten text, list of mismatch descriptions)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    bad = []
    it = Interaction()
    k = 0
    n = len(lines)
    while k < n:
        line = lines[k]
        k += 1
        at = k
        if not line.strip():
            if out and out[-1] != "":
                out.append("")
            continue
        if line.startswith("#"):
            out.append(line)
            continue
        expected = None
        if k < n and lines[k] == SEP:
            k += 1
            expected = []
            while k < n and lines[k].strip():
                expected.append(lines[k])
                k += 1
            if k < n:
                k += 1      # the blank line ending the block
        try:
            got = it.run(line.strip())
        except ScriptError as e:
            got = ["script error: %s" % e]
        out.append(line)
        out.append(SEP)
        out.extend(got)
        out.append("")
        if expected != got:
            bad.append((name, at, line, expected, got))
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n", bad


def _report(b):
    name, at, line, expected, got = b
    print("%s:%d: mismatch for command: %s" % (name, at, line))
    print("  expected:")
    for s in expected or ["<nothing>"]:
        print("    " + s)
    print("  got:")
    for s in got:
        print("    " + s)


def main(argv):
    rewrite = "--rewrite" in argv
    files = [a for a in argv if a != "--rewrite"]
    if not files or [a for a in files if a.startswith("-")]:
        print("usage: interact.py FILE [FILE ...] [--rewrite]")
        return 2
    status = 0
    for f in files:
        with open(f) as fh:
            text = fh.read()
        new, bad = run_text(text, f)
        if rewrite:
            if new != text:
                with open(f, "w") as fh:
                    fh.write(new)
                print("%s: rewritten (%d blocks changed)" % (f, len(bad)))
            else:
                print("%s: unchanged" % f)
        elif bad:
            status = 1
            for b in bad[:3]:
                _report(b)
            print("%s: %d of the commands differ; rerun with --rewrite to accept" % (f, len(bad)))
        else:
            print("%s: ok" % f)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
