"""`make demo`: what mpraft can show today, end to end, in about a minute.

1. A 5-node cluster in the deterministic simulator under every fault
   (drops, duplicates, reordering, partitions, crashes, leader isolation),
   once under CPython and once under the MicroPython unix port: the same
   modules, the same seed, the same digest of committed history.
2. The firmware compiled to .mpy for the esp32 board, checked against the
   48 KB budget.

Exit status 0 only if every check passed.
"""
import json
import os
import subprocess
import sys
import time

import paths  # tools/ is this script's folder

ROOT = paths.ROOT
VENV = os.path.join(ROOT, ".venv", "bin")


def run(cmd, timeout=600):
    t = time.time()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return p, time.time() - t


def main():
    ok = True
    args = ["tools/simulator/sim.py", "--nodes", "5", "--seed", "7", "--steps", "20000",
            "--faults", "all"]
    digests = {}
    print("== 5-node Raft cluster in the simulator, every fault on, 20,000 ticks ==")
    for name, interp in (("CPython", os.path.join(VENV, "python")),
                         ("MicroPython", os.path.join(VENV, "micropython"))):
        p, secs = run([interp] + args)
        try:
            res = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            print("%-12s failed to run: %s" % (name, (p.stderr or p.stdout).strip()[-300:]))
            ok = False
            continue
        digests[name] = res["digest"]
        good = p.returncode == 0 and not res["violations"]
        ok = ok and good
        print("%-12s %6d entries committed, %3d elections, %3d crashes, %3d partitions, "
              "%6d messages (%d dropped), violations: %s, digest %s  [%.1f s]"
              % (name, res["commits"], res["elections"], res["crashes"], res["partitions"],
                 res["messages"], res["dropped"], len(res["violations"]), res["digest"], secs))
    same = len(set(digests.values())) == 1 and len(digests) == 2
    ok = ok and same
    print("same committed history on both interpreters: %s" % ("yes" if same else "NO"))
    print()
    print("== firmware for esp32 (xtensawin .mpy) ==")
    p, secs = run([os.path.join(VENV, "python"), "tools/board/build.py", "esp32", "--no-budget"])
    lines = p.stdout.strip().splitlines()
    for line in lines[-3:]:
        print(line)
    ok = ok and p.returncode == 0
    print()
    print("demo: %s" % ("all checks passed" if ok else "SOME CHECKS FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
