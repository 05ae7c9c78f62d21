"""Boot-only code in a part that is dropped once the node runs.

A stock ESP32 keeps the firmware's bytecode in its heap. Constructors and
the checks run when the node boots (reading node.json, validating the
configuration, scanning the flash log, building the node's objects) are
several KB of it, and none of it runs again until the next boot.

A def whose line ends with `# mpraft: boot` (a method of a top-level class,
or a top-level function) moves, in the merged board build, into a module
MOD__boot per source module, which the merge puts in the lazy part
ROOT_boot (tools/board/merge.py). What stays in its place is a stub with the
same signature that imports the moved function and calls it:

    def __init__(self, fs, name, slots, slot_size, segment_bytes=_SEGMENT):
        from raftio.logfile__boot import _boot_LogFile___init__
        return _boot_LogFile___init__(self, fs, name, slots, slot_size, segment_bytes)

The firmware's boot() drops ROOT_boot from sys.modules once the node is
built, so the part's code is garbage under load; anything that calls a boot
function later (a second Node at the REPL) imports the part again. The
sources, CPython and the unmerged build are unchanged.

A marked def may not be decorated, nest a def or lambda (a closure kept by
the object would keep the whole part alive), use super(), rebind a global
(it would set the part's), hold a string token over several lines (it is
re-indented) or have its body on the def line; split(...) raises
BootPartError naming the module and line.
CPython only (ast); used by tools/board/build.py.
"""
import ast
import io
import tokenize

MARK = "# mpraft: boot"
PART = "boot"


class BootPartError(Exception):
    pass


def _top_names(tree):
    """Names the module binds at top level (defs, classes, assignments, imports)."""
    out = set()

    def walk(body):
        for s in body:
            if isinstance(s, (ast.FunctionDef, ast.ClassDef)):
                out.add(s.name)
            elif isinstance(s, ast.Assign):
                for t in s.targets:
                    out.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
            elif isinstance(s, (ast.AnnAssign, ast.AugAssign)):
                if isinstance(s.target, ast.Name):
                    out.add(s.target.id)
            elif isinstance(s, (ast.Import, ast.ImportFrom)):
                for a in s.names:
                    out.add(a.asname or a.name.split(".")[0])
            elif isinstance(s, (ast.If, ast.Try)):
                walk(s.body)
                walk(s.orelse)
                walk(getattr(s, "finalbody", ()))
                for h in getattr(s, "handlers", ()):
                    walk(h.body)
    walk(tree.body)
    return out


def _marked(lines, fn):
    return lines[fn.lineno - 1].rstrip().endswith(MARK)


def _check(name, fn, strings):
    where = "%s line %d" % (name, fn.lineno)
    body0 = fn.body[0]
    doc_end = body0.end_lineno if isinstance(body0, ast.Expr) and isinstance(
        body0.value, ast.Constant) else 0
    for t in strings:
        if t.start[0] != t.end[0] and doc_end < t.start[0] and fn.lineno <= t.start[0] <= fn.end_lineno:
            raise BootPartError("%s: a `%s` def cannot hold a string token over several lines "
                                "(line %d; re-indenting would change it)" % (where, MARK, t.start[0]))
    if fn.decorator_list:
        raise BootPartError("%s: a `%s` def cannot be decorated" % (where, MARK))
    for n in ast.walk(fn):
        if n is not fn and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                          ast.ClassDef)):
            raise BootPartError("%s: a `%s` def cannot nest a def, class or lambda (line %d)"
                                % (where, MARK, n.lineno))
        if isinstance(n, (ast.Global, ast.Nonlocal)):
            raise BootPartError("%s: a `%s` def cannot rebind globals (line %d): moved, it "
                                "would set the boot part's" % (where, MARK, n.lineno))
        if isinstance(n, ast.Name) and n.id in ("super", "__class__"):
            raise BootPartError("%s: a `%s` def cannot use %s" % (where, MARK, n.id))
    if fn.body[0].lineno == fn.lineno:
        raise BootPartError("%s: a `%s` def needs its body on the lines below" % (where, MARK))
    if isinstance(fn, ast.AsyncFunctionDef):
        raise BootPartError("%s: a `%s` def cannot be async" % (where, MARK))


def _call_args(a):
    out = [x.arg for x in a.posonlyargs + a.args]
    if a.vararg:
        out.append("*" + a.vararg.arg)
    out += ["%s=%s" % (x.arg, x.arg) for x in a.kwonlyargs]
    if a.kwarg:
        out.append("**" + a.kwarg.arg)
    return ", ".join(out)


def _bare_signature(fn, new_name):
    """`def NEW(params):` with no defaults: the stub always passes every argument."""
    a = fn.args
    bare = ast.arguments(posonlyargs=a.posonlyargs, args=a.args, vararg=a.vararg,
                         kwonlyargs=a.kwonlyargs, kw_defaults=[None] * len(a.kwonlyargs),
                         kwarg=a.kwarg, defaults=[])
    stub = ast.FunctionDef(name=new_name, args=bare, body=[ast.Pass()], decorator_list=[],
                           returns=None, type_comment=None)
    return ast.unparse(ast.fix_missing_locations(stub)).split("\n")[0]


def split(name, text):
    """(text with stubs, boot module source or None) for module `name`."""
    if MARK not in text:  # (a quick test; marks are checked below)
        return text, None
    tree = ast.parse(text)
    lines = text.splitlines(True)
    found = []  # (def node, class name or None)
    for s in tree.body:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and _marked(lines, s):
            found.append((s, None))
        elif isinstance(s, ast.ClassDef):
            for f in s.body:
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and _marked(lines, f):
                    found.append((f, s.name))
    marks = sum(1 for ln in lines if ln.rstrip().endswith(MARK))
    if marks != len(found):
        raise BootPartError("%s: `%s` marks %d lines but only %d are the def line of a "
                            "top-level function or a method of a top-level class"
                            % (name, MARK, marks, len(found)))
    if not found:
        return text, None
    strings = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
               if t.type == tokenize.STRING]
    top = _top_names(tree)
    boot_mod = name + "__boot"
    moved = []
    uses = set()
    edits = []  # (first line index, last line index + 1, replacement lines)
    for fn, cls in found:
        _check(name, fn, strings)
        new = "_boot_%s_%s" % (cls, fn.name) if cls else "_boot_%s" % fn.name
        body0 = fn.body[0]
        if (isinstance(body0, ast.Expr) and isinstance(body0.value, ast.Constant)
                and isinstance(body0.value.value, str) and len(fn.body) > 1):
            body0 = fn.body[1]  # the docstring stays with the stub
            doc = lines[fn.body[0].lineno - 1:fn.body[0].end_lineno]
        else:
            doc = []
        first, body_at, end = fn.lineno - 1, body0.lineno - 1, fn.end_lineno
        ind = lines[first][:len(lines[first]) - len(lines[first].lstrip())]
        inner = ind + "    "
        head = lines[first:fn.body[0].lineno - 1]
        head[0] = head[0].replace(MARK, "# (body in the boot part, tools/board/bootpart.py)")
        stub = head + doc + [
            "%sfrom %s import %s\n" % (inner, boot_mod, new),
            "%sreturn %s(%s)\n" % (inner, new, _call_args(fn.args)),
        ]
        edits.append((first, end, stub))
        body = "".join("    " + ln[len(inner):] if ln.startswith(inner) else ln
                       for ln in lines[body_at:end])
        moved.append("\n\n%s\n%s" % (_bare_signature(fn, new), body))
        uses.update(n.id for n in ast.walk(fn) if isinstance(n, ast.Name))
    for first, end, stub in sorted(edits, reverse=True):
        lines[first:end] = stub
    src_lines = text.splitlines(True)
    imports = ["".join(src_lines[s.lineno - 1:s.end_lineno]) for s in tree.body
               if isinstance(s, (ast.Import, ast.ImportFrom))]
    own = sorted((uses & top) - set(_imported(tree)))
    src = "# Boot-only code of %s (tools/board/bootpart.py).\n" % name
    src += "".join(imports)
    if own:
        src += "from %s import %s\n" % (name, ", ".join(own))
    src += "".join(moved)
    return "".join(lines), src


def _imported(tree):
    out = []
    for s in tree.body:
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            out += [a.asname or a.name.split(".")[0] for a in s.names]
    return out
