"""raftio/show.py: the REPL's tables (firmware/mpraft.py's status(), peers(),
log(n), events(n)) on a live in-process cluster, both interpreters."""
from raft.core import LEADER
from raftio import show
from raftkv import codec

from test_inprocess_api import close, cluster, pump


def _printed(fn, *args):
    rows = []
    fn(*(args + (lambda *a: rows.append(" ".join(str(x) for x in a)),)))
    return rows


def test_tables_on_leader_and_follower():
    nodes = cluster(3)
    try:
        pump(nodes, lambda: any(n.engine.core.role == LEADER for n in nodes.values()))
        lead = [n for n in nodes.values() if n.engine.core.role == LEADER][0]
        follower = [n for n in nodes.values() if n is not lead][0]
        lead.engine.propose(codec.encode_register())
        pump(nodes, lambda: follower.engine.core.log.committed >= 2)
        rows = _printed(show.peers, lead)
        assert rows[0].split() == ["peer", "match", "next", "state", "inflight"]
        assert len(rows) == 4 and "self" in rows[1 + sorted(lead.engine.core.prs).index(lead.id)]
        assert _printed(show.peers, follower) == [
            "follower of %d; replication state is the leader's" % lead.id]
        last = _printed(show.log, lead, 1)
        assert last[-1].split()[2] == "register", last
        table = _printed(show.status, lead)
        assert any(r.split()[0] == "role" for r in table), table
        ev = _printed(show.events, lead, 3)
        assert 0 < len(ev) <= 3 and "term" in ev[-1], ev
    finally:
        close(nodes)
