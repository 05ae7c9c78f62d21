"""Run the portable tests under MicroPython (or CPython) without pytest.

Usage: micropython tools/mptest.py [DIR_OR_FILE ...] [-k SUBSTRING]

Each portable test file is a module of plain `test_*` functions that take no
arguments and use `assert`. The same files run under pytest. Exits 1 if any
test fails or if no test ran at all, so a broken discovery never passes.
"""
import os
import gc
import sys

_ROOT = __file__.rsplit("/", 2)[0] if "/" in __file__ else ".."
if _ROOT in ("", "tools"):
    _ROOT = "."


def _files(arg):
    try:
        names = os.listdir(arg)
    except OSError:
        return [arg]
    out = []
    for n in sorted(names):
        if n.startswith("test_") and n.endswith(".py"):
            out.append(arg + "/" + n)
    return out


def _print_exc(e):
    try:
        sys.print_exception(e)
    except AttributeError:
        import traceback
        traceback.print_exception(type(e), e, e.__traceback__)


def main(argv):
    pattern = None
    paths = []
    i = 0
    while i < len(argv):
        if argv[i] == "-k" and i + 1 < len(argv):
            pattern = argv[i + 1]
            i += 2
            continue
        paths.append(argv[i])
        i += 1
    if not paths:
        paths = [_ROOT + "/host_tests/portable"]
    for p in (_ROOT + "/lib", _ROOT + "/tools", _ROOT + "/host_tests/portable"):
        if p not in sys.path:
            sys.path.insert(0, p)
    ran = failed = 0
    for path in paths:
        for f in _files(path):
            modname = f.rsplit("/", 1)[-1][:-3]
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
    print("mptest: %d ran, %d failed" % (ran, failed))
    if ran == 0:
        print("mptest: no tests ran; treating as failure")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
