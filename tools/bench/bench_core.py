"""Core throughput: committed entries per CPU second, fault-free 5-node cluster.

    python3 tools/bench/bench_core.py [--steps N] [--per-step K]
    micropython tools/bench/bench_core.py

Drives the simulator (every message encoded and decoded, every safety check
on) with clients that keep the leader's log full. Prints a line of JSON.
"""
import sys
sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import gc
import json
import time

import sim


def _cpu_ms():
    try:
        return time.process_time() * 1000.0
    except AttributeError:
        # MicroPython has no process clock; the bench runs alone, so wall time.
        return float(time.ticks_ms())


class BenchSim(sim.Sim):
    def clients(self):
        ld = self.leader()
        if ld is None:
            return
        k = self.opts["per_step"]
        eng = ld.engine
        for _ in range(k):
            self.next_value += 1
            if not eng.propose(b"value-%08d" % self.next_value):
                break
            self.proposed += 1


def main(argv):
    steps = 2000
    per_step = 64
    i = 0
    while i < len(argv):
        if argv[i] == "--steps":
            steps = int(argv[i + 1])
        elif argv[i] == "--per-step":
            per_step = int(argv[i + 1])
        else:
            print("usage: bench_core.py [--steps N] [--per-step K]")
            return 2
        i += 2
    opts = sim.parse_args(["--steps", str(steps), "--faults", "none", "--seed", "1",
                           "--ring", "256", "--snap-every", "400", "--snap-keep", "50"])
    opts["per_step"] = per_step
    s = BenchSim(opts)
    gc.collect()
    t0 = _cpu_ms()
    res = s.run()
    ms = _cpu_ms() - t0
    impl = sys.implementation.name
    out = {"bench": "core", "impl": impl, "nodes": res["nodes"], "steps": res["steps"],
           "commits": res["commits"], "cpu_ms": int(ms),
           "commits_per_cpu_s": int(res["commits"] * 1000.0 / ms) if ms > 0 else 0,
           "violations": res["violations"]}
    print("%s: %d entries committed in %.2f s CPU -> %d committed entries per CPU second"
          % (impl, out["commits"], ms / 1000.0, out["commits_per_cpu_s"]))
    print(json.dumps(out))
    return 1 if res["violations"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
