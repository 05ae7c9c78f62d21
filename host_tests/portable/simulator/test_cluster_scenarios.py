"""Cluster scenarios written once against clusterfix.Cluster, run on every backend.

Each scenario_* function takes a cluster and uses only the fixture's
interface (host_tests/helpers/clusterfix.py). The test_* functions take no
arguments and build the cluster for raftnet.BACKEND, so:
  - pytest runs each on "core" and "engine" (host_tests/conftest.py
    parametrizes this module and prints the count per backend);
  - `micropython tools/mptest.py --backend engine <this file>` runs them on
    the engine under MicroPython (without --backend: on "core");
  - host_tests/ops/test_cluster_scenarios_processes.py runs a slow subset of
    the same functions against real MicroPython node processes.
"""
import clusterfix
import raftnet
from clusterfix import Unavailable


def _run(scenario):
    c = clusterfix.make(raftnet.BACKEND)
    try:
        scenario(c)
        c.check()
    finally:
        c.close()


def _followers(c, ld):
    return [i for i in c.ids if i != ld]


def _agree(c, what):
    """Wait until one leader leads every node and all applied the same index."""
    def same():
        ls = c.leaders()
        if len(ls) != 1 or len(c.views()) != len(c.ids):
            return False
        a = [c.applied(i) for i in c.ids]
        return min(a) == max(a)
    c.wait_until(same, what)


# -- the scenarios ----------------------------------------------------------------

def scenario_writes_survive_a_leader_crash(c):
    ld = c.wait_leader()
    for k in range(3):
        assert c.put("k%d" % k, "v%d" % k)
    c.crash(ld)
    new = c.wait_leader()
    assert new != ld
    for k in range(3):
        assert c.get("k%d" % k) == "v%d" % k
    assert c.put("after", "1")
    c.restart(ld)
    _agree(c, "the old leader rejoined")
    assert c.get("after") == "1"
    assert c.get("k0") == "v0"


def scenario_a_minority_cannot_acknowledge_writes(c):
    ld = c.wait_leader()
    assert c.put("x", "0")
    minority = [ld, _followers(c, ld)[0]]
    majority = [i for i in c.ids if i not in minority]
    c.partition(minority, majority)
    # The old leader takes the write but can never commit it.
    assert not c.put("x", "minority", via=ld, within=c.SHORT)
    assert not c.put("y", "minority", via=minority[1], within=c.SHORT)
    new = c.wait_leader()
    assert new in majority
    assert c.put("x", "majority")
    assert c.get("x") == "majority"
    c.heal()
    _agree(c, "everyone agrees after the heal")
    assert c.get("x") == "majority"
    assert c.get("y") is None


def scenario_reads_see_every_acknowledged_write(c):
    """Read-your-writes through leader changes: the first read a new leader
    serves includes the write the old one acknowledged just before it
    crashed (possibly before any follower heard it was committed)."""
    v = None
    for r in range(3):
        ld = c.wait_leader()
        for k in range(3):
            v = "r%d-%d" % (r, k)
            assert c.put("key", v)
            assert c.get("key") == v
        c.crash(ld)
        c.wait_leader()
        assert c.get("key") == v
        c.restart(ld)
    assert c.get("key") == v


_NP = 40


def _pv(k):
    return "v%02d-%s" % (k, "x" * 24)


def scenario_a_power_cut_of_every_node_keeps_acknowledged_writes(c):
    """Every node loses power, then all boot from what they made durable.
    The new leader applies the whole log again (in pages on the engine):
    its first read must wait until it applied up to the read index."""
    c.wait_leader()
    for k in range(_NP):
        assert c.put("p%02d" % k, _pv(k))
    c.power_cut(*c.ids)
    for i in c.ids:
        c.restart(i)
    # The first read, sent while they elect a leader, asks for the last write.
    assert c.get("p%02d" % (_NP - 1)) == _pv(_NP - 1)
    for k in range(_NP):
        assert c.get("p%02d" % k) == _pv(k)
    assert c.put("after", "cut")
    assert c.get("after") == "cut"


def scenario_a_restarted_follower_catches_up(c):
    ld = c.wait_leader()
    f = _followers(c, ld)[0]
    c.crash(f)
    for k in range(10):
        assert c.put("c%d" % k, "%d" % k)
    c.restart(f)
    # With only the leader, f and one more node up, every commit needs f:
    # the next write is acknowledged only once f's log matches the leader's.
    down = [i for i in c.ids if i not in (ld, f)][:2]
    for i in down:
        c.crash(i)
    assert c.put("needs", "f")
    lead = c.wait_leader()
    c.wait_until(lambda: c.applied(f) >= c.applied(lead), "the follower applied everything")
    for k in range(10):
        assert c.get("c%d" % k) == "%d" % k
    assert c.get("needs") == "f"
    for i in down:
        c.restart(i)
    _agree(c, "all five agree")


def scenario_an_isolated_leader_steps_down_and_its_write_is_not_done(c):
    old = c.wait_leader()
    assert c.put("k", "before")
    c.partition([old])
    assert not c.put("lost", "x", via=old, within=c.SHORT)
    new = c.wait_leader()
    assert new != old
    assert c.put("k", "after")
    # The old leader must not serve a read: its state is stale.
    try:
        v = c.get("k", via=old, within=c.SHORT)
    except Unavailable:
        pass
    else:
        assert False, "the isolated old leader %d served a read: %r" % (old, v)
    c.heal()
    c.wait_until(lambda: c.leaders() and old not in c.leaders() and len(c.leaders()) == 1,
                 "the old leader stepped down")
    _agree(c, "everyone agrees after the heal")
    assert c.get("lost") is None
    assert c.get("k") == "after"


# -- the tests: one per scenario, on raftnet.BACKEND ----------------------------------

def test_writes_survive_a_leader_crash():
    _run(scenario_writes_survive_a_leader_crash)


def test_a_minority_cannot_acknowledge_writes():
    _run(scenario_a_minority_cannot_acknowledge_writes)


def test_reads_see_every_acknowledged_write():
    _run(scenario_reads_see_every_acknowledged_write)


def test_a_power_cut_of_every_node_keeps_acknowledged_writes():
    _run(scenario_a_power_cut_of_every_node_keeps_acknowledged_writes)


def test_a_restarted_follower_catches_up():
    _run(scenario_a_restarted_follower_catches_up)


def test_an_isolated_leader_steps_down_and_its_write_is_not_done():
    _run(scenario_an_isolated_leader_steps_down_and_its_write_is_not_done)
