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


# The execution layer's engine and server take their infrastructure
# injected (docs/engine.md): no socket, clock, UDP or state machine inside.
ENGINE_FORBIDDEN = FORBIDDEN | {"raftkv"}
ENGINE_FORBIDDEN_RAFTIO = {"raftio.udp", "raftio.clock", "raftio.fs", "raftio.node",
                           "raftio.storage", "raftio.logfile", "raftio.hardstate",
                           "raftio.snapfile", "raftio.fakeflash"}


def _full_imports(path):
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, node.lineno
            for a in node.names:
                yield node.module + "." + a.name, node.lineno


def test_engine_and_server_import_no_infrastructure():
    bad = []
    for f in ("engine.py", "server.py"):
        for mod, line in _full_imports(os.path.join(ROOT, "lib", "raftio", f)):
            if mod.split(".")[0] in ENGINE_FORBIDDEN or any(
                    mod == m or mod.startswith(m + ".") for m in ENGINE_FORBIDDEN_RAFTIO):
                bad.append("%s:%d imports %s" % (f, line, mod))
    assert not bad, bad


def test_engine_purity_check_catches_a_clock_import(tmp_path):
    p = tmp_path / "x.py"
    p.write_text("from raftio import clock\nimport raftkv.kv\n")
    mods = [m for m, _ in _full_imports(str(p))]
    assert "raftio.clock" in mods and "raftkv.kv" in mods


def test_harness_knows_the_engine_commit_lag():
    import raftnet
    src = open(os.path.join(ROOT, "lib", "raftio", "engine.py")).read()
    assert "_HS_COMMIT_LAG = const(%d)" % raftnet.ENGINE_COMMIT_LAG in src
