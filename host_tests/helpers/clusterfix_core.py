"""The "core" backend of the cluster fixture (clusterfix.py)."""
from raft.errors import NotLeader, ProposalDropped
from raft.roles import LEADER as _LEADER

from clusterfix import Cluster, Unavailable


# -- "core": raftnet.Net over the pure core ---------------------------------------

class CoreCluster(Cluster):
    """raftnet's own Ready loop over the core (backend "core").

    Storage is raftnet's MemoryStorage, written at every Ready before
    anything is sent: nothing is ever pending, so power_cut is crash here.
    There are no client sessions: a put retried after an unknown outcome may
    apply twice (harmless for a put)."""

    backend = "core"

    def __init__(self, nodes=5, seed=1):
        Cluster.__init__(self)
        import raftnet
        old = raftnet.BACKEND
        raftnet.BACKEND = "core"
        try:
            self.net = raftnet.Net(nodes, seed=seed)
        finally:
            raftnet.BACKEND = old
        self.ids = list(self.net.ids)
        self._t = 0
        self._ctx = 0

    def now(self):
        return self._t

    def step(self, n=1):
        for _ in range(n):
            self.net.step()
            self._t += 1

    def views(self):
        net = self.net
        out = {}
        for i in self.ids:
            if net.up[i]:
                r = net.nodes[i].raft
                out[i] = (r.role == _LEADER, r.term, r.lead)
        return out

    def _is_leader(self, i):
        return self.net.up[i] and self.net.nodes[i].raft.role == _LEADER

    def applied(self, i):
        assert self.net.up[i], "node %d is down" % i
        return self.net.nodes[i].raft.log.applied

    def _entry(self, i, idx):
        for e in reversed(self.net.applied[i]):
            if e[0] == idx:
                return e
            if e[0] < idx:
                return None
        return None

    def _value(self, i, key):
        """key's value in what node i applied: the entries are b"key=value"."""
        pre = ("%s=" % key).encode()
        v = None
        for e in self.net.applied[i]:
            d = e[3]
            if d.startswith(pre):
                v = d[len(pre):].decode()
        return v

    def _target(self, via):
        if via is not None:
            return via if self._is_leader(via) else 0
        ld = self.leader()
        return ld

    def put(self, key, value, via=None, within=None):
        within = self.WAIT if within is None else within
        net = self.net
        data = ("%s=%s" % (key, value)).encode()
        end = self._t + within
        while self._t < end:
            i = self._target(via)
            if not i:
                self.step(1)
                continue
            term = net.nodes[i].raft.term
            try:
                idx = net.propose(i, data)
            except ProposalDropped:   # not leader (any more), log full
                self.step(1)
                continue
            # Acknowledged once i applied the entry at idx with our term.
            while self._t < end and net.up[i]:
                e = self._entry(i, idx)
                if e is not None:
                    if e[1] == term and e[3] == data:
                        return True
                    break   # another leader's entry took idx: lost
                self.step(1)
        return False

    def get(self, key, via=None, within=None):
        within = self.WAIT if within is None else within
        net = self.net
        end = self._t + within
        while self._t < end:
            i = self._target(via)
            if not i:
                self.step(1)
                continue
            self._ctx += 1
            ctx = self._ctx
            try:
                net.nodes[i].read_index(ctx)
            except NotLeader:
                self.step(1)
                continue
            net.drive(i)
            # The read state, then applied >= the read index (thesis 6.4).
            # A leader that loses its quorum never answers: give the round
            # two election timeouts, then ask again.
            ri = -1
            give_up = min(end, self._t + 20)
            while self._t < give_up and net.up[i]:
                for index, c in net.read_states[i]:
                    if c == ctx:
                        ri = index
                if ri >= 0:
                    break
                self.step(1)
            if ri < 0:
                continue
            while self._t < end and net.up[i]:
                if net.nodes[i].raft.log.applied >= ri:
                    return self._value(i, key)
                self.step(1)
        raise Unavailable("core backend: no read of %r served within %d ticks" % (key, within))

    def partition(self, *groups):
        self.net.blocked = self._blocked_pairs(groups)

    def heal(self):
        self.net.blocked = set()

    def crash(self, i):
        assert self.net.up[i], "node %d is already down" % i
        self.net.crash(i)

    def power_cut(self, *ids):
        for i in ids:
            self.crash(i)

    def restart(self, i):
        assert not self.net.up[i], "node %d is up" % i
        self.net.restart(i)
