"""Safety checker for the lock service (lib/raftapp/lock.py) in the simulator.

It reads the committed log in index order, with each entry's result, and
keeps its own model of log time (the sum of the committed ADVANCE ticks) and
of every grant. It shares the lock's command format, not its logic. Rules,
each a violation when broken:

1. Mutual exclusion by fencing-token order. Grants of one lock, ordered by
   token, occupy disjoint intervals of log time: a grant's interval is
   [log time of the grant, min(expiry as last renewed, log time of its
   release)), and a new grant starts no earlier than the previous grant's
   interval ends. So at no log time do two holders of one lock exist.
2. Tokens grow: every new grant's token is larger than every token granted
   before (for any lock), and its expiry is its log time plus the lease asked.
3. A holder's operations are accepted only with the current token: an OK
   RENEW, RELEASE or CHECK names the lock's live grant (its token, its
   holder, log time before its end); an OK re-ACQUIRE by the holder keeps
   its token. HELD is answered only while some grant is live, naming it.
4. What clients were told is the log's: a grant a client saw acknowledged
   (``client_grant``) is one the log made, to that client, for that lock.

Entries are fed once each (``entry``), in index order, with ``executed``
false for the session layer's cached duplicates and refusals (they repeat or
precede an execution, so they carry no new fact). The checker keeps the last
_KEEP grants per lock and tokens, which bounds its memory in long runs.
"""
import struct

from raftapp import lock as L
from raftapp.session import OK, decode_result
from raft.errors import DecodeError

_KEEP = 64


class LockChecker:
    def __init__(self):
        self.now = 0
        self.top = 0             # largest token granted so far
        # name -> [token, holder, start, end, released]: the newest grant
        self.cur = {}
        # token -> (name, holder, expiry): recent grants, for client_grant
        self.grants = {}
        self.violations = []
        self.n = {"grants": 0, "extends": 0, "renews": 0, "releases": 0, "checks": 0,
                  "held": 0, "refused": 0, "advances": 0, "client_grants": 0}

    def fail(self, what):
        if len(self.violations) < 5:
            self.violations.append(what)

    def _live(self, g):
        return g is not None and not g[4] and self.now < g[3]

    def entry(self, index, data, result, executed):
        """The committed entry at index applied with result (bytes or None)."""
        if not executed or result is None or not data or len(data) < 9:
            return
        try:
            op, token, lease, name = L._decode(data)
            st, val = decode_result(result)
        except DecodeError:
            return
        cid = struct.unpack_from("<I", data, 1)[0]
        if op == L.ADVANCE:
            if st == OK:
                self.now += lease
                self.n["advances"] += 1
                got = struct.unpack("<I", val)[0] if val is not None and len(val) == 4 else -1
                if got != self.now:
                    self.fail("entry %d: ADVANCE says now %d, the log's time is %d"
                              % (index, got, self.now))
            return
        if op == L.QUERY:
            return
        g = self.cur.get(name)
        if op == L.ACQUIRE:
            if st == OK:
                t, e = struct.unpack("<II", val)
                if self._live(g) and g[0] == t and g[1] == cid:
                    self.n["extends"] += 1
                    g[3] = e
                    return
                self._grant(index, name, cid, t, e, lease, g)
            elif st == L.HELD:
                self.n["held"] += 1
                t = struct.unpack("<II", val)[0] if val is not None and len(val) == 8 else -1
                if not self._live(g) or g[0] != t:
                    self.fail("entry %d: lock %r answered HELD (token %d) but no grant is live"
                              % (index, name, t))
            return
        if st != OK:
            self.n["refused"] += 1
            return
        if not self._live(g) or g[0] != token or g[1] != cid:
            self.fail("entry %d: %s of lock %r by client %d with token %d accepted, but the "
                      "live grant is %r at log time %d"
                      % (index, ("?", "?", "?", "RENEW", "RELEASE", "CHECK")[op], name, cid,
                         token, g, self.now))
            return
        if op == L.RENEW:
            self.n["renews"] += 1
            g[3] = struct.unpack("<II", val)[1]
            if g[3] != self.now + lease:
                self.fail("entry %d: renewed to %d, not log time %d + lease %d"
                          % (index, g[3], self.now, lease))
        elif op == L.RELEASE:
            self.n["releases"] += 1
            g[4] = True
        else:
            self.n["checks"] += 1

    def _grant(self, index, name, cid, t, e, lease, prev):
        self.n["grants"] += 1
        if t <= self.top:
            self.fail("entry %d: lock %r granted token %d, not above %d granted before"
                      % (index, name, t, self.top))
        if self._live(prev):
            self.fail("entry %d: lock %r granted to client %d (token %d) at log time %d while "
                      "client %d holds token %d until %d: two holders at once"
                      % (index, name, cid, t, self.now, prev[1], prev[0], prev[3]))
        if e != self.now + lease:
            self.fail("entry %d: lock %r expiry %d, not log time %d + lease %d"
                      % (index, name, e, self.now, lease))
        if t > self.top:
            self.top = t
        self.cur[name] = [t, cid, self.now, e, False]
        gs = self.grants
        gs[t] = (name, cid)
        if len(gs) > _KEEP * 4:
            for k in sorted(gs)[:_KEEP]:
                del gs[k]

    def client_grant(self, cid, name, token):
        """A client was told OK for ACQUIRE of name with token."""
        self.n["client_grants"] += 1
        g = self.grants.get(token)
        if g is None:
            if token > self.top or token > min(self.grants or [0]):
                self.fail("client %d was granted %r with token %d, which the log never granted"
                          % (cid, name, token))
            return
        if g != (name, cid):
            self.fail("client %d was granted %r with token %d; the log granted that token to "
                      "client %d for %r" % (cid, name, token, g[1], g[0]))
