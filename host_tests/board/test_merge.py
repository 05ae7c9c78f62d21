"""tools/board/merge.py: the firmware merged into one module (CPython; runs micropython too)."""
import os
import subprocess

import pytest

import merge

from paths import ROOT
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")

CONST = "try:\n    from micropython import const\nexcept ImportError:\n    def const(x):\n        return x\n"

# Two modules define HEADER and _MAGIC differently; b uses both HEADERs, one
# through a module alias; c imports a renamed name under another name and
# sets a global through `global`; the root imports inside a function.
MODS = [
    ("pkg", "# package\n"),
    ("pkg.a", CONST + "HEADER = const(20)\n_MAGIC = const(7)\n\n\ndef size():\n"
              "    return HEADER + _MAGIC\n\n\nclass Thing:\n    kind = 'a'\n"),
    ("pkg.b", CONST + "import struct\n\nfrom pkg import a as A\nfrom pkg.a import Thing\n"
              "HEADER = const(36)\n_MAGIC = const(9)\n\n\ndef both():\n"
              "    return (A.HEADER, HEADER, A.size(), _MAGIC, Thing.kind,\n"
              "            struct.calcsize('<I'))\n"),
    ("pkg.c", "from pkg.b import HEADER as H, both\n\ncount = 0\n\n\ndef bump():\n"
              "    global count\n    count += H\n    return count, both()\n"),
    ("root", "import json\n\n\ndef main():\n    from pkg.c import bump\n"
             "    return json.dumps([bump(), bump()])\n"),
]
EXPECT = [[36, [20, 36, 27, 9, "a", 4]], [72, [20, 36, 27, 9, "a", 4]]]


def run_merged(tmp_path, interp):
    src = merge.merge(MODS) + "print(main())\n"
    path = tmp_path / "m.py"
    path.write_text(src)
    r = subprocess.run([interp, str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, src + r.stderr
    import json
    return json.loads(r.stdout)


def test_merged_module_keeps_every_module_meaning(tmp_path):
    import sys
    assert run_merged(tmp_path, sys.executable) == EXPECT


@pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="no micropython in .venv")
def test_merged_module_runs_under_micropython_with_consts(tmp_path):
    assert run_merged(tmp_path, MICROPYTHON) == EXPECT


def test_clashing_globals_are_renamed_in_the_later_module_and_its_importers():
    src = merge.merge(MODS)
    assert "HEADER_b = const(36)" in src and "HEADER = const(20)" in src
    assert "count += HEADER_b" in src
    # Internal imports are gone; external ones stay.
    assert "from pkg" not in src and "import struct" in src


@pytest.mark.parametrize("mods,msg", [
    ([("p", "X = 1\n"), ("q", "from p import *\n")], "import *"),
    ([("p", "X = 1\n"), ("q", "import p\n")], "needs `as NAME`"),
    ([("p", "X = 1\n"), ("q", "import p as P\n\n\ndef f():\n    return P\n")],
     "used other than as P.NAME"),
    ([("p", "X = 1\n"), ("q", "import p as P\n\n\ndef f():\n    return P.Y\n")], "p has no Y"),
    ([("p", "X = 1\n"), ("q", "import p as P\n\n\ndef f():\n    P.X = 2\n")], "assigns P.X"),
    ([("p", "from q import Y\nX = 1\n"), ("q", "from p import X\nY = 2\n")], "import cycle"),
    ([("p", "X = 1\n"), ("q", "from p import Z\n")], "cannot resolve Z"),
    # q's X must become X_q, but a function of q also has a local X.
    ([("p", "X = 1\n"), ("q", "X = 2\n\n\ndef f(X):\n    return X\n")], "also a local name"),
    # Inside a function, an import that would read another global once merged.
    # (q keeps X, so p's becomes X_p, which r's local X would not read.)
    ([("q", "X = 2\n"), ("p", "X = 1\n"), ("r", "def f():\n    from p import X\n    return X\n")],
     "would read another global"),
    ([("p", "import os\n"), ("q", "os = 3\n")], None),  # external kept, q's renamed: fine
    ([("p", "import os\n"), ("q", "import time as os\n")], "something else elsewhere"),
    ([("p", "X = 1\n"), ("q", "from p import X\nY = 2\n"), ("r", "def f():\n    return W\n")],
     "undefined globals: W"),
])
def test_what_cannot_be_merged_safely_is_a_clear_error(mods, msg):
    if msg is None:
        assert "os_q = 3" in merge.merge(mods)
        return
    with pytest.raises(merge.MergeError) as e:
        merge.merge(mods)
    assert msg in str(e.value)


def test_the_real_firmware_merges():
    import build
    todo = build.plan([os.path.join(ROOT, "lib"), os.path.join(ROOT, "firmware")])
    texts = {}
    for src, dest, c in todo:
        if c:
            with open(src) as f:
                text = f.read()
            for mark in (build.CLIENT_SIDE_MARK, build.HOST_ONLY_MARK):
                if mark in text:
                    text = build.strip_marked(text, mark)[0]
            texts[dest] = text
    err, left, out, lazy = build.merge_firmware(todo, texts)
    assert err is None
    # The resident firmware and its lazy parts (docs/memory.md).
    # Boot-only code (`# mpraft: boot` defs, tools/board/bootpart.py) is a part too.
    assert sorted(out) == ["mpraft.mpy", "mpraft_admin.mpy", "mpraft_boot.mpy",
                           "mpraft_conf.mpy", "mpraft_repl.mpy", "mpraft_snap.mpy"]
    assert sorted(lazy) == ["mpraft_admin.mpy", "mpraft_boot.mpy", "mpraft_conf.mpy",
                            "mpraft_repl.mpy", "mpraft_snap.mpy"]
    assert "# --- raftio.node__boot ---" in out["mpraft_boot.mpy"]
    assert "_boot_Node___init__" in out["mpraft.mpy"]  # the stub (names are minified later)
    assert sorted(d for _, d, c in left if c) == sorted(out)
    assert "# --- raft.membership ---" in out["mpraft_conf.mpy"]
    assert "# --- raft.membership ---" not in out["mpraft.mpy"]
    # Every firmware module is in it, the root last among those it imports.
    body = out["mpraft.mpy"]
    assert body.index("# --- raft.errors ---") < body.index("# --- raft.core ---")
    assert body.index("# --- raft.core ---") < body.index("# --- raftio.node ---")
    compile(body, "mpraft.py", "exec")


# Lazy parts: pkg.lz goes into root_z (imported on first use, by main); it
# reads a resident function, a list and two consts (one private).
LAZY = [
    ("pkg", "# package\n"),
    ("pkg.a", CONST + "SIZE = const(20)\n_K = const(3)\ntable = [1, 2]\n\n\n"
              "def helper():\n    return 5\n"),
    ("pkg.lz", "from pkg.a import SIZE, _K, table, helper\n\n\n"
               "def work(x):\n    return x + SIZE + _K + len(table) + helper()\n"),
    ("root", "def main():\n    from pkg.lz import work\n    return work(1)\n"),
]


def run_parts(tmp_path, interp, mods=LAZY):
    parts = merge.merge_parts(mods, {"pkg.lz": "z"}, "root")
    assert sorted(parts) == ["", "z"]
    (tmp_path / "root.py").write_text(parts[""])
    (tmp_path / "root_z.py").write_text(parts["z"])
    (tmp_path / "run.py").write_text(
        "import sys\nimport root\nassert 'root_z' not in sys.modules\nprint(root.main())\n"
        "assert 'root_z' in sys.modules\n")
    r = subprocess.run([interp, "run.py"], capture_output=True, text=True, timeout=30,
                       cwd=str(tmp_path))
    assert r.returncode == 0, parts[""] + parts["z"] + r.stderr
    return parts, int(r.stdout)


def test_a_lazy_part_is_imported_on_first_use_and_reads_the_resident_module(tmp_path):
    import sys
    parts, out = run_parts(tmp_path, sys.executable)
    assert out == 31
    # The resident module holds none of the lazy code; the part copies the
    # consts it reads and imports the rest from the resident module.
    assert "def work" not in parts[""] and "from root_z import work" in parts[""]
    assert "SIZE = const(20)" in parts["z"] and "_K = const(3)" in parts["z"]
    assert "from root import helper, table" in parts["z"]


@pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="no micropython in .venv")
def test_lazy_parts_run_under_micropython(tmp_path):
    assert run_parts(tmp_path, MICROPYTHON)[1] == 31


@pytest.mark.parametrize("mods,msg", [
    # The resident module may reach a lazy part only through an import inside a function.
    ([LAZY[0], LAZY[1], LAZY[2], ("root", "from pkg.lz import work\n\n\ndef main():\n"
                                          "    return work(1)\n")],
     "root, main reads work of lazy part z (pkg.lz) outside a function-level import"),
    # A lazy part's copy of a global the resident module rebinds would go stale.
    ([LAZY[0], ("pkg.a", "n = 0\n\n\ndef bump():\n    global n\n    n += 1\n"),
      ("pkg.lz", "from pkg.a import n\n\n\ndef work(x):\n    return x + n\n"), LAZY[3]],
     "lazy part z reads n, which the resident module rebinds"),
])
def test_what_a_lazy_part_cannot_do_is_a_clear_error(mods, msg):
    with pytest.raises(merge.MergeError) as e:
        merge.merge_parts(mods, {"pkg.lz": "z"}, "root")
    assert msg in str(e.value), str(e.value)


def test_the_root_modules_names_win_a_clash(tmp_path):
    # A lazy part's module-level status once took the name, and the merge
    # renamed the REPL's mpraft.status to status_mpraft (AttributeError at
    # the board's prompt). The root's names are what a person types.
    import sys
    mods = [("pkg", "# package\n"),
            ("pkg.lz", "def status():\n    return 7\n"),
            ("root", "def status():\n    from pkg.lz import status as s\n    return s() + 1\n\n\n"
                     "def main():\n    return status()\n")]
    parts = merge.merge_parts(mods, {"pkg.lz": "z"}, "root")
    assert "def status():" in parts[""], parts[""]
    assert "def status_lz():" in parts["z"], parts["z"]
    (tmp_path / "root.py").write_text(parts[""])
    (tmp_path / "root_z.py").write_text(parts["z"])
    (tmp_path / "run.py").write_text("import root\nprint(root.status())\n")
    r = subprocess.run([sys.executable, "run.py"], capture_output=True, text=True, timeout=30,
                       cwd=str(tmp_path))
    assert (r.returncode, r.stdout.strip()) == (0, "8"), parts[""] + parts["z"] + r.stderr
