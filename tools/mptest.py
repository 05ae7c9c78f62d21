"""Run the portable tests under MicroPython (or CPython) without pytest.

Usage: micropython tools/mptest.py [DIR_OR_FILE ...] [-k SUBSTRING] [--backend core|engine]

--backend sets raftnet.BACKEND, the driver of the paper tests' cluster
harness: "core" (its own Ready loop, the default) or "engine" (the engine
the boards run).

Each portable test file is a module of plain `test_*` functions that take no
arguments and use `assert`. The same files run under pytest. A folder is
walked recursively (host_tests/portable/<group>/test_*.py), in sorted order.
Exits 1 if any test fails or if no test ran at all, so a broken discovery
never passes.
"""
import os
import gc
import sys

import paths  # tools/ is this script's folder


def _is_dir(path):
    try:
        return os.stat(path)[0] & 0o170000 == 0o040000
    except OSError:
        return False


def _files(arg):
    """The test files under arg (a folder, walked recursively, or a file)."""
    if not _is_dir(arg):
        return [arg]
    out = []
    for n in sorted(os.listdir(arg)):
        p = arg.rstrip("/") + "/" + n
        if _is_dir(p):
            out += _files(p)
        elif n.startswith("test_") and n.endswith(".py"):
            out.append(p)
    return out


def _print_exc(e):
    try:
        sys.print_exception(e)
    except AttributeError:
        import traceback
        traceback.print_exception(type(e), e, e.__traceback__)


def main(argv):
    pattern = None
    backend = None
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == "-k" and i + 1 < len(argv):
            pattern = argv[i + 1]
            i += 2
            continue
        if argv[i] == "--backend" and i + 1 < len(argv):
            backend = argv[i + 1]
            i += 2
            continue
        args.append(argv[i])
        i += 1
    if not args:
        args = [paths.ROOT + "/host_tests/portable"]
    paths.setup(tests=True)
    if backend is not None:
        # The cluster harness's backend (raftnet.BACKENDS) for every Net.
        import raftnet
        if backend not in raftnet.BACKENDS:
            print("mptest: --backend takes one of %s, got %r" % (", ".join(raftnet.BACKENDS),
                                                                backend))
            return 2
        raftnet.BACKEND = backend
    ran = failed = 0
    seen = {}
    for arg in args:
        for f in _files(arg):
            modname = f.rsplit("/", 1)[-1][:-3]
            # Modules are imported by name: a second test_x.py would silently
            # rerun the first one instead of running.
            if seen.setdefault(modname, f) != f:
                print("ERROR: %s and %s share the module name %s" % (seen[modname], f, modname))
                failed += 1
                continue
            d = f.rsplit("/", 1)[0] if "/" in f else "."
            if d not in sys.path:
                sys.path.insert(0, d)
            try:
                mod = __import__(modname)
            except Exception as e:
                print("ERROR importing", f)
                _print_exc(e)
                failed += 1
                continue
            for name in sorted(dir(mod)):
                if not name.startswith("test_"):
                    continue
                if pattern and pattern not in name:
                    continue
                fn = getattr(mod, name)
                if not callable(fn):
                    continue
                ran += 1
                # One heap serves every test: start each from a collected one,
                # so a test's garbage never fails the next one.
                gc.collect()
                try:
                    fn()
                except Exception as e:
                    failed += 1
                    print("FAIL", modname + "." + name)
                    _print_exc(e)
    print("mptest: %d ran, %d failed%s" % (ran, failed,
                                           "" if backend is None else " (backend %s)" % backend))
    if ran == 0:
        print("mptest: no tests ran; treating as failure")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
