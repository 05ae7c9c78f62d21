"""Deterministic cluster simulator for the pure Raft core.

    python3 tools/simulator/sim.py --nodes 5 --seed 7 --steps 20000 --faults all
    micropython tools/simulator/sim.py --nodes 5 --seed 7 --steps 20000 --faults all

One step is one tick for every live node. Messages travel as encoded bytes
through a faulty network (simnet.py). After every step the checker
(simcheck.py) verifies the Raft safety properties. The last line printed is
a JSON summary; the exit status is 0 iff there was no violation. On a
violation the simulator shrinks the fault set and prints a reproducing
command and the trace of the shortest run it found.
"""
import sys
sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import gc
import json

from raft import confchange as CC
from raft import msg as M
from raft.core import LEADER
from raft.errors import DecodeError, RaftError
# A board imports these on first use (docs/memory.md); every simulated node
# shares this VM, whose heap is nearly full mid-run, where compiling a
# module from source can fail: load them up front.
from raft import membership, snapshot  # noqa: F401
from raftio import admin  # noqa: F401
from raftio.fakeflash import PowerCut
from raftio.frame import HEADER, TAG_LEN
from simcheck import Checker
from simnet import Network, Rand
from simnode import CLIENT_BASE, TICK_MS, SimClock, SimNode

FAULTS = ("drop", "dup", "reorder", "partition", "crash", "leader", "powercut")
# Opt-in faults: not part of "all", so existing seeds keep their digests.
# reconfig: the leader removes a voter (keeping at least 3) or adds a removed
# node back as a learner and promotes it once it caught up; or, in one joint
# change (thesis 4.3): replaces a voter by a node outside, adds two voters,
# removes two, or promotes a learner while demoting a voter.
# wipe: a node loses its whole flash (identity included) and restarts with
# its id as a new incarnation (docs/incarnation.md); every founder is then
# bound to an incarnation. Its numbers come from their own generator, so the
# other faults draw what they drew before.
EXTRA_FAULTS = ("reconfig", "wipe")
_OP_NAMES = ("?", "add-voter", "add-learner", "remove")

USAGE = ("usage: sim.py [--nodes N] [--seed S] [--steps K] [--faults all|none|LIST]\n"
         "              [--ring N] [--snap-every N] [--snap-keep N] [--batch-bytes N]\n"
         "              [--apply-bytes N]  (committed entries per Ready, 0: no limit)\n"
         "              [--election TICKS] [--quiet] [--trace] [--no-shrink]\n"
         "              [--clients N] [--check-linear] [--reads index|lease|local]\n"
         "              [--clock-start MS]  (first ticks_ms; default 50 s before the 2**30 wrap)\n"
         "              [--machine kv|lock]  (lock: the lock service, --clients N contend)\n"
         "              [--log files|raw]  (with powercut: the log in files or a raw NOR partition)\n"
         "              [--timeline OUT.html]  (the run as a page: tools/timeline/)\n"
         "  LIST is a comma list of: " + ",".join(FAULTS + EXTRA_FAULTS) + "\n"
         "  (all = " + ",".join(FAULTS) + "; e.g. --faults all,reconfig)")


class UsageError(Exception):
    pass


def parse_faults(s):
    if s == "all":
        return list(FAULTS)
    if s == "none" or s == "":
        return []
    out = []
    for f in s.split(","):
        f = f.strip()
        if f == "all":
            for g in FAULTS:
                if g not in out:
                    out.append(g)
            continue
        if f not in FAULTS and f not in EXTRA_FAULTS:
            raise UsageError("unknown fault %r; choose from all, none, %s"
                             % (f, ",".join(FAULTS + EXTRA_FAULTS)))
        if f not in out:
            out.append(f)
    return out


DEFAULTS = {"nodes": 5, "seed": 1, "steps": 1000, "faults": FAULTS, "ring": 64,
            "quiet": False, "trace": False, "shrink": True,
            "election": 10, "snap_every": 200, "snap_keep": 20,
            "batch_bytes": 1300, "apply_bytes": 256,
            "clients": 0, "check_linear": False, "reads": "index", "machine": "kv",
            "timeline": None, "clock_start": None, "log": "files"}


def parse_args(argv):
    opts = dict(DEFAULTS)
    opts["faults"] = list(FAULTS)
    ints = ("nodes", "seed", "steps", "ring", "election",
            "snap_every", "snap_keep", "batch_bytes", "apply_bytes", "clients", "clock_start")
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            raise UsageError("")
        if not a.startswith("--"):
            raise UsageError("unexpected argument %r" % a)
        key = a[2:].replace("-", "_")
        if key in ("quiet", "trace", "check_linear"):
            opts[key] = True
            i += 1
            continue
        if key == "no_shrink":
            opts["shrink"] = False
            i += 1
            continue
        if i + 1 >= len(argv):
            raise UsageError("%s needs a value" % a)
        v = argv[i + 1]
        if key in ints:
            try:
                opts[key] = int(v)
            except ValueError:
                raise UsageError("%s wants an integer, got %r" % (a, v))
        elif key == "faults":
            opts["faults"] = parse_faults(v)
        elif key == "timeline":
            opts["timeline"] = v
        elif key == "reads":
            if v not in ("index", "lease", "local"):
                raise UsageError("--reads takes index, lease or local, got %r" % v)
            opts["reads"] = v
        elif key == "machine":
            if v not in ("kv", "lock"):
                raise UsageError("--machine takes kv or lock, got %r" % v)
            opts["machine"] = v
        elif key == "log":
            if v not in ("files", "raw"):
                raise UsageError("--log takes files or raw, got %r" % v)
            opts["log"] = v
        else:
            raise UsageError("unknown option %s" % a)
        i += 2
    if not 1 <= opts["nodes"] <= 15:
        raise UsageError("--nodes must be in 1..15")
    if opts["steps"] < 0:
        raise UsageError("--steps must be >= 0")
    if opts["machine"] == "lock" and opts["clients"] < 1:
        raise UsageError("--machine lock needs --clients N (N >= 1)")
    return opts


class Sim:
    def __init__(self, opts):
        self.opts = opts
        self.rec = None  # a simrec.SimRecorder with --timeline
        self.rand = Rand(opts["seed"])
        self.ids = list(range(1, opts["nodes"] + 1))
        faults = opts["faults"]
        self.faults = faults
        # wipe: the founders' incarnations, and the generator of new ones
        # and of the wipes themselves (not forked from self.rand: the runs
        # without it draw the same numbers as before it existed).
        self.incs = {}
        self._wipe_rand = None
        self.wipes = 0
        if "wipe" in faults:
            self._wipe_rand = Rand(opts["seed"] * 7919 + 104729)
            for i in self.ids:
                self.incs[i] = self.new_inc()
        self.flash = "powercut" in faults
        self.net = Network(self.rand.fork(),
                           drop=50 if "drop" in faults else 0,
                           dup=30 if "dup" in faults else 0,
                           reorder=150 if "reorder" in faults else 0)
        # Optional client workload (tools/simulator/simkv.py): replaces clients() and
        # gives each node an application state machine.
        self.workload = None
        if opts["clients"] > 0:
            if opts.get("machine") == "lock":
                import simlock as wmod
            else:
                import simkv as wmod
            self.workload = wmod.Workload(self, opts["clients"], opts["reads"],
                                          self.rand.fork())
        # One clock for the whole cluster; a step is one tick of it.
        # (--clock-start: the first ticks_ms, e.g. a few seconds before the wrap.)
        self.clock = SimClock() if opts["clock_start"] is None else SimClock(opts["clock_start"])
        self.now = 0
        # Structured recording for the timeline page (tools/timeline/simrec.py),
        # before the nodes, which report their events to it: it only
        # observes, so the run (and its digest) is the same without it.
        if opts.get("timeline"):
            import simrec
            self.rec = simrec.SimRecorder(self)
        self.nodes = {}
        for i in self.ids:
            self.nodes[i] = SimNode(self, i)
        self.checker = Checker(self)
        self.trace = []
        self.trace_on = opts["trace"]
        self.proposed = 0
        self.next_value = 0
        self.heals = []          # (step, kind, detail) scheduled recoveries
        self.crashes = 0
        self.partitions = 0
        self.decode_errors = 0
        self.power_cuts = 0
        self.snapshots_installed = 0
        self.snap_every = opts["snap_every"]
        self.snap_keep = opts["snap_keep"]
        self._fault_rand = self.rand.fork()
        self._client_rand = self.rand.fork()
        # Membership (reconfig): forked last and only when used, so runs
        # without it draw the same numbers as before it existed.
        self.reconfigs = 0
        self.reconfig_refused = 0
        self.joint_proposed = 0
        self._conf_rand = self.rand.fork() if "reconfig" in faults else None

    def log(self, s):
        t = self.trace
        t.append("%d %s" % (self.now, s))
        if len(t) > 400:
            del t[:100]

    # -- running the nodes ----------------------------------------------------
    def run_node(self, n):
        """One turn of n's server loop (receive, tick, drive the engine), as
        a board runs it. A power cut mid-write stops the node."""
        try:
            n.server.run_once()
        except PowerCut:
            self.power_lost(n)

    def power_lost(self, n):
        n.up = False
        self.crashes += 1
        self.power_cuts += 1
        self.net.drop_for(n.id)
        self.log("power cut on %d mid-write" % n.id)
        if self.rec is not None:
            self.rec.mark("powercut", n.id, "power cut mid-write")
        self.heals.append((self.now + 5 + self._fault_rand.below(60), "restart", n.id))

    def deliver(self, pkt):
        _, _, frm, to, payload = pkt
        if to >= CLIENT_BASE:
            if self.workload is not None:
                self.workload.deliver(to - CLIENT_BASE, payload)
            return
        n = self.nodes.get(to)
        if n is None or not n.up or (frm, to) in self.net.blocked:
            return
        if self.trace_on and frm < CLIENT_BASE:
            try:
                self.log("deliver %r" % M.decode(payload[HEADER:len(payload) - TAG_LEN]))
            except DecodeError:
                self.log("deliver junk from %d to %d" % (frm, to))
        n.deliver(frm, payload)

    # -- faults -------------------------------------------------------------
    def leader(self):
        best = None
        for i in self.ids:
            n = self.nodes[i]
            if n.up and n.engine.core.role == LEADER:
                r = n.engine.core
                if best is None or r.term > best.engine.core.term:
                    best = n
        return best

    def nemesis(self):
        f = self.faults
        rnd = self._fault_rand
        now = self.now
        h = self.heals
        if h:
            keep = []
            for ev in h:
                if ev[0] <= now:
                    self.heal(ev)
                else:
                    keep.append(ev)
            self.heals = keep
        if self._conf_rand is not None:
            self.reconfig()
        if self._wipe_rand is not None:
            self.wipe()
        down = [i for i in self.ids if not self.nodes[i].up]
        max_down = (len(self.ids) - 1) // 2
        if self._conf_rand is not None:
            # Keep a majority of the current voters up (liveness, not safety).
            down, max_down = self._voters_down(down)
        if "crash" in f and len(down) < max_down and rnd.chance(4):
            victim = self.ids[rnd.below(len(self.ids))]
            n = self.nodes[victim]
            if n.up:
                n.up = False
                self.crashes += 1
                self.net.drop_for(victim)
                self.log("crash %d" % victim)
                if self.rec is not None:
                    self.rec.mark("crash", victim, "crash")
                self.heals.append((now + 10 + rnd.below(150), "restart", victim))
        if "leader" in f and len(down) < max_down and rnd.chance(6):
            # Figure 8 pressure: crash a leader right after it took new
            # entries, so terms pile up uncommitted tails on minorities.
            ld = self.leader()
            if ld is not None and ld.engine.core.log.last > ld.engine.core.log.committed:
                ld.up = False
                self.crashes += 1
                self.net.drop_for(ld.id)
                self.log("crash leader %d" % ld.id)
                if self.rec is not None:
                    self.rec.mark("crash", ld.id, "crash the leader")
                self.heals.append((now + 3 + rnd.below(40), "restart", ld.id))
                down.append(ld.id)
        if "powercut" in f and not down and rnd.chance(1):
            # A power outage of the whole cluster (boards often share a
            # supply): every node loses power within its next few writes.
            for i in self.ids:
                v = self.nodes[i]
                if v.fs is not None and v.fs.budget is None:
                    v.fs.budget = rnd.below(300)
            self.log("arm power cut on every node")
            if self.rec is not None:
                self.rec.mark("arm", 0, "power cut armed on every node")
        elif "powercut" in f and len(down) < max_down and rnd.chance(5):
            # Arm a cut: the victim loses power somewhere in its next writes.
            victim = self.nodes[self.ids[rnd.below(len(self.ids))]]
            if victim.up and victim.fs is not None and victim.fs.budget is None:
                victim.fs.budget = rnd.below(400)
                self.log("arm power cut on %d" % victim.id)
                if self.rec is not None:
                    self.rec.mark("arm", victim.id, "power cut armed")
        if not self.net.blocked:
            if "partition" in f and rnd.chance(3):
                self.partitions += 1
                ids = self.ids
                side = [i for i in ids if rnd.chance(400)]
                oneway = rnd.chance(300)
                for a in ids:
                    for b in ids:
                        if (a in side) != (b in side):
                            if not oneway or a in side:
                                self.net.blocked.add((a, b))
                self.log("partition %r%s" % (side, " one-way" if oneway else ""))
                if self.rec is not None:
                    other = [i for i in ids if i not in side]
                    # The page hatches the cut-off side: the smaller one, or
                    # the one that cannot send.
                    self.rec.fault_begin(
                        "partition", side if oneway or len(side) <= len(other) else other,
                        "partition %r | %r%s" % (side, other, " (one-way: only %r cannot send)"
                                                 % (side,) if oneway else ""))
                self.heals.append((now + 20 + rnd.below(300), "heal", None))
            elif "leader" in f and rnd.chance(3):
                ld = self.leader()
                if ld is not None:
                    self.partitions += 1
                    for b in self.ids:
                        if b != ld.id:
                            self.net.blocked.add((ld.id, b))
                            self.net.blocked.add((b, ld.id))
                    self.log("isolate leader %d" % ld.id)
                    if self.rec is not None:
                        self.rec.fault_begin("isolate", [ld.id], "leader %d isolated" % ld.id)
                    self.heals.append((now + 20 + rnd.below(200), "heal", None))

    def new_inc(self):
        return 1 + self._wipe_rand.below(0x3FFFFFFE)

    def wipe(self):
        """Now and then a node loses its flash and boots as a new
        incarnation: one at a time, a node the committed configuration
        binds (one an operator re-added is unbound, docs/incarnation.md),
        while a majority of the voters is up and bound."""
        rnd = self._wipe_rand
        # Mid-election, a voter that granted its vote and reboots at once
        # is the case the rule exists for (it would grant another).
        mid = [i for i in self.ids if self.nodes[i].up and self.nodes[i].engine.core.vote
               and not self.nodes[i].engine.core.lead]
        if not (mid and rnd.chance(100)) and not rnd.chance(2):
            return
        ck = self.checker
        c = ck.conf_at(ck.commit_count())
        incs = ck.incs
        if c[1] or ck.rejoin or [i for i in incs if self.nodes[i].inc != incs[i]]:
            return  # joint, or a wipe is still rejoining
        bound = [i for i in self.ids if incs.get(i) and self.nodes[i].up]
        up = [i for i in c[0] if self.nodes[i].up]
        if not bound or len(up) - 1 < len(c[0]) // 2 + 1:
            return
        fast = [i for i in mid if i in bound]
        if fast:
            bound = fast
        n = self.nodes[bound[rnd.below(len(bound))]]
        n.wipe(self.new_inc())
        self.wipes += 1
        self.net.drop_for(n.id)
        self.log("wipe %d: incarnation %d" % (n.id, n.inc))
        if self.rec is not None:
            self.rec.mark("crash", n.id, "flash wiped")
        self.heals.append((self.now + (1 + rnd.below(5) if fast else 5 + rnd.below(100)),
                           "restart", n.id))

    def _voters_down(self, down):
        c = self.checker.conf_at(self.checker.commit_count())
        vd = [i for i in down if i in c[0] or i in c[1]]
        m = (len(c[0]) - 1) // 2
        if c[1] and (len(c[1]) - 1) // 2 < m:
            m = (len(c[1]) - 1) // 2
        return vd, m

    def reconfig(self):
        """Ask the leader for a membership change now and then; sometimes
        for a second one at once, which it must refuse while the first is
        pending (thesis 4.1: one change at a time)."""
        rnd = self._conf_rand
        if not rnd.chance(8):
            return
        ld = self.leader()
        if ld is None:
            return
        self._reconfig_one(ld, rnd)
        if rnd.chance(300):
            self._reconfig_one(ld, rnd)

    def _reconfig_one(self, ld, rnd):
        eng = ld.engine
        r = eng.core
        voters, vout, learners, auto = eng.rawnode.conf()
        if vout:
            # Joint: the leader leaves on its own (auto); or we ask it to.
            if not auto:
                self._propose_conf(ld, CC.JOINT, (CC.AUTO, ()), b"", "leave-joint")
            return
        out = [i for i in self.ids if i not in voters and i not in learners]
        if rnd.chance(400) and self._joint_change(ld, rnd, voters, learners, out):
            return
        op = 0
        nid = 0
        for lr in learners:
            pr = r.prs.get(lr)
            if pr is not None and pr.match >= r.log.committed:
                op, nid = CC.ADD_VOTER, lr  # caught up: promote (thesis 4.2.1)
                break
        if not op:
            if out and (len(voters) <= 3 or rnd.chance(500)):
                op, nid = CC.ADD_LEARNER, out[rnd.below(len(out))]
            elif len(voters) > 3:
                op, nid = CC.REMOVE, voters[rnd.below(len(voters))]
            elif learners and rnd.chance(100):
                op, nid = CC.REMOVE, learners[rnd.below(len(learners))]
            else:
                return
        # The address travels in the change, as raftctl sends it.
        self._propose_conf(ld, op, nid, b"sim:%d" % nid, "%s %d" % (_OP_NAMES[op], nid))

    def _joint_change(self, ld, rnd, voters, learners, out):
        """One joint change (thesis 4.3), left automatically or, now and
        then, only when asked (EXPLICIT). False if none fits now."""
        r = ld.engine.core
        k = rnd.below(4)
        steps = None
        if k == 0 and out:
            # Replace a voter by a node outside the cluster.
            steps = ((CC.REMOVE, voters[rnd.below(len(voters))]),
                     (CC.ADD_VOTER, out[rnd.below(len(out))]))
        elif k == 1 and len(out) >= 2 and len(voters) <= 3:
            a = rnd.below(len(out))
            b = (a + 1 + rnd.below(len(out) - 1)) % len(out)
            steps = ((CC.ADD_VOTER, out[a]), (CC.ADD_VOTER, out[b]))
        elif k == 2 and len(voters) >= 5:
            a = rnd.below(len(voters))
            b = (a + 1 + rnd.below(len(voters) - 1)) % len(voters)
            steps = ((CC.REMOVE, voters[a]), (CC.REMOVE, voters[b]))
        elif k == 3:
            caught = [x for x in learners if r.prs[x].match >= r.log.committed]
            if caught:
                # Promote a caught-up learner, demote a voter (etcd LearnersNext).
                steps = ((CC.ADD_VOTER, caught[rnd.below(len(caught))]),
                         (CC.ADD_LEARNER, voters[rnd.below(len(voters))]))
        if steps is None:
            return False
        tr = CC.EXPLICIT if rnd.chance(200) else CC.AUTO
        ctx = b" ".join([b"%d=sim:%d" % (s[1], s[1]) for s in steps if s[0] != CC.REMOVE])
        what = "joint %s%s" % (" ".join(["%s %d" % (_OP_NAMES[s[0]], s[1]) for s in steps]),
                               " explicit" if tr == CC.EXPLICIT else "")
        if self._propose_conf(ld, CC.JOINT, (tr, steps), ctx, what):
            self.joint_proposed += 1
        return True

    def _propose_conf(self, ld, op, arg, ctx, what):
        idx = ld.engine.propose_conf_change(op, arg, ctx)
        if idx == 0:
            # Refused: thesis 4.1, one change at a time (or no longer leader).
            self.reconfig_refused += 1
            if self.trace_on:
                self.log("conf change %s refused by %d" % (what, ld.id))
            return 0
        self.reconfigs += 1
        self.log("leader %d proposes %s at %d" % (ld.id, what, idx))
        if self.rec is not None:
            self.rec.mark("conf", ld.id, "leader %d proposes %s at index %d" % (ld.id, what, idx))
        return idx

    def heal(self, ev):
        if ev[1] == "restart":
            n = self.nodes[ev[2]]
            try:
                n.power_cycle()
            except RaftError as e:
                self.checker.fail("node %d cannot boot from its flash: %s" % (n.id, e))
                return
            n.boot()
            self.checker.rebooted(n)
            self.log("restart %d term=%d" % (n.id, n.engine.core.term))
            if self.rec is not None:
                self.rec.mark("restart", n.id, "restart")
        elif ev[1] == "heal":
            self.net.blocked = set()
            self.log("heal")
            if self.rec is not None:
                self.rec.fault_end()

    # -- clients --------------------------------------------------------------
    def clients(self):
        rnd = self._client_rand
        ld = self.leader()
        if ld is None:
            return
        k = rnd.below(4)
        for _ in range(k):
            self.next_value += 1
            # In process, without waiting for a result (the engine's API).
            if not ld.engine.propose(b"v%d" % self.next_value):
                break
            self.proposed += 1

    # -- main loop ----------------------------------------------------------
    def step(self):
        self.now += 1
        self.clock.advance(TICK_MS)
        self.nemesis()
        for pkt in self.net.due(self.now):
            self.deliver(pkt)
        if self.workload is None:
            # In-process proposals (the engine's API), driven in this turn.
            self.clients()
        for i in self.ids:
            n = self.nodes[i]
            if n.up:
                self.run_node(n)
        if self.workload is not None:
            # Datagrams: they reach the nodes from the next step on.
            self.workload.step()
        self.checker.check_step()
        if self.rec is not None:
            self.rec.end_step()

    def run(self):
        steps = self.opts["steps"]
        ck = self.checker
        while self.now < steps and not ck.violations:
            self.step()
            if self.now & 511 == 0:
                # MicroPython's collector can fail a large allocation in a
                # fragmented heap before it collects; keep the heap compact.
                gc.collect()
        return self.summary()

    def summary(self):
        ck = self.checker
        out = {"seed": self.opts["seed"], "nodes": len(self.ids), "steps": self.now,
                "faults": ",".join(self.faults) or "none", "commits": ck.commit_count(),
                "elections": ck.elections, "proposed": self.proposed,
                "crashes": self.crashes, "partitions": self.partitions,
                "power_cuts": self.power_cuts, "snapshots_installed": self.snapshots_installed,
                "messages": self.net.sent, "dropped": self.net.dropped,
                "violations": list(ck.violations), "digest": ck.digest()}
        if self._conf_rand is not None:
            c = ck.conf_at(ck.commit_count())
            out["reconfigs"] = self.reconfigs
            out["reconfig_refused"] = self.reconfig_refused
            out["conf_changes_committed"] = ck.conf_changes
            out["joint_proposed"] = self.joint_proposed
            out["joint_entered"] = ck.joint_entered
            out["joint_left"] = ck.joint_left
            out["voters"] = list(c[0])
            out["voters_out"] = list(c[1])
            out["learners"] = list(c[2])
        if self._wipe_rand is not None:
            out["wipes"] = self.wipes
            out["rejoins"] = ck.rejoins
            out["promoted"] = ck.promoted
            # Wiped nodes not back as bound voters when the run ended.
            out["rejoining"] = [i for i in self.ids if i in ck.rejoin or
                                (ck.incs.get(i) and ck.incs[i] != self.nodes[i].inc)]
        if self.workload is not None:
            self.workload.summarize(out, self.opts["check_linear"])
        return out


def run(opts):
    sim = Sim(opts)
    return sim, sim.run()


def shrink(opts, fail_step):
    """Find a smaller fault set and step count that still fails."""
    best = dict(opts)
    best["steps"] = fail_step
    best["timeline"] = None  # only the run main() reports records one
    for f in list(opts["faults"]):
        trial = dict(best)
        trial["faults"] = [x for x in best["faults"] if x != f]
        sim, res = run(trial)
        if res["violations"]:
            best = trial
            best["steps"] = res["steps"]
    return best


def command_line(o):
    s = "tools/simulator/sim.py --nodes %d --seed %d --steps %d --faults %s --ring %d" % (
        o["nodes"], o["seed"], o["steps"], ",".join(o["faults"]) or "none", o["ring"])
    if o.get("clients"):
        s += " --clients %d" % o["clients"]
    if o.get("machine", "kv") != "kv":
        s += " --machine " + o["machine"]
    if o.get("log", "files") != "files":
        s += " --log " + o["log"]
    return s


def _page_command(o):
    """The command that makes this run, for the page's header."""
    c = "python3 " + command_line(o)
    if o["clients"]:
        c += " --reads %s" % o["reads"]
        if o["check_linear"]:
            c += " --check-linear"
    for k in ("election", "snap_every", "snap_keep", "batch_bytes", "apply_bytes"):
        if o[k] != DEFAULTS[k]:
            c += " --%s %d" % (k.replace("_", "-"), o[k])
    return c


def write_timeline(sim, res, path):
    """The run as one HTML page (tools/timeline/); returns the path written."""
    import page
    i = path.rfind("/")
    if i > 0:
        _makedirs(path[:i])
    o = dict(sim.opts)
    o["steps"] = res["steps"]
    try:
        page.write(path, sim.rec.data(res, _page_command(o), flat=False))
    except MemoryError:
        return "%s not written: out of memory (a shorter run, or CPython)" % path
    except OSError as e:
        return "%s not written: %s" % (path, e)
    return path


def _makedirs(d):
    import os
    parts = d.split("/")
    for k in range(1, len(parts) + 1):
        p = "/".join(parts[:k])
        if p:
            try:
                os.mkdir(p)
            except OSError:
                pass  # exists (or cannot be made: open() then says so)


def _repro_path(opts):
    """Where the timeline of a violation's shortest reproduction goes."""
    t = opts["timeline"]
    if t:
        return (t[:-5] if t.endswith(".html") else t) + "-repro.html"
    return "%s/build/timeline/sim-seed%d-violation.html" % (paths.ROOT, opts["seed"])


def main(argv):
    try:
        opts = parse_args(argv)
    except UsageError as e:
        if str(e):
            print("sim.py: %s" % e)
        print(USAGE)
        return 2
    sim, res = run(opts)
    if opts["timeline"]:
        print("timeline: " + write_timeline(sim, res, opts["timeline"]))
    if res["violations"]:
        print("VIOLATION at step %d: %s" % (res["steps"], res["violations"][0]))
        best = opts
        if opts["shrink"]:
            best = shrink(opts, res["steps"])
        t = dict(best)
        t["trace"] = True
        t["timeline"] = _repro_path(opts)
        sim2, res2 = run(t)
        print("shortest reproduction found: " + command_line(best))
        print("timeline of that run: " + write_timeline(sim2, res2, t["timeline"]))
        print("trace of that run (last events):")
        for line in sim2.trace[-60:]:
            print("  " + line)
        if res2["violations"]:
            print("  => " + res2["violations"][0])
    elif not opts["quiet"]:
        print("ok: %d commits, %d elections, %d messages (%d dropped), %d crashes, %d partitions"
              % (res["commits"], res["elections"], res["messages"], res["dropped"],
                 res["crashes"], res["partitions"]))
    print(json.dumps(res))
    if res.get("linearizable") is False:
        return 1
    return 1 if res["violations"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
