"""Run the simulator over many seeds in parallel (CPython host tool).

    python3 tools/simulator/sweep.py --seeds 200 --steps 20000 --faults all --jobs 2
    python3 tools/simulator/sweep.py --first 1 --seeds 1000 --steps 5000
    python3 tools/simulator/sweep.py --seeds 50 --steps 20000 --machine lock --clients 5

Prints one line per failing seed with the command that reproduces it, then a
JSON summary as the last line. Exit status 0 iff every seed passed. Every
--progress seconds (default 10; 0: never) a line on stderr says how far it
is: elapsed, seeds done, faults injected so far, seeds failed so far.
"""
import argparse
import json
import multiprocessing
import os
import sys
import time

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import sim  # noqa: E402


def _one(args):
    seed, steps, faults, nodes, clients, machine = args
    argv = ["--seed", str(seed), "--steps", str(steps), "--faults", faults,
            "--nodes", str(nodes), "--machine", machine]
    if clients:
        argv += ["--clients", str(clients)]
        if machine == "kv":
            argv.append("--check-linear")
    opts = sim.parse_args(argv)
    s = sim.Sim(opts)
    res = s.run()
    return seed, res


# The result fields that count injected faults (sim.py's JSON line).
FAULT_COUNTS = ("crashes", "partitions", "power_cuts", "reconfigs", "wipes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=50, help="number of seeds")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--faults", default="all")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--clients", type=int, default=0,
                    help="simulated clients (KV: histories checked with lincheck)")
    ap.add_argument("--machine", default="kv", choices=("kv", "lock"),
                    help="lock: the lock service, its checker after every entry")
    ap.add_argument("--progress", type=float, default=10.0, metavar="S",
                    help="a progress line on stderr every S seconds (0: none)")
    a = ap.parse_args()
    if a.progress < 0:
        ap.error("--progress must be >= 0")
    try:
        sim.parse_faults(a.faults)
    except sim.UsageError as e:
        ap.error(str(e))
    t0 = time.time()
    if a.machine == "lock" and not a.clients:
        ap.error("--machine lock needs --clients N")
    kv = a.clients and a.machine == "kv"
    work = [(s, a.steps, a.faults, a.nodes, a.clients, a.machine)
            for s in range(a.first, a.first + a.seeds)]
    bad = []
    commits = elections = grants = 0
    joint = [0, 0, 0]  # joint changes proposed, entered, left (reconfig)
    done = faults = 0
    shown = t0

    def progress():
        sys.stderr.write("sweep: %.0f s, %d/%d seeds, %d faults, %d failed\n"
                         % (time.time() - t0, done, len(work), faults, len(bad)))
        sys.stderr.flush()

    wipes = [0, 0, 0]  # wipes, REJOINs committed, rejoined voters promoted (wipe)
    with multiprocessing.Pool(max(1, a.jobs)) as pool:
        results = pool.imap_unordered(_one, work)
        for _ in work:
            # Wait for the next seed, a progress line every --progress s.
            while True:
                try:
                    seed, res = results.next(timeout=a.progress or None)
                    break
                except multiprocessing.TimeoutError:
                    pass
                if time.time() - shown >= a.progress:
                    shown = time.time()
                    progress()
            done += 1
            faults += sum(res.get(k, 0) for k in FAULT_COUNTS)
            commits += res["commits"]
            elections += res["elections"]
            for k, name in enumerate(("joint_proposed", "joint_entered", "joint_left")):
                joint[k] += res.get(name, 0)
            for k, name in enumerate(("wipes", "rejoins", "promoted")):
                wipes[k] += res.get(name, 0)
            why = res["violations"][0] if res["violations"] else None
            if why is None and kv and res.get("linearizable") is not True:
                why = "history linearizable: %r" % res.get("linearizable")
            if why is None and kv and res.get("exactly_once") is not True:
                why = "exactly-once: %r" % (res.get("exactly_once_errors"),)
            if a.machine == "lock":
                grants += res.get("grants", 0)
            if why:
                bad.append(seed)
                extra = " --clients %d --check-linear" % a.clients if kv else ""
                if a.machine != "kv":
                    extra = " --clients %d --machine %s" % (a.clients, a.machine)
                print("seed %d FAILED: %s\n  reproduce: python3 tools/simulator/sim.py "
                      "--nodes %d --seed %d --steps %d --faults %s%s"
                      % (seed, why, a.nodes, seed, a.steps, a.faults, extra), flush=True)
            if a.progress and time.time() - shown >= a.progress:
                shown = time.time()
                progress()
    out = {"seeds": a.seeds, "first": a.first, "steps": a.steps, "faults": a.faults,
           "failed": sorted(bad), "commits": commits, "elections": elections,
           "seconds": round(time.time() - t0, 1)}
    if "reconfig" in a.faults:
        out["joint_proposed"], out["joint_entered"], out["joint_left"] = joint
    if "wipe" in a.faults:
        out["wipes"], out["rejoins"], out["promoted"] = wipes
    if a.machine != "kv":
        out["machine"] = a.machine
        out["grants"] = grants
    print(json.dumps(out))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
