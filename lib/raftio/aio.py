# mpraft: optional
"""Run a node as an asyncio task, beside the application's own tasks.

    import asyncio
    from raftio import aio

    async def main(node):                      # node: a raftio.app.AppNode
        asyncio.create_task(aio.serve(node))
        print(await node.propose(b"..."))      # a Call is awaitable
        print(await node.read(b"..."))

The node is served by two cooperative parts: a receiver that sleeps until
the socket is readable and then handles every waiting datagram, and a
ticker that sleeps until the next tick is due (or yields at once while
the engine has work). Neither busy-waits, so a sensor task beside them
keeps its period. How the receiver waits:
  - MicroPython: asyncio has no UDP API, so it parks on the I/O queue that
    asyncio's own streams use (asyncio.core._io_queue.queue_read);
  - CPython: the event loop's add_reader.
Both run in the loop's one thread, so the node is never entered twice at
once; awaiting a Call parks the caller until the engine answers it (or the
ticker times it out). An exception while handling datagrams (a MemoryError
in the machine's apply, say) stops the node and serve() raises it, as
Node.run() would: a receiver that died on its own would leave a node that
looks alive and never hears another datagram.
"""
try:
    import asyncio
except ImportError:   # firmware before 1.21
    import uasyncio as asyncio

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from raftio.call import CallError
from raftio.wire import BAD_REQUEST

_MP = hasattr(asyncio, "sleep_ms")


def _sleep_ms(ms):
    if _MP:
        return asyncio.sleep_ms(ms)
    return asyncio.sleep(ms / 1000)


def _readable(sock):
    # MicroPython awaits a generator; this one parks the task on the I/O
    # queue until sock is readable (what asyncio.StreamReader.read does).
    yield asyncio.core._io_queue.queue_read(sock)


def _on_readable(node, failed):
    try:
        node.server.drain()
        node.engine.drive()
    except Exception as e:   # re-raised by serve(); the node must not half-run
        failed.append(e)
        node.stop()


async def _receiver(node, sock, failed):
    while not node.stopped:
        await _readable(sock)
        _on_readable(node, failed)


async def serve(node):
    """Serve node (a raftio.app.AppNode) until node.stop(); run it with
    asyncio.create_task. Raises what stopped the node if it was an error."""
    sock = node.transport.socket()
    rx = None
    loop = None
    failed = []
    if _MP:
        rx = asyncio.create_task(_receiver(node, sock, failed))
    else:
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), _on_readable, node, failed)
    eng = node.engine
    try:
        while not node.stopped:
            wait = eng.tick()
            node.calls.expire()   # an AppNode (raftio/app.py)
            if wait > 0:
                await _sleep_ms(wait)
            else:
                # Work pending (a Ready, a read batch): do it, then let the
                # other tasks run before the next round.
                eng.drive()
                await _sleep_ms(0)
    finally:
        if rx is not None:
            rx.cancel()
        if loop is not None:
            loop.remove_reader(sock.fileno())
    if failed:
        raise failed[0]


async def submit(node, cmd, timeout_ms=None, forward=False, retries=0, pause_ms=100):
    """Propose cmd; the machine's result bytes, or raises CallError. With
    retries > 0, a call that ended NOT_LEADER, BUSY, RETRY or TIMEOUT is
    sent again (the same bytes: a session command keeps its sequence number,
    so the machine applies it once) after pause_ms, up to retries times."""
    while True:
        c = node.propose(cmd, timeout_ms, forward)
        try:
            return await c
        except CallError:
            if retries <= 0 or c.code == BAD_REQUEST:
                raise
            retries -= 1
        await _sleep_ms(pause_ms)


async def read(node, query, timeout_ms=None, forward=False):
    """A linearizable read; the result bytes, or raises CallError."""
    return await node.read(query, timeout_ms, forward)
