"""tools/board/build.py: per-board .mpy builds (CPython only: runs mpy-cross and micropython).

Most tests build a small source tree of their own, so they do not depend on
the state of lib/; two build the real lib/ and fail if any file there does
not compile or the firmware is over budget.
"""
import json
import os
import subprocess
import sys

import pytest

from paths import ROOT
BUILD = os.path.join(ROOT, "tools", "board", "build.py")
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
BOARDS = ["esp32", "esp32s3", "rp2_pico_w", "stm32", "unix"]

# MP_NATIVE_ARCH_* from MicroPython's py/persistentcode.h. An .mpy's third
# byte holds the arch in bits 2..7 and the native sub-version in bits 0..1,
# but only when the file contains native code: plain bytecode is arch 0 and
# loads on every port (seen with mpy-cross 1.29: byte 2 is 0x00 for a plain
# module with any -march, 0x2b for a native one with -march=xtensawin).
ARCH_CODES = {"x86": 1, "x64": 2, "armv6": 3, "armv6m": 4, "armv7m": 5, "armv7em": 6,
              "armv7emsp": 7, "armv7emdp": 8, "xtensa": 9, "xtensawin": 10,
              "rv32imc": 11, "rv64imc": 12}

PLAIN = '''
def add(a, b):
    return a + b

NAME = "plain"
'''
NATIVE = '''
import micropython


@micropython.native
def double(x):
    return x + x
'''
INIT = '''
'''


def run_build(*args, timeout=120):
    return subprocess.run([sys.executable, BUILD] + list(args), capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def write_tree(base, files):
    for rel, text in files.items():
        path = os.path.join(base, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def header(path):
    with open(path, "rb") as f:
        return f.read(4)


def mp_version():
    """(mpy version, sub-version) the unix port accepts, from sys.implementation._mpy."""
    p = subprocess.run([MICROPYTHON, "-c", "import sys; print(sys.implementation._mpy)"],
                       capture_output=True, text=True, timeout=30)
    v = int(p.stdout.strip())
    return v & 0xFF, (v >> 8) & 3


def board_json(name):
    with open(os.path.join(ROOT, "boards", name, "board.json")) as f:
        return json.load(f)


def test_unknown_board_is_one_line_and_exit_2():
    p = run_build("esp33")
    assert p.returncode == 2
    assert p.stderr == "unknown board 'esp33'; known: esp32, esp32s3, rp2_pico_w, stm32, unix\n"
    assert p.stdout == ""


@pytest.mark.parametrize("board", ["esp32", "unix"])
def test_build_mirrors_layout_and_reports_sizes(tmp_path, board):
    src = tmp_path / "lib"
    write_tree(str(src), {"pkg/__init__.py": INIT, "pkg/plain.py": PLAIN,
                          "top.py": PLAIN, "pkg/README.txt": "not shipped"})
    out = tmp_path / "out"
    p = run_build(board, "--out", str(out), "--src", str(src))
    assert p.returncode == 0, p.stderr
    built = sorted(os.path.relpath(os.path.join(d, f), str(out))
                   for d, _, fs in os.walk(str(out)) for f in fs)
    assert built == ["board.json", "lib/pkg/__init__.mpy", "lib/pkg/plain.mpy", "lib/top.mpy"]
    with open(str(out / "board.json")) as f:
        assert json.load(f) == board_json(board)
    lines = p.stdout.splitlines()
    sizes = dict((ln.split()[0], int(ln.split()[1])) for ln in lines
                 if len(ln.split()) == 2 and ln.split()[1].isdigit())
    for rel in built:
        assert sizes[rel] == os.path.getsize(str(out / rel)), rel
    total = sum(os.path.getsize(str(out / rel)) for rel in built)
    assert sizes["total"] == total
    assert lines[-1] == "total %.1f KB of 48 KB budget" % (total / 1024.0)


@pytest.mark.parametrize("board", BOARDS)
def test_mpy_header_matches_board_arch(tmp_path, board):
    arch = board_json(board)["arch"]
    files = {"m/plain.py": PLAIN}
    if arch:
        # Only native code records an arch; mpy-cross refuses it without -march.
        files["m/native.py"] = NATIVE
    write_tree(str(tmp_path / "lib"), files)
    out = tmp_path / "out"
    p = run_build(board, "--out", str(out), "--src", str(tmp_path / "lib"))
    assert p.returncode == 0, p.stderr
    version, sub = mp_version()
    h = header(str(out / "lib" / "m" / "plain.mpy"))
    assert h[0:1] == b"M" and h[1] == version
    assert h[2] == 0, "plain bytecode must be arch-neutral, got %#x" % h[2]
    if arch:
        h = header(str(out / "lib" / "m" / "native.mpy"))
        assert h[0:1] == b"M" and h[1] == version
        assert h[2] >> 2 == ARCH_CODES[arch], (board, arch, hex(h[2]))
        assert h[2] & 3 == sub


def test_unix_build_imports_and_runs_under_micropython(tmp_path):
    write_tree(str(tmp_path / "lib"), {"tiny/__init__.py": INIT, "tiny/calc.py": PLAIN})
    out = tmp_path / "out"
    p = run_build("unix", "--out", str(out), "--src", str(tmp_path / "lib"))
    assert p.returncode == 0, p.stderr
    assert not list((out / "lib").rglob("*.py"))
    code = ("import sys; sys.path.insert(0, 'lib'); import tiny.calc as c; "
            "print(c.add(2, 3), c.NAME, c.__file__ if hasattr(c, '__file__') else '-')")
    r = subprocess.run([MICROPYTHON, "-c", code], capture_output=True, text=True,
                       timeout=30, cwd=str(out))
    assert r.returncode == 0, r.stderr
    five, name, _ = r.stdout.split()
    assert (five, name) == ("5", "plain")


def test_x64_native_mpy_runs_under_unix_port(tmp_path):
    # The unix port loads native x64 code too (for when lib adopts
    # @micropython.native: set the unix board's arch to "x64").
    src = tmp_path / "n.py"
    src.write_text(NATIVE)
    import build
    mpy_cross = build.find_mpy_cross()
    assert build.compile_one(mpy_cross, "x64", str(src), str(tmp_path), "n.mpy") is None
    os.remove(str(src))
    r = subprocess.run([MICROPYTHON, "-c", "import n; print(n.double(21))"],
                       capture_output=True, text=True, timeout=30, cwd=str(tmp_path))
    assert r.stdout.strip() == "42", r.stderr


@pytest.mark.parametrize("merge", [False, True])
def test_firmware_dir_is_the_board_root_and_keeps_main_py(tmp_path, merge):
    write_tree(str(tmp_path / "lib"), {"a.py": PLAIN})
    write_tree(str(tmp_path / "firmware"), {"boot.py": "x = 1\n", "main.py": "y = 2\n",
                                            "mpraft.py": PLAIN})
    out = tmp_path / "out"
    p = run_build("esp32", "--out", str(out), "--src", str(tmp_path / "lib"),
                  str(tmp_path / "firmware"), *([] if merge else ["--no-merge"]))
    assert p.returncode == 0, p.stderr
    assert (out / "boot.py").read_text() == "x = 1\n"
    assert (out / "main.py").read_text() == "y = 2\n"
    assert (out / "mpraft.mpy").exists()
    # Merged, the library lives inside the root module; else one .mpy each.
    assert (out / "lib" / "a.mpy").exists() is not merge


def test_compile_error_is_one_line_naming_the_file(tmp_path):
    write_tree(str(tmp_path / "lib"), {"good.py": PLAIN, "pkg/bad.py": "x = 1\ndef f(:\n"})
    p = run_build("esp32", "--out", str(tmp_path / "out"), "--src", str(tmp_path / "lib"))
    assert p.returncode == 1
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("cannot compile ") and "pkg/bad.py" in lines[0], lines[0]
    assert "line 2" in lines[0] and "SyntaxError" in lines[0], lines[0]


def test_over_budget_fails_unless_no_budget(tmp_path):
    big = "\n".join("S%d = 'value number %d of a long module'" % (i, i) for i in range(300))
    write_tree(str(tmp_path / "lib"), {"big.py": big})
    out = str(tmp_path / "out")
    p = run_build("esp32", "--out", out, "--src", str(tmp_path / "lib"), "--budget-kb", "1")
    assert p.returncode == 1
    assert "of 1 KB budget" in p.stdout
    assert p.stderr.startswith("over budget by ") and "--no-budget" in p.stderr
    p = run_build("esp32", "--out", out, "--src", str(tmp_path / "lib"), "--budget-kb", "1",
                  "--no-budget")
    assert p.returncode == 0, p.stderr


def test_rebuild_drops_stale_files_but_never_deletes_a_foreign_dir(tmp_path):
    write_tree(str(tmp_path / "lib"), {"a.py": PLAIN, "b.py": PLAIN})
    out = tmp_path / "out"
    assert run_build("unix", "--out", str(out), "--src", str(tmp_path / "lib")).returncode == 0
    os.remove(str(tmp_path / "lib" / "b.py"))
    assert run_build("unix", "--out", str(out), "--src", str(tmp_path / "lib")).returncode == 0
    assert (out / "lib" / "a.mpy").exists() and not (out / "lib" / "b.mpy").exists()
    foreign = tmp_path / "mine"
    write_tree(str(foreign), {"precious.txt": "keep"})
    p = run_build("unix", "--out", str(foreign), "--src", str(tmp_path / "lib"))
    assert p.returncode == 2 and "refusing to replace" in p.stderr
    assert (foreign / "precious.txt").read_text() == "keep"


def test_real_lib_compiles_for_every_board(tmp_path):
    # Not skippable: a file in lib/ that does not compile is a real failure.
    srcs = [os.path.join(ROOT, "lib")]
    if os.path.isdir(os.path.join(ROOT, "firmware")):
        srcs.append(os.path.join(ROOT, "firmware"))
    for board in BOARDS:
        # Merged (the default): the whole firmware is the root module.
        out = str(tmp_path / (board + "-merged"))
        p = run_build(board, "--out", out, "--src", *srcs, "--no-budget")
        assert p.returncode == 0, "%s:\n%s" % (board, p.stderr)
        assert not os.path.exists(os.path.join(out, "lib")), board
        merged = os.path.getsize(os.path.join(out, "mpraft.mpy"))
        # --no-merge: every module compiles on its own.
        out = str(tmp_path / board)
        p = run_build(board, "--out", out, "--src", *srcs, "--no-budget", "--no-merge")
        assert p.returncode == 0, "%s:\n%s" % (board, p.stderr)
        separate = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out)
                       for f in fs if f.endswith(".mpy"))
        assert merged < separate * 0.9, (board, merged, separate)
        import build
        # Host-only modules (the simulator's storage) run in tests, not on boards.
        n_py = sum(1 for d, _, fs in os.walk(os.path.join(ROOT, "lib"))
                   if "__pycache__" not in d for f in fs
                   if f.endswith(".py") and not build._host_only(os.path.join(d, f))
                   and not build._optional(os.path.join(d, f)))
        n_mpy = sum(1 for d, _, fs in os.walk(os.path.join(out, "lib"))
                    for f in fs if f.endswith(".mpy"))
        assert n_mpy == n_py, (board, n_mpy, n_py)


def test_real_lib_fits_the_firmware_budget(tmp_path):
    p = run_build("esp32", "--out", str(tmp_path / "esp32"))
    assert p.returncode == 0, p.stdout[-400:] + p.stderr


def test_the_budget_is_for_the_resident_firmware_and_lazy_parts_are_listed(tmp_path):
    # Membership changes, snapshot transfer and admin/status are lazy parts (docs/memory.md):
    # listed and totalled apart, and left out of the budget a node under puts needs.
    out = tmp_path / "esp32"
    p = run_build("esp32", "--out", str(out), "--no-budget")
    assert p.returncode == 0, p.stderr
    size = dict((f, os.path.getsize(str(out / f))) for f in os.listdir(str(out)))
    lazy = sorted(f for f in size if f.startswith("mpraft_"))
    msgs = [f for f in lazy if f.startswith("mpraft_msg")]
    # Boot-only code (tools/board/bootpart.py) is a part too, dropped once the node runs.
    assert lazy == sorted(["mpraft_admin.mpy", "mpraft_boot.mpy", "mpraft_conf.mpy",
                           "mpraft_repl.mpy", "mpraft_snap.mpy"] + msgs)
    assert msgs == ["mpraft_msg%d.mpy" % k for k in range(len(msgs))] and len(msgs) > 2, lazy
    # The resident module raises its long messages but does not carry their text.
    text = b"entries not yet persisted"
    assert text not in (out / "mpraft.mpy").read_bytes()
    assert sum((out / f).read_bytes().count(text) for f in msgs) == 1
    resident = sum(n for f, n in size.items() if f not in lazy)
    lines = p.stdout.splitlines()
    rows = dict((ln.split()[0], ln.split()[1:]) for ln in lines
                if len(ln.split()) > 1 and ln.split()[1].isdigit())
    for f in lazy:
        assert rows[f] == [str(size[f]), "lazy"], p.stdout
    assert rows["total"] == [str(resident)], p.stdout
    assert rows["lazy"] == [str(sum(size[f] for f in lazy)), "(%d" % len(lazy), "files,",
                            "imported", "on", "first", "use)"], p.stdout
    assert lines[-1] == "total %.1f KB resident of 48 KB budget" % (resident / 1024.0)
    # A budget between the resident size and the whole build passes.
    kb = resident // 1024 + 1
    assert kb * 1024 < sum(size.values()), "lazy parts too small for this check"
    p = run_build("esp32", "--out", str(out), "--budget-kb", str(kb))
    assert p.returncode == 0, p.stdout[-400:] + p.stderr


def test_host_only_modules_are_not_shipped(tmp_path):
    src = tmp_path / "lib"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "dev.py").write_text("X = 1\n")
    (src / "pkg" / "sim_only.py").write_text("# mpraft: host-only\nY = 2\n")
    import build
    dests = [d for _, d, _ in build.plan([str(src)])]
    assert "lib/pkg/dev.mpy" in dests
    assert not any("sim_only" in d for d in dests)
    # The real in-memory storage is host-only, the core is not.
    real = [d for _, d, _ in build.plan([os.path.join(ROOT, "lib")])]
    assert "lib/raft/core.mpy" in real and "lib/raft/memstorage.mpy" not in real


def test_optional_modules_ship_only_on_request(tmp_path):
    src = tmp_path / "lib"
    src.mkdir()
    (src / "node.py").write_text("A = 1\n")
    (src / "client.py").write_text("# mpraft: optional\nB = 2\n")
    import build
    assert [d for _, d, _ in build.plan([str(src)])] == ["lib/node.mpy"]
    assert sorted(d for _, d, _ in build.plan([str(src)], with_optional=True)) == [
        "lib/client.mpy", "lib/node.mpy"]


def test_board_builds_drop_line_tables_unless_asked(tmp_path):
    src = tmp_path / "lib"
    src.mkdir()
    (src / "m.py").write_text("".join("def f%d(x):\n    return x + %d\n" % (k, k)
                                      for k in range(40)))
    small = run_build("esp32", "--out", str(tmp_path / "a"), "--src", str(src))
    big = run_build("esp32", "--out", str(tmp_path / "b"), "--src", str(src), "--lines")
    assert small.returncode == 0 and big.returncode == 0
    a = os.path.getsize(str(tmp_path / "a" / "lib" / "m.mpy"))
    b = os.path.getsize(str(tmp_path / "b" / "lib" / "m.mpy"))
    assert a < b


CODEC = '''import struct


def encode_req(x):  # mpraft: client-side
    return struct.pack("<I", x)


def decode_req(b):
    return struct.unpack("<I", b)[0]
'''


def test_client_side_functions_are_left_out_of_the_firmware(tmp_path):
    src = tmp_path / "lib"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "codec.py").write_text(CODEC)
    (src / "pkg" / "node.py").write_text("from pkg import codec\n\n\n"
                                         "def serve(b):\n    return codec.decode_req(b)\n")
    out = tmp_path / "fw"
    p = run_build("unix", "--out", str(out), "--src", str(src))
    assert p.returncode == 0, p.stdout + p.stderr
    probe = ("import sys; sys.path[:0] = [%r]\nfrom pkg import codec, node\n"
             "print(node.serve(b'\\x07\\0\\0\\0'), hasattr(codec, 'encode_req'))"
             % str(out / "lib"))
    r = subprocess.run([MICROPYTHON, "-c", probe], capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["7", "False"], r.stdout + r.stderr
    # Built with the client, the encoder ships.
    p = run_build("unix", "--out", str(out), "--src", str(src), "--with-optional")
    assert p.returncode == 0, p.stdout + p.stderr
    r = subprocess.run([MICROPYTHON, "-c", probe], capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["7", "True"], r.stdout + r.stderr


def test_a_firmware_use_of_a_client_side_function_fails_the_build(tmp_path):
    src = tmp_path / "lib"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "codec.py").write_text(CODEC)
    (src / "pkg" / "node.py").write_text("from pkg import codec as c\n\n\n"
                                         "def ask(x):\n    return c.encode_req(x)\n")
    p = run_build("unix", "--out", str(tmp_path / "fw"), "--src", str(src))
    assert p.returncode == 1
    assert "lib/pkg/node.mpy line 5 uses client-side encode_req" in p.stderr, p.stderr
    (src / "pkg" / "node.py").write_text("from pkg.codec import encode_req\n")
    p = run_build("unix", "--out", str(tmp_path / "fw"), "--src", str(src))
    assert p.returncode == 1 and "uses client-side encode_req" in p.stderr, p.stderr


def test_stripping_keeps_line_numbers():
    import build
    text, names = build.strip_client_side(CODEC)
    assert names == ["encode_req"]
    assert text.count("\n") == CODEC.count("\n")
    assert "encode_req" not in text and text.splitlines()[7] == "def decode_req(b):"


def test_host_only_methods_are_left_out_and_their_use_fails_the_build(tmp_path):
    src = tmp_path / "lib"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "counters.py").write_text(
        "class C:\n    def __init__(self):\n        self.n = 3\n\n"
        "    @property\n    def shown(self):  # mpraft: host-only\n        return self.n\n")
    (src / "pkg" / "node.py").write_text("from pkg.counters import C\n\n\ndef n():\n"
                                         "    return C().n\n")
    out = tmp_path / "fw"
    p = run_build("unix", "--out", str(out), "--src", str(src), "--with-optional")
    assert p.returncode == 0, p.stdout + p.stderr
    probe = ("import sys; sys.path[:0] = [%r]\nfrom pkg import counters, node\n"
             "print(node.n(), hasattr(counters.C(), 'shown'))" % str(out / "lib"))
    r = subprocess.run([MICROPYTHON, "-c", probe], capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["3", "False"], r.stdout + r.stderr
    (src / "pkg" / "node.py").write_text("from pkg.counters import C\n\n\ndef n():\n"
                                         "    return C().shown\n")
    p = run_build("unix", "--out", str(out), "--src", str(src))
    assert p.returncode == 1
    assert "lib/pkg/node.mpy line 5 uses .shown, a host-only method" in p.stderr, p.stderr


def test_private_names_are_shortened_consistently_across_modules(tmp_path):
    import build
    texts = {"lib/a.mpy": "class _Thing:\n    def __init__(self):\n        self._count_of_things = 2\n"
                          "        self.label = '_count_of_things'\n",
             "lib/b.mpy": "from a import _Thing\n\n\ndef total():\n"
                          "    return _Thing()._count_of_things + 1\n"}
    out, rename = build.minify_private(texts)
    assert set(rename) == {"_Thing", "_count_of_things"}
    assert "_count_of_things" not in out["lib/b.mpy"]
    assert "__init__" in out["lib/a.mpy"]                      # dunders kept
    assert "'_count_of_things'" in out["lib/a.mpy"]            # strings untouched
    assert "self.label" in out["lib/a.mpy"]                    # public names kept
    src = tmp_path / "lib"
    src.mkdir()
    (src / "a.py").write_text(texts["lib/a.mpy"])
    (src / "b.py").write_text(texts["lib/b.mpy"])
    small = run_build("unix", "--out", str(tmp_path / "s"), "--src", str(src))
    big = run_build("unix", "--out", str(tmp_path / "l"), "--src", str(src), "--no-minify")
    assert small.returncode == 0 and big.returncode == 0, small.stderr + big.stderr
    assert (os.path.getsize(str(tmp_path / "s" / "lib" / "b.mpy"))
            < os.path.getsize(str(tmp_path / "l" / "lib" / "b.mpy")))
    probe = "import sys; sys.path[:0] = [%r]\nimport b\nprint(b.total())" % str(
        tmp_path / "s" / "lib")
    r = subprocess.run([MICROPYTHON, "-c", probe], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "3", r.stdout + r.stderr


def test_marked_tables_are_stripped_with_the_code_that_reads_them():
    import build
    text = ("NAMES = (  # mpraft: host-only\n    'a', 'b')\nKEEP = 1\n\n\n"
            "class M:\n    def __repr__(self):  # mpraft: host-only\n"
            "        return NAMES[0]\n")
    out, names, methods = build.strip_marked(text, build.HOST_ONLY_MARK)
    assert names == ["NAMES"] and methods == ["__repr__"]
    assert "NAMES" not in out and "KEEP = 1" in out
    assert out.count("\n") == text.count("\n")
    compile(out, "m.py", "exec")


@pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="no micropython in .venv")
def test_debug_dir_maps_a_board_traceback_to_source_and_names(tmp_path):
    # Merged and minified, a board's traceback says "mpraft.py, line N, in _a".
    # OUT.debug (beside the build, not flashed) holds that mpraft.py exactly as
    # compiled and names.txt maps _a back to the name in the source.
    write_tree(str(tmp_path / "lib"), {"pkg/__init__.py": "", "pkg/deep.py":
                                       "def _explode_now(x):\n    raise ValueError(x)\n\n\n"
                                       "def go(x):\n    return _explode_now(x)\n"})
    write_tree(str(tmp_path / "firmware"), {"mpraft.py": "from pkg.deep import go\n"})
    out = tmp_path / "out"
    p = run_build("unix", "--out", str(out), "--src", str(tmp_path / "lib"),
                  str(tmp_path / "firmware"), "--lines", "--no-budget")
    assert p.returncode == 0, p.stderr
    debug = tmp_path / "out.debug"
    assert "debug: " in p.stdout and os.path.isdir(str(debug))
    assert not (out / "names.txt").exists()
    names = dict(ln.split() for ln in (debug / "names.txt").read_text().splitlines())
    short = [k for k, v in names.items() if v == "_explode_now"][0]
    r = subprocess.run([MICROPYTHON, "-c", "import sys; sys.path.insert(0, %r); import mpraft; "
                        "mpraft.go(7)" % str(out)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "ValueError: 7" in r.stderr + r.stdout, r.stderr
    tb = [ln for ln in (r.stderr + r.stdout).splitlines() if "in %s" % short in ln]
    assert tb and "mpraft.py" in tb[0], r.stderr + r.stdout
    line = int(tb[0].split("line ")[1].split(",")[0])
    src = (debug / "mpraft.py").read_text().splitlines()
    assert "raise ValueError(x)" in src[line - 1], (line, src[line - 1])


def test_merged_firmware_folds_public_consts_away():
    """A public const costs the merged firmware a global and a RAM-interned
    name; once everything is one module nothing imports it, so it becomes
    private (folded into the bytecode, stored nowhere). Another object's
    attribute of the same name and strings are left alone."""
    import build
    src = ("from micropython import const\n"
           "OK = const(0)\nLIMIT = const(1 << 4)\n_LIMIT = 1\nNAME = 'x'\n"
           "def f(o):\n    return OK + LIMIT + o.OK + len('OK')\n")
    out, rename = build.fold_public_consts(src)
    assert rename == {"OK": "_OK", "LIMIT": "_LIMIT_"}
    assert "_OK = const(0)" in out and "_LIMIT_ = const(1 << 4)" in out
    assert "return _OK + _LIMIT_ + o.OK + len('OK')" in out
    assert "NAME = 'x'" in out and "_LIMIT = 1" in out


def test_firmware_stores_no_public_const():
    # The real merged firmware: no `NAME = const(` left at top level.
    import ast
    import glob
    import tempfile
    out = tempfile.mkdtemp()
    r = run_build("unix", "--out", out, "--no-budget")
    assert r.returncode == 0, r.stdout + r.stderr
    src = open(out.rstrip("/") + ".debug/mpraft.py").read()
    public = [n.targets[0].id for n in ast.parse(src).body
              if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
              and getattr(n.value.func, "id", "") == "const"
              and not n.targets[0].id.startswith("_")]
    assert public == [], public
    assert glob.glob(os.path.join(out, "*.mpy"))


def test_private_names_take_rom_names_first_and_consts_stay_private():
    # A ROM name (MicroPython's static qstrs) costs no RAM when the firmware
    # loads; a private const must keep its underscore or it stops folding.
    import build
    texts = {"lib/a.mpy": "from micropython import const\n_LIMIT = const(7)\n\n\n"
                          "class _Box:\n    def __init__(self):\n        self._items_held = [abs]\n\n"
                          "    def _grow(self):\n        return len(self._items_held) + _LIMIT\n"}
    out, rename = build.minify_private(texts)
    assert rename["_LIMIT"].startswith("_"), rename
    for n in ("_Box", "_items_held", "_grow"):
        assert rename[n] in build._ROM_NAMES, rename
        assert rename[n] not in ("abs", "len")          # names the source uses are never taken
    kinds = build._name_kinds(texts)
    for k in ("attr", "name"):                          # one new name per old one, per kind
        new = [rename[n] for n in rename if kinds[n] == k]
        assert len(set(new)) == len(new), (k, rename)
    compile(out["lib/a.mpy"], "a.py", "exec")


def test_attribute_and_variable_names_share_short_names_only_where_they_cannot_meet():
    # An attribute-only private name and a variable-only one may get the same
    # short name (fewer qstrs on the board); a name read in a class body
    # (a method default here) or used both ways gets one of its own.
    import build
    src = ("_SCALE = 3\n_OFFSET = 4\n\n\ndef _double(v):\n    return 2 * v\n\n\n"
           "class Box:\n    _kind = 'box'\n\n"
           "    def __init__(self, _start=_OFFSET):\n        self._count = _start\n"
           "        self._held = [_double(_SCALE)]\n\n"
           "    def _grow(self):\n        self._count += 1\n        return self._count\n\n"
           "    def total(self):\n        return self._grow() + sum(self._held) + len(self._kind)\n\n\n"
           "def run():\n    return Box().total()\n")
    texts = {"lib/a.mpy": src}
    kinds = build._name_kinds(texts)
    assert kinds["_count"] == kinds["_held"] == kinds["_grow"] == "attr"
    assert kinds["_double"] == kinds["_SCALE"] == "name"
    assert kinds["_OFFSET"] == "both" and kinds["_kind"] == "both"
    out, rename = build.minify_private(texts)
    attrs = set(rename[n] for n in ("_count", "_held", "_grow"))
    names = set(rename[n] for n in ("_double", "_SCALE", "_start"))
    assert attrs & names, rename                          # shared
    for n in ("_OFFSET", "_kind"):
        assert list(rename.values()).count(rename[n]) == 1, rename
    before, after = {}, {}
    exec(compile(src, "a.py", "exec"), before)
    exec(compile(out["lib/a.mpy"], "a.py", "exec"), after)
    assert before["run"]() == after["run"]() == 5 + 6 + 3
