"""Draw a real cluster run as one HTML page.

    python3 tools/timeline/make_timeline.py RUN [-o OUT.html]

RUN is the folder of a cluster run (it holds run.jsonl, written by
tools/ops/chaos.py or cluster_demo.py, and the nodes' logs n<ID>.log) or the
run.jsonl itself; OUT defaults to timeline.html beside run.jsonl. Simulator
runs draw themselves: tools/simulator/sim.py ... --timeline OUT.html.
Exit 0 written, 2 usage or unreadable input (one line saying why).
"""
import os
import sys

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import page  # noqa: E402
import runview  # noqa: E402

USAGE = "usage: make_timeline.py RUN_DIR|run.jsonl [-o OUT.html]"


def main(argv):
    out = None
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-o", "--out"):
            if i + 1 >= len(argv):
                print(USAGE)
                return 2
            out = argv[i + 1]
            i += 2
            continue
        if a in ("-h", "--help") or a.startswith("-"):
            print(USAGE)
            return 2
        args.append(a)
        i += 1
    if len(args) != 1:
        print(USAGE)
        return 2
    run = args[0]
    if out is None:
        d = run if os.path.isdir(run) else (os.path.dirname(run) or ".")
        out = os.path.join(d, "timeline.html")
    try:
        data = runview.load(run)
        size = page.write(out, data)
    except (runview.RunLogError, OSError) as e:
        print("make_timeline: %s" % e)
        return 2
    print("timeline: %s (%d bytes, %d nodes, %.1f s)" % (out, size, len(data["nodes"]),
                                                      data["t1"] / 1000.0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
