# mpraft: optional
"""A console task: inspect a node while it keeps serving.

micropython-lib's aiorepl idea in a few lines, for a board that runs its
node under asyncio (raftio/aio.py, examples/): the board's REPL blocks
everything else, so a person who types at it stops the node; this task
reads the console between the node's turns instead.

    asyncio.create_task(aio.serve(node))
    asyncio.create_task(console.task(globals()))   # then `await` your own tasks

It echoes what is typed and runs each line in g: an expression prints its
value, a statement runs, an error prints one line ("ZeroDivisionError:
divide by zero") and the console goes on. Ctrl-D ends it (the node goes
on serving). A line runs inside the event loop, so it must not block:
`mpraft.status()`, `node.engine.core.log.committed` or `mpraft.log(5)` are
quick; `time.sleep(5)` stops the node for 5 s, as anywhere in the loop.
Ctrl-C still raises KeyboardInterrupt in the loop (the board's UART does
that), which ends asyncio.run() into the plain REPL.

read: an async function returning what was typed next ("" at end of
input); default: asyncio's stream reader on sys.stdin (MicroPython).
"""
import sys

try:
    import asyncio
except ImportError:   # firmware before 1.21
    import uasyncio as asyncio

PROMPT = "--> "


def run_line(line, g, out=None):
    """Run one line in g. An expression writes its repr (None: nothing), a
    statement runs, an exception writes "Name: message". The value or None."""
    w = out or sys.stdout.write
    try:
        try:
            code = compile(line, "<console>", "eval")
        except SyntaxError:
            exec(compile(line, "<console>", "exec"), g)
            return None
        v = eval(code, g)
        if v is not None:
            w(repr(v) + "\n")
        return v
    except Exception as e:  # one line, and the console goes on
        w("%s: %s\n" % (type(e).__name__, e))
        return None


def stdin_reader():
    """An async read() of the board's console (one character at a time)."""
    s = asyncio.StreamReader(sys.stdin)

    async def read():
        return await s.read(1)
    return read


async def task(g, read=None, out=None):
    """Read lines with read() and run each in g until Ctrl-D or end of input."""
    read = read or stdin_reader()
    w = out or sys.stdout.write
    line = ""
    last = ""
    w(PROMPT)
    while True:
        data = await read()
        if not data:
            return
        if not isinstance(data, str):
            data = data.decode()
        for ch in data:
            if ch == "\x04":
                w("\n")
                return
            if ch == "\n" and last == "\r":
                pass  # a terminal's CR LF is one line end
            elif ch in "\r\n":
                w("\n")
                if line.strip():
                    run_line(line, g, w)
                line = ""
                w(PROMPT)
            elif ch in "\x08\x7f":
                if line:
                    line = line[:-1]
                    w("\x08 \x08")
            elif ch >= " ":
                line += ch
                w(ch)
            last = ch
