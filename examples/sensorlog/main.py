"""Sensor log: every board samples a sensor and replicates its readings.

A sensor task samples every 100 ms (an ADC where the board has one, a
made-up signal on the unix port) and keeps its period while the node
serves the cluster beside it as an asyncio task. Every second the board's
own code writes its latest reading to the replicated key-value store
under s<node id> (exactly once, through the leader); after SAMPLES writes
it says so, waits for a file /GO (the test harness makes it) and reads
every other board's latest reading back, linearizably.

Flash it: see examples/README.md. Console lines:
    sensorlog: wrote 10 last=10:4093 worst lateness 12 ms
    sensorlog: saw 2 10:2311
"""
import asyncio
import os
import time

import mpraft
from raftio import aio
from raftio.app import REGISTER, AppNode, Session
from raftkv import codec

SAMPLES = 10
PERIOD_MS = 100


class Sensor:
    def __init__(self, node_id):
        self.reading = 0
        self.count = 0
        self.worst = 0
        self.seed = node_id * 7919
        try:
            from machine import ADC
            self.adc = ADC(0)
        except (ImportError, ValueError, AttributeError, TypeError):
            self.adc = None

    def sample(self):
        if self.adc is not None:
            return self.adc.read_u16()
        self.seed = (self.seed * 1103515245 + 12345) & 0x7FFFFFFF
        return self.seed % 4096

    async def run(self):
        nxt = time.ticks_add(time.ticks_ms(), PERIOD_MS)
        while True:
            wait = time.ticks_diff(nxt, time.ticks_ms())
            await asyncio.sleep_ms(wait if wait > 0 else 0)
            late = time.ticks_diff(time.ticks_ms(), nxt)
            if late > self.worst:
                self.worst = late
            self.reading = self.sample()
            self.count += 1
            nxt = time.ticks_add(nxt, PERIOD_MS)


async def _go():
    while True:
        try:
            os.stat("GO")
            return
        except OSError:
            await asyncio.sleep_ms(50)


async def app(node, sensor):
    while not node.engine.core.lead:
        await asyncio.sleep_ms(20)
    s = Session(await aio.submit(node, REGISTER, forward=True, retries=50))
    key = b"s%d" % node.id
    last = b""
    for k in range(SAMPLES):
        await asyncio.sleep_ms(1000)
        last = b"%d:%d" % (k + 1, sensor.reading)
        res = await aio.submit(node, codec.encode_put(s.cid, s.next(), key, last),
                               forward=True, retries=50)
        if codec.decode_result(res)[0] != codec.OK:
            print("sensorlog: put refused", codec.decode_result(res))
    print("sensorlog: wrote %d last=%s worst lateness %d ms"
          % (SAMPLES, last.decode(), sensor.worst))
    await _go()
    for p in node.engine.core.voters:
        if p == node.id:
            continue
        res = await aio.submit(node, codec.encode_get(s.cid, 0, b"s%d" % p), forward=True,
                               retries=50)
        st, v = codec.decode_result(res)
        print("sensorlog: saw %d %s" % (p, v.decode() if st == codec.OK else "-"))
    print("sensorlog: done, sensor worst lateness %d ms over %d samples"
          % (sensor.worst, sensor.count))


async def main():
    node = mpraft.boot(make=AppNode)
    if node is None:
        return
    print("mpraft: node", node.id, "serving (sensorlog app)")
    sensor = Sensor(node.id)
    asyncio.create_task(aio.serve(node))
    asyncio.create_task(sensor.run())
    await app(node, sensor)
    while True:
        await asyncio.sleep_ms(1000)


asyncio.run(main())
