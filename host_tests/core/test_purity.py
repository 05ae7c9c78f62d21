"""The pure core imports nothing that touches the world (DESIGN.md, layer 1)."""
import ast
import os

from paths import ROOT
FORBIDDEN = {"socket", "os", "time", "random", "select", "machine", "asyncio",
             "usocket", "utime", "uos", "uselect", "network", "_thread", "threading"}


def _imports(path):
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module.split(".")[0], node.lineno
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            yield "__import__", node.lineno


def test_core_imports_no_io():
    core = os.path.join(ROOT, "lib", "raft")
    files = [f for f in sorted(os.listdir(core)) if f.endswith(".py")]
    assert "core.py" in files and "rawnode.py" in files
    bad = []
    for f in files:
        for mod, line in _imports(os.path.join(core, f)):
            if mod in FORBIDDEN or mod == "__import__":
                bad.append("%s:%d imports %s" % (f, line, mod))
    assert not bad, bad


def test_purity_check_catches_an_io_import(tmp_path):
    p = tmp_path / "x.py"
    p.write_text("import time\nfrom socket import socket\n")
    assert [m for m, _ in _imports(str(p))] == ["time", "socket"]
