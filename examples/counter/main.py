"""Replicated counter: the board's own code adds to a counter every board shares.

Each board adds its node id once (through the leader, exactly once even if
the call is retried), then waits for a file /GO (the test harness makes it;
on a real board, press on with a button or a timer) and reads the total
linearizably. Meanwhile the node serves the cluster as an asyncio task, and
a blink task toggles the LED where the board has one.

Flash it: see examples/README.md. Console lines:
    counter: added 3 (value now 6)
    counter: final 15
"""
import asyncio
import os

import mpraft
from raftapp import counter
from raftio import aio
from raftio.app import REGISTER, AppNode, Session


async def _leader_known(node):
    while not node.engine.core.lead:
        await asyncio.sleep_ms(20)


async def _go():
    while True:
        try:
            os.stat("GO")
            return
        except OSError:
            await asyncio.sleep_ms(50)


async def blink():
    try:
        from machine import Pin
        led = Pin(2, Pin.OUT)
    except (ImportError, ValueError, AttributeError):
        led = None   # no LED here (the unix port): keep the rhythm anyway
    on = 0
    while True:
        on ^= 1
        if led is not None:
            led.value(on)
        await asyncio.sleep_ms(250)


async def app(node):
    await _leader_known(node)
    s = Session(await aio.submit(node, REGISTER, forward=True, retries=50))
    me = node.id
    res = await aio.submit(node, counter.encode_add(s.cid, s.next(), me), forward=True,
                           retries=50)
    print("counter: added %d (value now %d)" % (me, counter.decode_value(res)))
    await _go()
    res = await aio.submit(node, counter.encode_get(), forward=True, retries=50)
    print("counter: final %d" % counter.decode_value(res))


async def main():
    node = mpraft.boot(machine=counter.machine(), make=AppNode)
    if node is None:
        return
    print("mpraft: node", node.id, "serving (counter app)")
    asyncio.create_task(aio.serve(node))
    asyncio.create_task(blink())
    await app(node)
    while True:   # keep serving the cluster
        await asyncio.sleep_ms(1000)


asyncio.run(main())
