"""Keep the firmware's error messages on flash until an error is raised.

A string constant in a .mpy is a heap object once the module is imported:
16 bytes of header and its text rounded up to 16-byte blocks. The resident
firmware raised about a hundred distinct messages ("log: file %s is %d
bytes, expected %d; ..."), about 7 KB of a stock ESP32's heap spent on text
that is read only when something has gone wrong.

externalize(text, root) rewrites the merged resident module so that each
message of at least MIN_LEN characters inside a `raise` statement is read
from a message part when the raise runs:

    raise StorageError("log: file %s is %d bytes" % (p, n))
 -> raise StorageError(_msg(7, (p, n)))

and returns the parts, ROOT_msgK.py with the tuple M of up to PER_PART
messages each, so that reading one message loads at most a few hundred
bytes. `_msg` (added to the module) imports the part, takes the text, formats
it as the original `%` did, and drops the part from sys.modules again, so
nothing stays in RAM but the last message (kept, so an error raised again and
again, "log ring full" under overload, reads flash once). If the part cannot
be read (no memory left while raising, a board flashed without it), the
error still says which message it was: "error 7 of mpraft_msg: (p, n)", and
the build writes the numbered table beside the debug sources.

Only the resident module is rewritten: a lazy part is out of RAM until used.
The sources, CPython and the unmerged unix build are unchanged, so every
test of a message's text on the host still reads the text itself; the
merged build's tests (host_tests/board/test_firmware.py) check a message
read back through `_msg`.
CPython only (ast); used by tools/board/build.py.
"""
import ast

MIN_LEN = 16  # shorter strings are cheap (mpy-cross interns up to 10 chars as names)
PER_PART = 16
HELPER = "_msg"

_HELPER_SRC = '''

_msg_last = None


def _msg(i, *a):
    # Error message i, read from flash (%(root)s_msgK.mpy) when an error is
    # raised; see tools/board/messages.py in the project.
    global _msg_last
    if _msg_last is None or _msg_last[0] != i:
        try:
            import sys
            n = "%(root)s_msg%%d" %% (i // %(per)d)
            t = __import__(n).M[i %% %(per)d]
            del sys.modules[n]
        except Exception:
            return "error %%d of %(root)s_msg: %%r" %% (i, a)
        _msg_last = (i, t)
    return _msg_last[1] %% a[0] if a else _msg_last[1]
'''


def _offsets(text):
    """Byte offset of the start of each line (ast columns are UTF-8 bytes)."""
    starts = [0]
    for ln in text.encode("utf-8").splitlines(True):
        starts.append(starts[-1] + len(ln))
    return starts


def _span(node, starts):
    return (starts[node.lineno - 1] + node.col_offset,
            starts[node.end_lineno - 1] + node.end_col_offset)


def _is_message(node):
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)
            and len(node.value) >= MIN_LEN)


def externalize(text, root):
    """(rewritten text, {part file stem: source}, [messages in order]).
    A text without such messages comes back unchanged, with no parts."""
    tree = ast.parse(text)
    for n in ast.walk(tree):
        if ((isinstance(n, ast.Name) and n.id.startswith(HELPER))
                or (isinstance(n, ast.FunctionDef) and n.name.startswith(HELPER))):
            raise ValueError("%s: the name %s is taken; messages.py needs it" % (root, n.id
                             if isinstance(n, ast.Name) else n.name))
    starts = _offsets(text)
    edits = []  # (start, end, node, args node or None)
    for r in ast.walk(tree):
        if not isinstance(r, ast.Raise) or r.exc is None:
            continue
        inside_f = set()
        for n in ast.walk(r.exc):
            if isinstance(n, ast.JoinedStr):  # f-string pieces are not constants to move
                inside_f.update(id(x) for x in ast.walk(n))
        done = set()
        for n in ast.walk(r.exc):
            if (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod) and _is_message(n.left)
                    and id(n.left) not in inside_f):
                edits.append(_span(n, starts) + (n.left, n.right))
                done.add(id(n.left))
        for n in ast.walk(r.exc):
            if _is_message(n) and id(n) not in done and id(n) not in inside_f:
                edits.append(_span(n, starts) + (n, None))
    if not edits:
        return text, {}, []
    table = []
    index = {}
    for _, _, c, _ in sorted(edits, key=lambda e: e[0]):
        if c.value not in index:
            index[c.value] = len(table)
            table.append(c.value)
    data = text.encode("utf-8")
    for s, e, c, arg in sorted(edits, key=lambda e: -e[0]):
        if arg is None:
            new = "%s(%d)" % (HELPER, index[c.value])
        else:
            a0, a1 = _span(arg, starts)
            new = "%s(%d, %s)" % (HELPER, index[c.value], data[a0:a1].decode("utf-8"))
        data = data[:s] + new.encode("utf-8") + data[e:]
    out = data.decode("utf-8").rstrip("\n") + "\n" + _HELPER_SRC % {"root": root, "per": PER_PART}
    parts = {}
    for k in range(0, len(table), PER_PART):
        rows = "".join("    %r,\n" % m for m in table[k:k + PER_PART])
        parts["%s_msg%d" % (root, k // PER_PART)] = (
            "# Error messages %d..%d of %s (tools/board/messages.py).\nM = (\n%s)\n"
            % (k, min(k + PER_PART, len(table)) - 1, root, rows))
    return out, parts, table
