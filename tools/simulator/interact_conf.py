"""Interaction-script commands for membership, snapshots and a hand-driven
Ready loop (etcd raft's interaction env: propose-conf-change, compact,
process-ready and friends). A mixin of interact.Interaction.

  add-nodes N voters=V     nodes V+1..N boot outside the cluster (a learner
                           of the bootstrap conf each: they never campaign)
                           and learn the real configuration from the log
  conf-change ID OP NODE [OP NODE ...] [auto|implicit|explicit]
                           OP: add-voter, add-learner, remove. One step and
                           no transition: a single-server change (its V1
                           encoding); otherwise a joint one (ConfChangeV2)
  conf-change ID leave     leave the joint configuration (an empty V2 change)
  conf [ID ...]            each node's configuration as of its applied index
  snapshot ID              snapshot ID's storage at its applied index
  compact ID [INDEX]       drop ID's entries up to INDEX (default: its snapshot)
  manual ID on|off         ID's Ready loop runs only as the commands below say:
  ready ID                 take a Ready and print it (held until applied)
  persist ID               write the held Ready's snapshot, entries, hard state
  send ID                  send its messages; the ones that wait for
                           persisting (vote grants, acks) only once persisted
  apply ID                 apply its committed entries, then advance
"""
from raft import confchange as CC
from raft.config import Config
from raft.memstorage import MemoryStorage
from raftnet import fmt_entry, fmt_msg

class ScriptError(Exception):
    pass


def _int(s, what):
    try:
        return int(s)
    except ValueError:
        raise ScriptError("%s must be an integer, got %r" % (what, s))


_OPS = {"add-voter": CC.ADD_VOTER, "add-learner": CC.ADD_LEARNER, "remove": CC.REMOVE}
_OP_NAMES = ("?", "add-voter", "add-learner", "remove")
_TRANSITIONS = {"auto": CC.AUTO, "implicit": CC.IMPLICIT, "explicit": CC.EXPLICIT}


def fmt_conf(c):
    s = "voters=%s" % ",".join(str(x) for x in c[0])
    if c[1]:
        s += " outgoing=%s" % ",".join(str(x) for x in c[1])
    if c[2]:
        s += " learners=%s" % ",".join(str(x) for x in c[2])
    if c[1]:
        s += " auto-leave" if c[3] else " explicit-leave"
    return s


def fmt_change(c):
    if c[1] != CC.JOINT:
        return "%s %d" % (_OP_NAMES[c[1]], c[2])
    tr, steps = c[2]
    if not steps:
        return "leave-joint"
    return "joint(%s)%s" % (", ".join("%s %d" % (_OP_NAMES[s[0]], s[1]) for s in steps),
                            "" if tr == CC.AUTO else " " + ("?", "implicit", "explicit")[tr])


class ConfCommands:
    def _newcomers(self, voters):
        """Boot nodes voters+1.. outside the cluster (see the docstring)."""
        net = self.net
        if not 0 < voters <= len(net.ids):
            raise ScriptError("voters=%d: between 1 and the number of nodes" % voters)
        boot = list(range(1, voters + 1))
        kw = {"election_tick": 10, "heartbeat_tick": 1}
        kw.update(net.cfg)

        def config(i):
            if i <= voters:
                return Config(i, boot, **kw)
            return Config(i, boot, learners=(i,), **kw)

        net.config = config
        for i in net.ids:
            net.storages[i] = MemoryStorage(boot) if i <= voters else MemoryStorage()
            net._boot(i)

    def c_conf_change(self, args):
        if len(args) < 2:
            raise ScriptError("conf-change ID OP NODE [OP NODE ...] [auto|implicit|explicit]"
                             " | conf-change ID leave")
        i = self._id(args[0])
        w = args[1:]
        tr = None
        if w[-1] in _TRANSITIONS:
            tr = _TRANSITIONS[w.pop()]
        node = self.net.nodes[i]
        if w == ["leave"]:
            idx = node.propose_conf_change_v2(CC.AUTO if tr is None else tr, ())
        else:
            if len(w) % 2:
                raise ScriptError("conf-change: OP NODE pairs expected, got %r" % w)
            steps = []
            for k in range(0, len(w), 2):
                if w[k] not in _OPS:
                    raise ScriptError("conf-change: OP is add-voter, add-learner or remove")
                steps.append((_OPS[w[k]], _int(w[k + 1], "node id")))
            if len(steps) == 1 and tr is None:
                idx = node.propose_conf_change(steps[0][0], steps[0][1])
            else:
                idx = node.propose_conf_change_v2(CC.AUTO if tr is None else tr, steps)
        self.p("%d: proposed conf change at index %d" % (i, idx))
        self.net.drive(i)

    def c_conf(self, args):
        net = self._need_net()
        for i in [self._id(a) for a in args] or net.ids:
            if net.up[i]:
                self.p("%d: %s" % (i, fmt_conf(net.nodes[i].conf())))
            else:
                self.p("%d: down" % i)

    def c_snapshot(self, args):
        i = self._id(args[0])
        node = self.net.nodes[i]
        st = self.net.storages[i]
        a = node.raft.log.applied
        c = node.conf()
        snap = st.create_snapshot(a, c[0], c[2], b"snap@%d" % a, c[1], c[3])
        self.p("%d: snapshot index=%d term=%d %s" % (i, snap.index, snap.term, fmt_conf(
            (snap.voters, snap.voters_out, snap.learners, snap.auto_leave))))

    def c_compact(self, args):
        i = self._id(args[0])
        st = self.net.storages[i]
        upto = _int(args[1], "index") if len(args) > 1 else st.snapshot().index
        if upto > st.snapshot().index:
            raise ScriptError("compact: %d is past the snapshot at %d; snapshot first"
                             % (upto, st.snapshot().index))
        st.compact(upto)
        self.net.nodes[i].compacted(upto, st.term(upto))
        self.p("%d: log starts at %d" % (i, st.first_index()))

    # -- the hand-driven Ready loop -------------------------------------------
    def c_manual(self, args):
        i = self._id(args[0])
        on = len(args) > 1 and args[1] == "on"
        net = self.net
        if not hasattr(self, "_held"):
            self._held = {}
            self._manual = set()
            auto = net.drive

            def drive(k):
                if k not in self._manual:
                    auto(k)

            net.drive = drive
        if on:
            self._manual.add(i)
        else:
            self._manual.discard(i)
            self._held.pop(i, None)
            net.drive(i)

    def _held_ready(self, i):
        h = getattr(self, "_held", {}).get(i)
        if h is None:
            raise ScriptError("node %d holds no Ready: manual %d on, then ready %d" % (i, i, i))
        return h

    def c_ready(self, args):
        i = self._id(args[0])
        if i not in getattr(self, "_manual", ()):
            raise ScriptError("node %d is not driven by hand: manual %d on" % (i, i))
        if i in self._held:
            raise ScriptError("node %d already holds a Ready: apply it first" % i)
        node = self.net.nodes[i]
        if not node.has_ready():
            self.p("%d: no ready" % i)
            return
        rd = node.ready()
        self._held[i] = [rd, False, False]
        if rd.hard_state is not None:
            self.p("%d: hard state term=%d vote=%d commit=%d%s" % (
                (i,) + rd.hard_state + (" (sync)" if rd.sync_hard_state else "",)))
        if rd.snapshot is not None:
            self.p("%d: snapshot index=%d" % (i, rd.snapshot.index))
        if rd.entries:
            self.p("%d: entries %s" % (i, " ".join(fmt_entry(e) for e in rd.entries)))
        for m in rd.messages:
            self.p("%d: send %s" % (i, fmt_msg(m)))
        for m in rd.persisted_messages:
            self.p("%d: send after persist %s" % (i, fmt_msg(m)))
        if rd.committed_entries:
            self.p("%d: apply %s" % (i, " ".join(fmt_entry(e) for e in rd.committed_entries)))
        for c in rd.conf_changes:
            self.p("%d: conf change at %d: %s" % (i, c[0], fmt_change(c)))

    def c_persist(self, args):
        i = self._id(args[0])
        h = self._held_ready(i)
        rd = h[0]
        st = self.net.storages[i]
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
        if rd.entries:
            st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        h[1] = True
        self.p("%d: persisted, last=%d" % (i, st.last_index()))

    def c_send(self, args):
        i = self._id(args[0])
        h = self._held_ready(i)
        rd = h[0]
        ms = rd.messages
        if h[1]:
            ms = ms + rd.persisted_messages
        elif rd.persisted_messages:
            self.p("%d: %d messages wait until persisted" % (i, len(rd.persisted_messages)))
        for m in ms:
            self.net.send(m)
        rd.messages = []
        if h[1]:
            rd.persisted_messages = []
        self.p("%d: sent %d" % (i, len(ms)))

    def c_apply(self, args):
        i = self._id(args[0])
        h = self._held_ready(i)
        rd = h[0]
        if not h[1] and (rd.entries or rd.hard_state is not None or rd.snapshot is not None):
            raise ScriptError("node %d: persist before apply (rawnode.py step 2)" % i)
        if rd.messages or rd.persisted_messages:
            raise ScriptError("node %d: send before apply" % i)
        net = self.net
        if rd.snapshot is not None:
            net.applied[i] = []
        for e in rd.committed_entries:
            net._apply(i, e)
        net.read_states[i].extend(rd.read_states)
        net.nodes[i].advance(rd)
        net._check_leader(i)
        del self._held[i]
        self.p("%d: applied %d, advanced" % (i, net.nodes[i].raft.log.applied))
