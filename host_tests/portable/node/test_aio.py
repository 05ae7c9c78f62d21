"""Nodes as asyncio tasks (raftio/aio.py) beside an application task.

Three nodes on loopback, each served by aio.serve in one event loop (the
unix port's asyncio under MicroPython, CPython's otherwise), while a
"sensor" task wakes every 100 ms and application tasks commit 1,000 KV
writes with `await node.submit(...)` and read them back with
`await node.read(...)`. The sensor's worst lateness is printed (a figure,
not a pass mark: timing belongs to benchmarks); the test checks that it
kept running (no starvation) and that every write committed exactly once.
"""
try:
    import asyncio
except ImportError:
    import uasyncio as asyncio

from raft.core import LEADER
from raftio import aio, clock
from raftio.call import CallError
from raftkv import codec

from test_inprocess_api import close, cluster

WRITES = 1000
WRITERS = 8
PERIOD_MS = 100
KEYS = 16


async def _sensor(state):
    nxt = clock.ticks_add(clock.ticks_ms(), PERIOD_MS)
    while not state["done"]:
        wait = clock.ticks_diff(nxt, clock.ticks_ms())
        await asyncio.sleep(wait / 1000 if wait > 0 else 0)
        late = clock.ticks_diff(clock.ticks_ms(), nxt)
        state["lates"].append(late)
        if late > state["worst"]:
            state["worst"] = late
        state["samples"] += 1
        nxt = clock.ticks_add(nxt, PERIOD_MS)


async def _writer(ld, w, n, state):
    # A call may time out (a snapshot's collection stalls all three nodes in
    # this one process): resend the same bytes, which the session applies once.
    cid = codec.decode_client_id(await aio.submit(ld, codec.encode_register(), retries=5))
    for k in range(n):
        # 16 keys per writer: three KV stores of 1,000 keys each in one
        # MicroPython heap fragment it (a dict resize of ~20 KB failed).
        key = b"w%dk%d" % (w, k % KEYS)
        res = await aio.submit(ld, codec.encode_put(cid, k + 1, key, b"v%d" % k), retries=5)
        assert codec.decode_result(res)[0] == codec.OK
        state["written"] += 1
    got = await ld.read(codec.encode_get(cid, 0, b"w%dk%d" % (w, (n - 1) % KEYS)))
    assert codec.decode_result(got) == (codec.OK, b"v%d" % (n - 1))


async def _main(nodes, state):
    for nd in nodes.values():
        asyncio.create_task(aio.serve(nd))
    sensor = asyncio.create_task(_sensor(state))
    ld = nodes[1]
    ld.engine.campaign()
    for _ in range(500):
        if ld.engine.core.role == LEADER:
            break
        await asyncio.sleep(0.01)
    assert ld.engine.core.role == LEADER
    # A follower refuses in-process, naming the leader.
    try:
        await nodes[2].submit(codec.encode_register())
        assert False, "a follower accepted a write"
    except CallError as e:
        assert e.leader == 1, str(e)
    start = clock.ticks_ms()
    tasks = [asyncio.create_task(_writer(ld, w, WRITES // WRITERS, state))
             for w in range(WRITERS)]
    for t in tasks:
        await t
    state["ms"] = clock.ticks_diff(clock.ticks_ms(), start)
    state["done"] = True
    await sensor
    for nd in nodes.values():
        nd.stop()
    await asyncio.sleep(0.05)


def test_nodes_serve_as_tasks_beside_a_sensor():
    nodes = cluster(3, seed=7)
    state = {"done": False, "worst": 0, "samples": 0, "written": 0, "ms": 0, "lates": []}
    try:
        asyncio.run(_main(nodes, state))
    finally:
        close(nodes)
    assert state["written"] == WRITES
    assert all(nd.machine.session_count() == WRITERS for nd in nodes.values() if nd.machine)
    expected = state["ms"] // PERIOD_MS
    # The sensor was not starved: at least half its periods ran.
    assert state["samples"] >= expected // 2, state
    print("aio: %d writes in %d ms beside a %d ms task: %d samples, worst lateness %d ms"
          % (WRITES, state["ms"], PERIOD_MS, state["samples"], state["worst"]))
    print("aio: sensor lateness by period (ms): %s" % state["lates"])


class _Boom(Exception):
    pass


async def _serve_until_failure(nodes, out):
    # Node 2 fails on the first datagram it handles (node 1's heartbeat or
    # vote request): serve(node 2) must end with that error, not keep a
    # node that looks alive and never receives again.
    def boom():
        raise _Boom("drain failed")
    nodes[2].server.drain = boom
    t1 = asyncio.create_task(aio.serve(nodes[1]))
    t2 = asyncio.create_task(aio.serve(nodes[2]))
    nodes[1].engine.campaign()
    try:
        await asyncio.wait_for(t2, 5)
        out["result"] = "returned"
    except _Boom as e:
        out["result"] = "raised: %s" % e
    except asyncio.TimeoutError:
        out["result"] = "still serving after 5 s"
    out["stopped"] = nodes[2].stopped
    nodes[1].stop()
    await t1


def test_a_failure_in_the_receiver_stops_serve_and_is_raised():
    nodes = cluster(2, seed=3)
    out = {}
    try:
        asyncio.run(_serve_until_failure(nodes, out))
    finally:
        close(nodes)
    assert out["result"] == "raised: drain failed", out
    assert out["stopped"], out
