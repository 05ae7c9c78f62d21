"""One cluster fixture, several backends: write a scenario once, run it on each.

    c = clusterfix.make("engine")          # or "core", or "processes"
    try:
        ld = c.wait_leader()
        assert c.put("k", "v")             # True once acknowledged
        c.crash(ld)
        assert c.get("k") == "v"           # linearizable (ReadIndex)
        c.check()
    finally:
        c.close()

Backends (the `backend` attribute names the one in use):
  "core"       raftnet.Net (tools/simulator/raftnet.py) on its own Ready loop
               over the pure core. The fixture is the client and the state
               machine: a put proposes b"key=value" on the leader and is
               acknowledged once that node applied the entry at the index it
               got WITH the term it got (another leader's entry there means
               the put was lost); a get runs a ReadIndex round on the leader,
               waits for its read state and for applied >= the read index,
               then folds the entries that node applied.
  "engine"     the simulator (tools/simulator/sim.py) running the shipped
               engine and server (simnode.SimNode) on the fake flash. Puts
               and gets are datagrams in the real client protocol
               (raftio.wire + raftkv.codec, sealed by raftio.frame) sent over
               the simulated network to a node's server, answered by it: one
               exactly-once session (REGISTER first, then client id + seq),
               NOT_LEADER hints followed, silence and RETRY retried with the
               same seq. The simulator's checker (election safety, log
               matching, leader completeness, state machine safety, durable
               commits) runs after every step; a violation fails at once.
  "processes"  five MicroPython unix-port node processes on 127.0.0.1
               (tools/ops/cluster.py) behind the user-space fault proxy,
               spoken to with raftio.client.Client. CPython only (it starts
               processes); slow: the scenarios' time is real time.

Time is counted in ticks: step(n) is n simulator steps, or n real ticks
(the board's tick_ms) of sleep for processes. Every wait is bounded by
`within` ticks (a count bound as well as a time bound); a wait that runs out
raises AssertionError (wait_leader, wait_until) or reports failure (put
returns False, get raises Unavailable).

Portable: imports and runs under MicroPython (no os.path, dataclasses,
typing, abc or threading); the processes backend imports its CPython-only
modules when it is built.
"""


BACKENDS = ("core", "engine", "processes")

# Default bounds, in ticks (election timeouts are 10-20 ticks in the
# simulated backends, 15-30 on the unix board).
WAIT = 600
SHORT = 80


class Unavailable(Exception):
    """No linearizable read could be served within the bound."""


def make(backend, **kw):
    """A new cluster of 5 nodes (nodes=N to change) on backend. Each backend
    is its own module (clusterfix_core, _engine, _processes), imported here
    when used, so the processes backend costs MicroPython nothing."""
    if backend == "core":
        from clusterfix_core import CoreCluster
        return CoreCluster(**kw)
    if backend == "engine":
        from clusterfix_engine import EngineCluster
        return EngineCluster(**kw)
    if backend == "processes":
        from clusterfix_processes import ProcessCluster
        return ProcessCluster(**kw)
    raise ValueError("clusterfix: no backend %r; choose from %s" % (backend, ", ".join(BACKENDS)))


def _s(b):
    return b if isinstance(b, str) else bytes(b).decode()


class Cluster:
    """The interface every backend implements.

    ids                     node ids
    backend                 "core", "engine" or "processes"
    wait_leader(within)     the leader a majority of the nodes follow
    leader()                the same without waiting, 0 if none
    leaders()               every live node that believes it leads
    applied(i)              node i's applied index (i must be up)
    put(key, value, via, within)
                            True once the write is acknowledged (committed
                            and applied); False if it was not within the
                            bound (its outcome is then unknown). via=i sends
                            it to node i only, never elsewhere.
    get(key, via, within)   the value (str) or None, read linearizably;
                            raises Unavailable if no read was served
    partition(*groups)      cut every pair of nodes in different groups (the
                            nodes in no group form one more group); replaces
                            any earlier partition
    heal()                  remove every cut
    crash(i) / restart(i)   stop node i (its storage survives) / boot it again
    power_cut(*ids)         the nodes lose power: what was not durable is gone
    step(n)                 let n ticks pass
    wait_until(pred, what, within)
    check()                 raise AssertionError on any safety violation seen
    close()                 stop and release everything (call it in a finally)
    """

    backend = None
    WAIT = WAIT
    SHORT = SHORT

    def __init__(self):
        self.ids = []

    # -- what every backend provides -------------------------------------------
    def now(self):
        """Ticks elapsed since the cluster was made."""
        raise NotImplementedError

    def step(self, n=1):
        raise NotImplementedError

    def views(self):
        """{id: (is_leader, term, leader id it follows)} of the nodes up."""
        raise NotImplementedError

    def check(self):
        pass

    def close(self):
        pass

    # -- shared ----------------------------------------------------------------
    def _majority(self):
        return len(self.ids) // 2 + 1

    def leaders(self):
        v = self.views()
        return sorted(i for i in v if v[i][0])

    def leader(self):
        """The leader of the highest term that a majority of all nodes
        follows (itself included), or 0."""
        v = self.views()
        best = 0
        bt = -1
        for i in v:
            if v[i][0] and v[i][1] > bt:
                t = v[i][1]
                n = 0
                for j in v:
                    if v[j][1] == t and v[j][2] == i:
                        n += 1
                if n >= self._majority():
                    best = i
                    bt = t
        return best

    def wait_until(self, pred, what, within=None):
        """Step until pred() is true; AssertionError after `within` ticks."""
        within = self.WAIT if within is None else within
        start = self.now()
        k = 0
        while True:
            if pred():
                return
            if self.now() - start >= within or k > within:
                raise AssertionError("%s backend: %s: not within %d ticks"
                                     % (self.backend, what, within))
            self.step(1)
            k += 1

    def wait_leader(self, within=None):
        """The leader id once a majority follows one (bounded)."""
        got = [0]

        def known():
            got[0] = self.leader()
            return got[0] != 0
        self.wait_until(known, "no leader known to a majority", within)
        return got[0]

    def _groups(self, groups):
        """groups plus one group of the nodes named in none of them."""
        named = []
        out = []
        for g in groups:
            g = list(g)
            out.append(g)
            named += g
        rest = [i for i in self.ids if i not in named]
        if rest:
            out.append(rest)
        return out

    def _blocked_pairs(self, groups):
        side = {}
        for k, g in enumerate(self._groups(groups)):
            for i in g:
                side[i] = k
        return set((a, b) for a in self.ids for b in self.ids
                   if a != b and side[a] != side[b])
