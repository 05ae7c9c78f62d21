"""Safety checker for the simulator: the Raft properties of paper Figure 3.

Called by sim.py at every Ready and after every step. Every check is
incremental, so checking after every step stays cheap.
"""
import binascii
import hashlib

from raft import confchange as CC
from raft.core import LEADER
from raft.errors import Compacted, ConfigError, DecodeError, Unavailable
from raft.storage import ENTRY_CONF
from raftio.fakeflash import PowerCut


def _quorum(conf, have):
    """Do the nodes in have form a quorum of conf: a majority of its voters
    and, if joint, of its outgoing voters too?"""
    for half in conf[:2]:
        n = 0
        for v in half:
            if v in have:
                n += 1
        if half and n < len(half) // 2 + 1:
            return False
    return True


def _entry(storage, i):
    try:
        es = storage.entries(i, i + 1, 0)
    except (Compacted, Unavailable):
        return None
    return es[0] if es else None


class Checker:
    def __init__(self, sim):
        self.sim = sim
        self.violations = []
        # Election safety: term -> leader id, and the history for the digest.
        self.leaders = {}
        self.elections = 0
        # Both windows below are rings preallocated here, while the heap is
        # still empty: MicroPython's heap does not compact, so a dict or list
        # that keeps growing eventually finds no contiguous block.
        # Log matching: slot i % W lists (index, term, crc of data, term of i - 1).
        self.W = 1024
        self.seen = [None] * self.W
        # Committed entries: slot i % W is (index, term, crc of data, state
        # machine chain after it). Older ones live on only in the digest.
        self.committed = [None] * self.W
        self.committed[0] = (0, 0, 0, 0)
        self.ccount = 0
        self._digest = hashlib.sha256()
        # Per node: last applied index, last commit seen, leader bookkeeping.
        self.applied_at = {}
        self.commit_seen = {}
        self.durable_commit = {}
        self.leader_last = {}
        for i in sim.ids:
            self.applied_at[i] = 0
            self.commit_seen[i] = 0
            self.durable_commit[i] = 0
        # Membership as the committed log defines it: (index, conf) after
        # each committed conf change, conf as RawNode.conf() gives it
        # (voters, voters_out, learners, auto_leave), oldest first, the
        # last 64 of them (a few dozen per run at most).
        self.confs = [(0, (tuple(sim.ids), (), (), False))]
        self.conf_changes = 0
        # Joint changes committed: entered, left.
        self.joint_entered = 0
        self.joint_left = 0
        # Incarnations as the committed log binds them (wipe fault,
        # docs/incarnation.md): id -> inc, the rejoining learners, and how
        # many REJOIN entries committed.
        self.incs = dict(sim.incs)
        self.rejoin = ()
        self.rejoins = 0
        self.promoted = 0
        # One vote per (node, term), whatever incarnation casts it (paper
        # 5.2): slot term % W is (term, {node: vote}).
        self.votes = [None] * self.W

    def conf_at(self, i):
        """The conf in effect once index i is applied, or None if that is
        older than the history kept."""
        cs = self.confs
        k = len(cs) - 1
        while k >= 0 and cs[k][0] > i:
            k -= 1
        if k < 0:
            return None
        return cs[k][1]

    def _learn_conf(self, e):
        try:
            op, arg, _ = CC.decode(e[3])
            cur = self.confs[-1][1]
            c = CC.apply_conf(cur, op, arg)
        except (DecodeError, ConfigError):
            return  # every node ignores it alike
        self._learn_incs(op, arg, e[3])
        if c[1] and not cur[1]:
            self.joint_entered += 1
        elif cur[1] and not c[1]:
            self.joint_left += 1
        self.confs.append((e[0], c))
        self.conf_changes += 1
        if len(self.confs) > 64:
            del self.confs[0]

    def _learn_incs(self, op, arg, data):
        incs = self.incs
        if op == CC.REJOIN:
            self.rejoins += 1
            cur = self.confs[-1][1]
            incs[arg] = int.from_bytes(CC.decode(data)[2], "little")
            if arg in cur[0] or arg in self.rejoin:
                self.rejoin = tuple(x for x in self.rejoin if x != arg) + (arg,)
            return
        for o, p in (arg[1] if op == CC.JOINT else ((op, arg),)):
            if o == CC.ADD_VOTER and p in self.rejoin:
                self.promoted += 1
            self.rejoin = tuple(x for x in self.rejoin if x != p)
            if o != CC.ADD_VOTER:
                incs.pop(p, None)

    def wiped(self, n):
        """n lost its flash: its durable commit is gone with it."""
        self.durable_commit[n.id] = 0
        self.commit_seen[n.id] = 0

    def _check_vote(self, nid, term, vote):
        slot = self.votes[term % self.W]
        if slot is None or slot[0] != term:
            slot = self.votes[term % self.W] = (term, {})
        had = slot[1].get(nid)
        if had is None:
            slot[1][nid] = vote
        elif had != vote:
            self.fail("double vote: node %d voted for %d and then %d in term %d"
                      % (nid, had, vote, term))

    def fail(self, what):
        if len(self.violations) < 5:
            self.violations.append("step %d: %s" % (self.sim.now, what))

    def commit_count(self):
        return self.ccount

    def _committed_at(self, i):
        c = self.committed[i % self.W]
        if c is not None and c[0] == i:
            return c[1:]
        return None

    # -- hooks from the driver ------------------------------------------------
    def persisted(self, n, rd):
        r = n.engine.core
        st = n.storage
        nid = n.id
        # Leader append-only: a leader's new entries always extend what it had.
        if rd.role == LEADER:
            t = r.term
            prev = self.leader_last.get(nid)
            if rd.entries:
                if prev is not None and prev[0] == t and rd.entries[0][0] != prev[1] + 1:
                    self.fail("leader %d term %d rewrote its log at %d (had %d)"
                              % (nid, t, rd.entries[0][0], prev[1]))
                self.leader_last[nid] = (t, rd.entries[-1][0])
            elif prev is None or prev[0] != t:
                self.leader_last[nid] = (t, st.last_index())
        # Log matching: one (index, term) always names the same entry and prefix.
        seen = self.seen
        W = self.W
        pt = -1
        for e in rd.entries:
            i = e[0]
            if pt < 0:
                try:
                    pt = st.term(i - 1)
                except Compacted:
                    pt = -1
            crc = binascii.crc32(e[3])
            slot = seen[i % W]
            if slot is None or slot[0][0] != i:
                seen[i % W] = [(i, e[1], crc, pt)]
                pt = e[1]
                continue
            for rec in slot:
                if rec[1] == e[1]:
                    if rec[2] != crc or (pt >= 0 and rec[3] >= 0 and rec[3] != pt):
                        self.fail("log matching: node %d entry (%d, t%d) differs from an "
                                  "earlier copy" % (nid, i, e[1]))
                    break
            else:
                slot.append((i, e[1], crc, pt))
            pt = e[1]
        if rd.role == LEADER:
            self._observe_leader(n)
        hs = st.hard_state
        if hs[1]:
            self._check_vote(nid, hs[0], hs[1])
        # Monotonic commit, durable and volatile.
        if hs[2] < self.durable_commit[nid]:
            self.fail("node %d durable commit went back %d -> %d"
                      % (nid, self.durable_commit[nid], hs[2]))
        self.durable_commit[nid] = hs[2]
        c = r.log.committed
        if c < self.commit_seen[nid]:
            self.fail("node %d commit went back %d -> %d" % (nid, self.commit_seen[nid], c))
        self.commit_seen[nid] = c
        self._learn_commits(n, c)

    def _observe_leader(self, n):
        r = n.engine.core
        t = r.term
        who = self.leaders.get(t)
        if who is None:
            self.leaders[t] = n.id
            self.elections += 1
            self.sim.log("leader %d term %d" % (n.id, t))
            # Leader completeness (paper 5.4): it holds every committed entry.
            log = r.log
            lo = log.snap_index + 1
            if lo < self.ccount - self.W + 2:
                lo = self.ccount - self.W + 2
            for i in range(lo, self.ccount + 1):
                try:
                    lt = log.term(i)
                except Compacted:
                    continue
                if lt != self._committed_at(i)[0]:
                    self.fail("leader completeness: leader %d term %d lacks committed entry %d"
                              % (n.id, t, i))
                    break
        elif who != n.id:
            self.fail("election safety: nodes %d and %d both leader in term %d" % (who, n.id, t))

    def _learn_commits(self, n, c):
        if c <= self.ccount:
            return
        log = n.engine.core.log
        cm = self.committed
        W = self.W
        h = self._digest
        try:
            ents = log.slice(self.ccount + 1, c + 1, 0)
        except Compacted:
            # Covered by a snapshot we cannot see into: learn it from others.
            return
        for e in ents:
            i = e[0]
            chain = binascii.crc32(e[3], binascii.crc32(b"%d:%d:" % (e[0], e[1]),
                                                         cm[(i - 1) % W][3]))
            cm[i % W] = (i, e[1], binascii.crc32(e[3]), chain)
            self.ccount = i
            if e[2] == ENTRY_CONF:
                self._learn_conf(e)
            h.update(b"%d:%d:" % (i, e[1]))
            h.update(e[3])

    def applied(self, n, e):
        nid = n.id
        i = e[0]
        if i != self.applied_at[nid] + 1:
            self.fail("node %d applied %d after %d (not in order)" % (nid, i, self.applied_at[nid]))
        self.applied_at[nid] = i
        if i > self.ccount:
            self._learn_commits(n, i)
        c = self._committed_at(i)
        if c is not None and (c[0] != e[1] or c[2] != n.machine.chain):
            self.fail("state machine safety: node %d applied (%d, t%d) but (%d, t%d) was committed"
                      % (nid, i, e[1], i, c[0]))

    def restored(self, n, snap):
        self.applied_at[n.id] = snap.index
        c = self._committed_at(snap.index)
        if c is not None and c[2] != n.machine.chain:
            self.fail("snapshot at %d installed on node %d has the wrong state" % (snap.index, n.id))

    def rebooted(self, n):
        # Volatile state is gone: the state machine restarts from the snapshot.
        self.applied_at[n.id] = n.engine.core.log.applied
        self.commit_seen[n.id] = n.engine.core.log.committed
        self.leader_last.pop(n.id, None)

    # -- after every step -------------------------------------------------------
    def check_step(self):
        sim = self.sim
        for i in sim.ids:
            n = sim.nodes[i]
            if n.up and n.engine.core.role == LEADER:
                self._observe_leader(n)
        # No committed entry is lost: the newest one is durable on a quorum
        # (with log matching, so is every entry before it). With membership
        # changes, a quorum of the configuration that committed it: the
        # leader counted with its applied configuration, which (one change
        # at a time, applied before the next is proposed) is the newest
        # committed one or the one before it. In a joint configuration a
        # quorum is a majority of both halves (thesis 4.3): commit only with
        # both majorities.
        c = self.ccount
        if c > 0:
            t = self.committed[c % self.W][1]
            cs = self.confs
            cur = cs[-1][1]
            prev = cs[-2][1] if len(cs) > 1 else cur
            have = []
            incs = self.incs
            undecided = False
            for i in sim.ids:
                st = sim.nodes[i].storage
                if incs.get(i) and incs[i] != sim.nodes[i].inc:
                    # Wiped, and not bound again yet: it cannot vote, so no
                    # quorum of nodes that can vote lacks what it lost
                    # (docs/incarnation.md). It stands for its lost copy.
                    have.append(i)
                    continue
                try:
                    try:
                        ok = st.term(c) == t
                    except PowerCut:
                        # Off (a cut mid-write): the log reads its terms
                        # from flash, so ask what the next boot will find.
                        ok = sim.nodes[i].durable_storage().term(c) == t
                except Compacted:
                    ok = True
                except MemoryError:
                    # The checker's own reads (a copy of a node's flash) did
                    # not fit a small MicroPython heap: undecided this step,
                    # never a false violation.
                    undecided = True
                    break
                except Exception:
                    ok = False
                if ok:
                    have.append(i)
            if not undecided and not (_quorum(cur, have) or _quorum(prev, have)):
                self.fail("committed entry %d (t%d) durable on only %r, no quorum of %r"
                          % (c, t, have, cur[:2]))
            if len(cs) > 1:
                self._check_confs()

    def _check_confs(self):
        # Every node's membership is the committed log's at its applied index.
        sim = self.sim
        for i in sim.ids:
            n = sim.nodes[i]
            if not n.up:
                continue
            eng = n.engine
            want = self.conf_at(eng.core.log.applied)
            if want is not None and eng.rawnode.conf() != want:
                self.fail("node %d applied %d with membership %r, the log says %r"
                          % (i, eng.core.log.applied, eng.rawnode.conf(), want))

    def digest(self):
        h = hashlib.sha256(self._digest.digest())
        for t in sorted(self.leaders):
            h.update(b"L%d:%d;" % (t, self.leaders[t]))
        return binascii.hexlify(h.digest()).decode()[:16]
