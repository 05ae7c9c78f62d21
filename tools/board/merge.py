"""Merge the firmware's modules into one module, for the board build.

Every .mpy stores, once per file, the name of each global, attribute and
function it uses; across the firmware's ~30 modules the same names (term,
index, commit, ...) were stored again and again, about a tenth of the
firmware. One module stores each once, and constants (`X = const(n)`) defined
in one module fold into every other module that uses them.

merge(modules) takes [(module name, source)] (for example ("raft.core", ...),
("raftkv", <raftkv/__init__.py>), ("mpraft", ...)) and returns one source in
which:

- internal imports (`from raft.log import RaftLog`, `from raft import msg as
  M`, `import raft.msg as M`, also inside functions) are gone, because every
  module's globals now live in one namespace;
- `M.attr`, where M is an imported internal module, reads the global `attr`;
- a global defined by two modules (HEADER in frame and logfile) keeps its
  name in the first and becomes NAME_<module> in the others, renamed in its
  module and in every module that imports it;
- modules come in import order (a module's top-level imports first).

Anything it cannot rewrite safely raises MergeError with the module and line:
`from x import *`, an internal `import a.b` without `as`, a module alias used
other than as `alias.attr` (passed around, assigned to), an attribute a
module does not define, an import cycle at top level, or a renamed global
that some function also uses as a local name. The result is then checked:
every global any function or class reads must be defined at top level or be a
builtin, so a rename that missed a use fails the build, not the board.

Lazy parts: merge_parts(modules, lazy, root) takes lazy = {module name:
part name} and returns {"": the resident module, part: source, ...}, one
module per part (built as ROOT.mpy and ROOT_PART.mpy). A function-level
import from a module of another part (`from raft.membership import
propose_conf_change` inside a method) becomes an import of that part's
module (`from mpraft_conf import propose_conf_change`), run on first use.
Each part reads the other parts' constants by copying their definitions (a
const folds into the bytecode) and every other global of the resident
module by `from ROOT import ...` at its top; the resident module may read
nothing else of a lazy part (MergeError), nor rebind (`global`) a name a
lazy part copies.
CPython only (ast, symtable); used by tools/board/build.py.
"""
import ast
import builtins
import symtable


class MergeError(Exception):
    pass


# Names MicroPython provides that CPython's builtins lack.
_MP_BUILTINS = frozenset(("const",))


def _local_names(src, name):
    """Names some function or class in src binds locally (parameters included)."""
    out = set()

    def walk(t):
        for c in t.get_children():
            if c.get_type() in ("function", "class"):
                for s in c.get_symbols():
                    if s.is_local() or s.is_parameter():
                        out.add(s.get_name())
            walk(c)

    walk(symtable.symtable(src, name, "exec"))
    return out


class _Module:
    def __init__(self, name, src):
        self.name = name
        self.src = src
        try:
            self.tree = ast.parse(src)
        except SyntaxError as e:
            raise MergeError("%s line %s: %s" % (name, e.lineno, e.msg))
        self.bindings = {}   # top-level name -> ("own",) | ("ext", stmt) | ("name", mod, attr) | ("mod", mod)
        self.aliases = {}    # local alias -> internal module it names (any scope)
        self.imports = []    # internal import statements (any scope), to remove
        self.deps = []       # internal modules imported at top level
        self.locals = _local_names(src, name)
        self.defs = set()    # ids of the def/class statements that bind top-level names
        self.inner = []      # (node, local, (module, attr)): imports inside functions


def _collect(m, internal):
    top = set()   # imports run at import time (not inside a def or class)
    todo = list(m.tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            top.add(id(node))
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                   ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    m.top = top

    def bind(node, local, what):
        # Function-level imports bind locals; after the merge they read the
        # global of the same target, so they need the same local name.
        if id(node) in top:
            m.bindings[local] = what
        else:
            m.inner.append((node, local, what[1:]))

    for node in ast.walk(m.tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                raise MergeError("%s line %d: relative import" % (m.name, node.lineno))
            src = node.module or ""
            if src not in internal:
                if id(node) in top:
                    for a in node.names:
                        m.bindings[a.asname or a.name] = ("ext", src + "." + a.name)
                continue
            m.imports.append(node)
            # `from pkg import submodule` needs the submodule, not pkg/__init__.
            if (id(node) in top and src not in m.deps
                    and any(src + "." + a.name not in internal for a in node.names)):
                m.deps.append(src)
            for a in node.names:
                if a.name == "*":
                    raise MergeError("%s line %d: from %s import *" % (m.name, node.lineno, src))
                local = a.asname or a.name
                sub = src + "." + a.name
                if sub in internal:
                    m.aliases[local] = sub
                    if id(node) in top and sub not in m.deps:
                        m.deps.append(sub)
                else:
                    bind(node, local, ("name", src, a.name))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in internal or a.name.split(".")[0] in internal:
                    if not a.asname:
                        raise MergeError("%s line %d: `import %s` needs `as NAME` (or use from "
                                         "... import)" % (m.name, node.lineno, a.name))
                    if node not in m.imports:
                        m.imports.append(node)
                    m.aliases[a.asname] = a.name
                    if id(node) in top and a.name not in m.deps:
                        m.deps.append(a.name)
                elif id(node) in top:
                    m.bindings[a.asname or a.name.split(".")[0]] = ("ext", a.name)
    for stmt in m.tree.body:
        _own(m, stmt)


def _own(m, stmt):
    """Record names the module defines at top level (also inside if/try)."""
    names = []
    if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
        names = [stmt.name]
        m.defs.add(id(stmt))
    elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for t in targets:
            names += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
    elif isinstance(stmt, (ast.If, ast.Try, ast.For, ast.While, ast.With)):
        for field in ("body", "orelse", "finalbody"):
            for s in getattr(stmt, field, ()):
                _own(m, s)
        for h in getattr(stmt, "handlers", ()):
            for s in h.body:
                _own(m, s)
    for n in names:
        b = m.bindings.get(n)
        if b is not None and b[0] == "ext":
            # `try: from micropython import const / except: def const`: the
            # fallback stands for the import.
            continue
        m.bindings[n] = ("own",)


def _order(mods):
    out, state = [], {}

    def visit(name, path):
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise MergeError("import cycle at top level: " + " -> ".join(path + [name]))
        state[name] = 1
        for d in mods[name].deps:
            if d in mods:
                visit(d, path + [name])
        state[name] = 2
        out.append(name)

    for name in mods:
        visit(name, [])
    return out


def _key(mods, mod, name, seen=()):
    """What a module's top-level name stands for: ("own", module, name) or ("ext", what)."""
    b = mods[mod].bindings.get(name)
    if b is None:
        return None
    if b[0] == "own":
        return ("own", mod, name)
    if b[0] == "ext":
        return b
    if b[0] == "name":
        if (mod, name) in seen or b[1] not in mods:
            return None
        return _key(mods, b[1], b[2], seen + ((mod, name),))
    return None


def _prepare(modules, root=None):
    mods = dict((n, _Module(n, s)) for n, s in modules)
    internal = set(mods)
    for n in list(internal):
        if n.endswith(".__init__"):
            raise MergeError("pass packages by name (%s), not as __init__" % n)
    for m in mods.values():
        _collect(m, internal)
    order = _order(mods)

    # Final global names: externals first (they keep theirs), then the root
    # module's (what a person types at the REPL: mpraft.status must stay
    # status), then definitions in import order; a clash renames the later
    # definition.
    final = {}
    taken = {}
    first = [root] if root in mods else []
    for want in (("ext",), ("own",)):
        for mn in (order if want[0] == "ext" else first + [x for x in order if x != root]):
            m = mods[mn]
            for n in sorted(m.bindings):
                k = _key(mods, mn, n)
                if k is None or k[0] != want[0] or k in final:
                    continue
                new = n
                if taken.get(new, k) != k:
                    if k[0] == "ext":
                        raise MergeError("%s: %s is %s here and something else elsewhere"
                                         % (mn, n, k[1]))
                    base = "%s_%s" % (n, mn.split(".")[-1])
                    new, i = base, 2
                    while new in taken:
                        new, i = "%s%d" % (base, i), i + 1
                final[k] = new
                taken[new] = k

    return mods, order, final


def merge(modules):
    mods, order, final = _prepare(modules)
    parts = []
    for mn in order:
        parts.append("# --- %s ---\n" % mn)
        parts.append(_rewrite(mods, mods[mn], final))
    merged = "".join(parts)
    _check_defined(merged)
    return merged


def merge_parts(modules, lazy, root):
    """The modules merged into one resident module and one per lazy part:
    {"": resident source, part: source}. lazy: {module name: part name};
    the part's module is ROOT_PART (see the module docstring)."""
    mods, order, final = _prepare(modules, root)
    for n in lazy:
        if n not in mods:
            raise MergeError("lazy module %s is not among the modules" % n)
    part_of = dict((mn, lazy.get(mn, "")) for mn in mods)
    modname = dict((p, root + "_" + p if p else root) for p in set(part_of.values()))
    texts = {}
    for p in sorted(modname):
        chunks = []
        for mn in order:
            if part_of[mn] == p:
                chunks.append("# --- %s ---\n" % mn)
                chunks.append(_rewrite(mods, mods[mn], final, part_of, modname))
        texts[p] = "".join(chunks)
    owner = {}
    for k, new in final.items():
        if k[0] == "own":
            owner[new] = k
    consts = {}
    for p, text in texts.items():
        consts.update(_const_defs(text))
    rebound = _rebound(texts[""])
    out = {}
    for p, text in texts.items():
        head_consts = []
        imports = {}
        todo = sorted(_missing(text))
        seen = set()
        while todo:
            n = todo.pop(0)
            if n in seen:
                continue
            seen.add(n)
            k = owner.get(n)
            if k is None:
                raise MergeError("merged part %s reads undefined global %s" % (p or "resident", n))
            q = part_of[k[1]]
            if q == p:
                raise MergeError("%s: %s is read before it is defined" % (k[1], n))
            if n in consts:
                head_consts.append(n)
                todo.extend(sorted(consts[n][1]))
            elif not p:
                raise MergeError("%s reads %s of lazy part %s (%s) outside a function-level "
                                 "import; import it inside the function that uses it"
                                 % (_reader(text, n), n, q, k[1]))
            elif n in rebound:
                raise MergeError("lazy part %s reads %s, which the resident module rebinds "
                                 "(global %s): a copy would go stale" % (p, n, n))
            else:
                imports.setdefault(modname[q], []).append(n)
        head = ""
        if head_consts and "const" not in _defined(text):
            # CPython needs the name (MicroPython's compiler folds const itself).
            head += ("try:\n    from micropython import const\nexcept ImportError:\n"
                     "    def const(x):\n        return x\n")
        # Definitions in the order their owners define them: a const may use an earlier one.
        for n in sorted(head_consts, key=lambda c: consts[c][2]):
            head += consts[n][0] + "\n"
        for mod in sorted(imports):
            head += "from %s import %s\n" % (mod, ", ".join(sorted(imports[mod])))
        out[p] = head + text
        _check_defined(out[p])
    return out


def _reader(text, name):
    """Where text reads global name: "module, function NAME" (for errors)."""
    hits = []

    def walk(t):
        for sym in t.get_symbols():
            if sym.get_name() == name and sym.is_referenced() and (
                    sym.is_global() or t.get_type() == "module"):
                hits.append(t)
        for c in t.get_children():
            walk(c)

    walk(symtable.symtable(text, "merged", "exec"))
    if not hits:
        return "the resident module"
    t = hits[0]
    mod = "?"
    for ln in text.splitlines()[:t.get_lineno()]:
        if ln.startswith("# --- ") and ln.endswith(" ---"):
            mod = ln[6:-4]
    return "%s, %s" % (mod, "top level" if t.get_type() == "module" else t.get_name())


def _const_defs(text):
    """{name: (definition line, names its value reads, position)} of the
    top-level `NAME = const(...)` statements in text."""
    out = {}
    tree = ast.parse(text)
    for i, node in enumerate(tree.body):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "const"):
            reads = set(n.id for n in ast.walk(node.value.args[0]) if isinstance(n, ast.Name))
            out[node.targets[0].id] = ("%s = const(%s)" % (
                node.targets[0].id, ast.get_source_segment(text, node.value.args[0])),
                reads, (id(text), node.lineno))
    return out


def _rebound(text):
    """Names some function of text declares global (and so may rebind)."""
    return set(n for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Global)
               for n in node.names)


def _defined(src):
    table = symtable.symtable(src, "merged", "exec")
    return set(s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported())


def _missing(src):
    """Globals src reads but does not define (builtins and const aside)."""
    try:
        table = symtable.symtable(src, "merged", "exec")
    except SyntaxError as e:
        raise MergeError("merged source line %s: %s" % (e.lineno, e.msg))
    defined = set(s.get_name() for s in table.get_symbols()
                  if s.is_assigned() or s.is_imported())
    known = defined | set(dir(builtins)) | _MP_BUILTINS
    missing = set()

    def walk(t):
        for s in t.get_symbols():
            if s.is_referenced() and (s.is_global() or t.get_type() == "module") \
                    and s.get_name() not in known:
                missing.add(s.get_name())
        for c in t.get_children():
            walk(c)

    walk(table)
    return missing


def _rewrite(mods, m, final, part_of=None, modname=None):
    part_of = part_of or {}

    def lazy_elsewhere(src):
        # An import from another part's module, run when the function runs.
        p = part_of.get(src, "")
        return bool(p) and p != part_of.get(m.name, "")

    lines = m.src.splitlines(True)
    enc = [ln.encode() for ln in lines]
    edits = []   # (row, start byte, end byte, text)
    rename = {}
    for n in m.bindings:
        k = _key(mods, m.name, n)
        if k is None:
            b = m.bindings[n]
            raise MergeError("%s: cannot resolve %s (from %s)" % (m.name, n, b[1] if len(b) > 1 else "?"))
        if final[k] != n:
            rename[n] = final[k]
    for n in list(rename) + list(m.aliases):
        if n in m.locals:
            raise MergeError("%s: %s is a global the merge must rename and also a local name "
                             "in some function; rename one of them" % (m.name, n))
    for node, local, (src, attr) in m.inner:
        if lazy_elsewhere(src):
            continue
        # After the merge the function reads the global its import named.
        k = _key(mods, src, attr)
        if k is None or final[k] != local:
            raise MergeError("%s line %d: import %s from %s at top level (inside a function it "
                             "would read another global after the merge)"
                             % (m.name, node.lineno, local, src))
    inner = set()
    for node in ast.walk(m.tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in m.aliases):
            target = m.aliases[node.value.id]
            if not isinstance(node.ctx, ast.Load):
                raise MergeError("%s line %d: assigns %s.%s" % (m.name, node.lineno,
                                                               node.value.id, node.attr))
            k = _key(mods, target, node.attr)
            if k is None:
                raise MergeError("%s line %d: %s has no %s" % (m.name, node.lineno, target,
                                                               node.attr))
            if node.lineno != node.end_lineno:
                raise MergeError("%s line %d: split attribute" % (m.name, node.lineno))
            edits.append((node.lineno, node.col_offset, node.end_col_offset, final[k],
                          node.value.id + "." + node.attr))
            inner.add(id(node.value))
    for node in ast.walk(m.tree):
        if isinstance(node, ast.Name) and id(node) not in inner:
            if node.id in m.aliases:
                raise MergeError("%s line %d: module %s used other than as %s.NAME"
                                 % (m.name, node.lineno, node.id, node.id))
            if node.id in rename:
                edits.append((node.lineno, node.col_offset, node.end_col_offset,
                              rename[node.id], node.id))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in rename \
                and id(node) in m.defs:
            kw = b"def " if isinstance(node, ast.FunctionDef) else b"class "
            row = enc[node.lineno - 1]
            c = row.index(kw, node.col_offset) + len(kw)
            edits.append((node.lineno, c, c + len(node.name.encode()), rename[node.name],
                          node.name))
        elif isinstance(node, ast.Global):
            for n in node.names:
                if n in rename:
                    row = enc[node.lineno - 1]
                    c = _word(row, n.encode(), node.col_offset)
                    edits.append((node.lineno, c, c + len(n.encode()), rename[n], n))
    for node in m.imports:
        row = enc[node.lineno - 1]
        ind = row[:node.col_offset]
        tail = enc[node.end_lineno - 1][node.end_col_offset:].split(b"#")[0]
        if ind.strip() or tail.strip():
            raise MergeError("%s line %d: put this import on lines of its own"
                             % (m.name, node.lineno))
        for r in range(node.lineno, node.end_lineno + 1):
            enc[r - 1] = b"\n"
        enc[node.lineno - 1] = ind + b"pass\n"
        if (isinstance(node, ast.ImportFrom) and id(node) not in m.top
                and lazy_elsewhere(node.module)):
            names = []
            for a in node.names:
                new = final[_key(mods, node.module, a.name)]
                local = a.asname or a.name
                names.append(new if new == local else "%s as %s" % (new, local))
            enc[node.lineno - 1] = ind + ("from %s import %s\n" % (
                modname[part_of[node.module]], ", ".join(names))).encode()
    edits.sort(reverse=True)
    for row, c0, c1, text, was in edits:
        ln = enc[row - 1]
        if ln[c0:c1].replace(b" ", b"") != was.encode():
            # ast positions inside some constructs (f-strings) can be off.
            raise MergeError("%s line %d: cannot locate %s to rewrite it" % (m.name, row, was))
        enc[row - 1] = ln[:c0] + text.encode() + ln[c1:]
    out = b"".join(enc).decode()
    return out if out.endswith("\n") else out + "\n"


def _word(row, word, start):
    i = start
    while True:
        i = row.index(word, i)
        before = row[i - 1:i]
        after = row[i + len(word):i + len(word) + 1]
        if not (before.isalnum() or before == b"_") and not (after.isalnum() or after == b"_"):
            return i
        i += 1


def _check_defined(src):
    missing = _missing(src)
    if missing:
        raise MergeError("merged firmware reads undefined globals: " + ", ".join(sorted(missing)))
