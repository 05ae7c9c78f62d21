"""raftio/console.py: a console task inspects a node while the node keeps serving.

Three nodes on loopback served by aio.serve in one event loop, a writer
task committing KV puts, and the console fed typed characters with pauses
between lines (as a person types). The committed index read through the
console grows between two of its lines: the nodes served while the
console waited for input. Runs under CPython and the MicroPython unix port.
"""
try:
    import asyncio
except ImportError:
    import uasyncio as asyncio

from raft.core import LEADER
from raftio import aio, console
from raftkv import codec

from test_inprocess_api import close, cluster


def test_run_line_values_statements_and_errors():
    out = []
    g = {}
    assert console.run_line("x = 6 * 7", g, out.append) is None
    assert console.run_line("x", g, out.append) == 42
    assert console.run_line("None", g, out.append) is None
    assert console.run_line("1 // 0", g, out.append) is None
    assert console.run_line("import nosuchmodule", g, out.append) is None
    assert console.run_line("x +", g, out.append) is None
    assert out[0] == "42\n", out
    assert out[1].startswith("ZeroDivisionError: "), out
    assert "Error: " in out[2] and "nosuchmodule" in out[2], out
    assert out[3].startswith("SyntaxError: "), out
    assert len(out) == 4, out


def _typed(chunks):
    # A person at the console: each chunk after a pause.
    it = iter(chunks)

    async def read():
        await asyncio.sleep(0.15)
        return next(it, "")
    return read


async def _writer(ld, state):
    cid = codec.decode_client_id(await aio.submit(ld, codec.encode_register(), retries=5))
    k = 0
    while not state["done"]:
        k += 1
        await aio.submit(ld, codec.encode_put(cid, k, b"k%d" % (k % 8), b"v%d" % k), retries=5)
        state["written"] = k


async def _main(nodes, g, out, state):
    for nd in nodes.values():
        asyncio.create_task(aio.serve(nd))
    ld = nodes[1]
    ld.engine.campaign()
    for _ in range(500):
        if ld.engine.core.role == LEADER:
            break
        await asyncio.sleep(0.01)
    assert ld.engine.core.role == LEADER
    w = asyncio.create_task(_writer(ld, state))
    await asyncio.sleep(0.2)
    # Typed with a CR LF, a backspace, a line in pieces, an error, Ctrl-D.
    await console.task(g, _typed(["a = node.engine.core.log.committed\r\n", "b = 1\x7f2\r",
                                  "c = node.engine.core", ".log.committed\r", "1 // 0\r",
                                  "c > a\r", "\x04"]), out.append)
    state["done"] = True
    await w
    for nd in nodes.values():
        nd.stop()
    await asyncio.sleep(0.05)


def test_console_runs_lines_while_the_nodes_serve():
    nodes = cluster(3, seed=5)
    g = {"node": nodes[1]}
    out = []
    state = {"done": False, "written": 0}
    try:
        asyncio.run(_main(nodes, g, out, state))
    finally:
        close(nodes)
    text = "".join(out)
    assert g["b"] == 2, g
    # Committed entries grew between two lines the console ran.
    assert g["c"] > g["a"] > 0, (g["a"], g["c"])
    assert "ZeroDivisionError: " in text and "\nTrue\n" in text, text
    assert text.count(console.PROMPT) == 6, text
    assert state["written"] > 5, state
