"""Where this repository's modules live: the one place that sets up sys.path.

    import paths
    paths.setup()            # lib/ and every tool group folder
    paths.setup(tests=True)  # the same, plus the test folders tests import from

Import roots (in this order at the front of sys.path):
  lib/                      the firmware's packages (raft, raftio, raftkv)
  tools/<group>/            one folder per job, see GROUPS
  host_tests/<dir>/         with tests=True: helpers/ (simrun) and every
                            portable group, whose modules other tests import
                            (test_sim_teeth uses test_paper_safety; the storage
                            tests share test_storage_cuts)

Entry scripts. Python puts only a script's own folder on sys.path, so a script
in tools/<group>/ cannot import this module without help. Each one starts
with the same bootstrap, which puts tools/ on sys.path:

    import sys
    sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")
    import paths
    paths.setup()

(the slice is os.path.dirname without os.path, which MicroPython lacks; a
bare `sim.py` gives ".."). Scripts directly in tools/ (mptest.py, demo.py)
and host_tests/conftest.py need less: tools/ is already their folder, or
conftest knows where it is.

Names. tools/ itself is on sys.path, so no folder under tools/ (nor under
host_tests/, where pytest puts the conftest's folder on sys.path) may share
a name with a module: `tools/sim/` next to `sim.py` would let `import sim`
find the folder (MicroPython takes the first match on sys.path; CPython
would fall back to an empty namespace package). Hence tools/simulator/
holds sim.py, tools/history/ lincheck.py, tools/ops/ cluster.py.

Portable: runs under MicroPython, so paths are built with string operations.
"""
import sys

# tools/<name>/: one folder per job.
GROUPS = ("simulator", "history", "ops", "board", "bench", "timeline", "cloud")
# host_tests/<name>/ folders holding modules that tests import by name.
TEST_DIRS = ("helpers", "portable/core", "portable/storage", "portable/kv", "portable/apps",
             "portable/node",
             "portable/board", "portable/simulator", "portable/history",
             "node", "simulator")


def _norm(path):
    """'a/b/../c/.' -> 'a/c': string-only normpath (MicroPython has no os.path)."""
    out = []
    for part in path.split("/"):
        if part == "." or (part == "" and out):
            continue
        if part == ".." and out and out[-1] not in ("", ".."):
            out.pop()
        elif part == ".." and out == [""]:
            continue  # "/.." is "/"
        else:
            out.append(part)
    if out == [""]:
        return "/"
    return "/".join(out) or "."


def _root():
    tools = __file__[:__file__.rfind("/") + 1] or "./"
    root = _norm(tools + "..")
    try:
        from os.path import abspath  # CPython: absolute, so no chdir can break it
    except ImportError:
        return root
    return abspath(root)


# The repository root: the folder holding lib/, tools/, host_tests/, boards/.
ROOT = _root()
TOOLS = ROOT + "/tools"


def roots(tests=False):
    """The import roots, in sys.path order."""
    r = [ROOT + "/lib"] + [TOOLS + "/" + g for g in GROUPS]
    if tests:
        r += [ROOT + "/host_tests/" + d for d in TEST_DIRS]
    return r


def setup(tests=False):
    """Put the missing import roots at the front of sys.path (idempotent)."""
    missing = [p for p in roots(tests) if p not in sys.path]
    sys.path[:0] = missing
