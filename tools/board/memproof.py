"""Memory proof: the firmware as a board runs it, under a board's heap budget, under load.

    python3 tools/board/memproof.py [--board esp32] [--heap 100K] [--seconds 60]
                              [--inflight 16] [--nodes 5] [--dir DIR] [--json FILE]
                              [--romfs]

Builds the unix .mpy firmware (tools/board/build.py unix), gives each of N nodes
a flash folder holding that build, node.json from a fresh cluster.json and
BOARD's board.json (its ring, limits, sessions and timeouts; network
"none", since these nodes talk over loopback), and boots each one the way
tools/board/vboard.py does: `micropython -X heapsize=HEAP` with the folder mounted
at / and main.py run from it, so the code is loaded from .mpy into the same
capped heap as the data. HEAP defaults to the board's heap_budget_bytes.

Then the benchmark's workload (tools/bench/cluster_bench.py: closed-loop puts over
64 keys, INFLIGHT sessions) runs for SECONDS. Each node's live heap
(gc.mem_alloc after a collection, from its status) is sampled after 10 s
and at the end. Passes (exit 0) when every node is still serving, no
console shows a MemoryError or a traceback, writes were committed, and
every node's live heap at the end is within 5% of its 10 s figure. Exit 1
otherwise, with one line per failure; 2 on a usage error. Prints a table
and a JSON line. Loopback only; every wait is bounded.

--romfs deploys the firmware the way a board with a ROMFS partition runs it
(MicroPython 1.25+, `mpremote romfs deploy`): mpraft.mpy goes into a ROMFS
image, each board's ROMFS partition is exactly that image (tools/board/vboard.py's
partition, mounted at /rom), and its bytecode and constants are used in
place instead of being copied into the heap. A board maps that partition
from flash; the unix port cannot, so each VM holds it in one bytearray and
the cap is raised by exactly that bytearray's heap blocks (32 + the image
rounded up to 32 bytes, checked against gc.mem_alloc at boot). Every
other byte the code needs (function objects, interned names, module dicts)
still counts against HEAP.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

TOOLS = os.path.dirname(os.path.abspath(__file__))  # tools/board: build.py
ROOT = paths.ROOT

import cluster  # noqa: E402
import cluster_bench  # noqa: E402
import vboard  # noqa: E402

USAGE = ("usage: memproof.py [--board esp32] [--heap 100K] [--seconds 60] [--inflight 16]\n"
         "                   [--nodes 5] [--dir DIR] [--json FILE] [--romfs]")
_MPREMOTE = os.path.join(ROOT, ".venv", "bin", "mpremote")
FLAT = 0.05
_BOOT_S = 30


def parse(argv):
    opts = {"board": "esp32", "heap": None, "seconds": "60", "inflight": "16", "nodes": "5",
            "dir": None, "json": None, "romfs": False}
    if "--romfs" in argv:
        opts["romfs"] = True
        argv = [a for a in argv if a != "--romfs"]
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--romfs":
            return None
        if not a.startswith("--") or a[2:] not in opts or i + 1 >= len(argv):
            return None
        opts[a[2:]] = argv[i + 1]
        i += 2
    try:
        opts["seconds"] = float(opts["seconds"])
        opts["inflight"] = int(opts["inflight"])
        opts["nodes"] = int(opts["nodes"])
    except ValueError:
        return None
    if opts["seconds"] < 12 or opts["inflight"] < 1 or opts["nodes"] < 1:
        return None
    return opts


def build(out):
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "build.py"), "unix", "--out", out,
                        "--no-budget"], capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        raise RuntimeError("build failed: " + (r.stderr.strip() or r.stdout.strip()))


def rom_image(d, fw):
    """Move the build's mpraft.mpy and its lazy parts (mpraft_PART.mpy) into
    a ROMFS image (d/rom.img); its path."""
    src = os.path.join(d, "romsrc")
    os.makedirs(src)
    for n in sorted(os.listdir(fw)):
        if n.startswith("mpraft") and n.endswith(".mpy"):
            shutil.move(os.path.join(fw, n), os.path.join(src, n))
    img = os.path.join(d, "rom.img")
    r = subprocess.run([_MPREMOTE, "romfs", "--no-mpy", "-o", img, "build", src],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("romfs build failed: " + (r.stderr.strip() or r.stdout.strip()))
    return img


def flash_folder(d, fw, board, cl, nid, rom_img=None):
    """A board's flash: the build, board.json (network off), node.json; and
    with rom_img, a ROMFS partition holding exactly that image (vboard's)."""
    f = os.path.join(d, "flash%d" % nid)
    shutil.copytree(fw, f)
    if rom_img:
        shutil.copyfile(rom_img, f + ".romfs")
    b = dict(board)
    b["network"] = "none"
    with open(os.path.join(f, "board.json"), "w") as h:
        json.dump(b, h)
    cluster.write_node_file(f, cl, nid, name="node.json")
    return f


def boot(d, flash, nid, heap, rom=0):
    """Start a VM with `flash` mounted at / and main.py run, like a board at
    power-up (tools/board/vboard.py's start-up); rom: the size of its ROMFS
    partition, mounted at /rom. heap: the budget, the partition aside."""
    script = os.path.join(d, "boot%d.py" % nid)
    text, cap = vboard.startup(flash, True, heap, rom,
                               'print("romfs image heap", _rom_heap)\n' if rom else "")
    with open(script, "w") as h:
        h.write(text)
    console = open(os.path.join(d, "console%d.log" % nid), "w")
    p = subprocess.Popen([vboard.MICROPYTHON, "-X", "heapsize=%d" % cap, script],
                         stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    console.close()
    return p


def live_heaps(d):
    return dict((nid, h["heap_used"]) for nid, h in cluster_bench.heap(d).items())


def measure(cdir, opts, procs, res, failures):
    at_boot = live_heaps(cdir)
    load = cluster_bench.Load(cdir, opts["inflight"])
    try:
        load.run(10)
        at10 = live_heaps(cdir)
        done10 = load.done
        load.run(opts["seconds"] - 10)
        at_end = live_heaps(cdir)
    finally:
        load.close()
    res["puts"] = load.done
    res["puts_per_s"] = load.done / opts["seconds"]
    if load.done <= done10:
        failures.append("no put committed after the first 10 s")
    for nid in sorted(procs):
        a, b = at10.get(nid), at_end.get(nid)
        res["nodes"][nid] = {"heap_at_boot": at_boot.get(nid), "heap_at_10s": a,
                             "heap_at_end": b}
        if a is None or b is None:
            failures.append("node %d stopped answering" % nid)
        elif b > a * (1 + FLAT):
            failures.append("node %d: live heap grew %d -> %d bytes (%+.1f%%)"
                            % (nid, a, b, 100.0 * (b - a) / a))


def run(opts):
    board_file = os.path.join(ROOT, "boards", opts["board"], "board.json")
    from raft.errors import ConfigError
    from raftio.board import load_board
    try:
        board = load_board(board_file)
    except ConfigError as e:
        print("memproof: %s" % e)
        return 2, None
    heap = vboard.heap_bytes(opts["heap"]) if opts["heap"] else board["heap_budget_bytes"]
    if heap is None:
        print(USAGE)
        return 2, None
    d = opts["dir"] or tempfile.mkdtemp(prefix="mpraft-memproof-")
    os.makedirs(d, exist_ok=True)
    fw = os.path.join(d, "build")
    if os.path.exists(fw):
        shutil.rmtree(fw)
    build(fw)
    img = rom_image(d, fw) if opts["romfs"] else None
    rom = os.path.getsize(img) if img else 0
    cap = heap + (vboard.romfs_heap(rom) if rom else 0)
    cdir = os.path.join(d, "cluster")
    if os.path.exists(cdir):
        shutil.rmtree(cdir)
    cl = cluster.create(cdir, nodes=opts["nodes"])
    res = {"board": opts["board"], "heap_bytes": heap, "seconds": opts["seconds"],
           "inflight": opts["inflight"], "nodes": {}, "romfs_image_bytes": rom,
           "heapsize": cap}
    procs = {}
    failures = []
    try:
        for n in cl["nodes"]:
            procs[n["id"]] = boot(d, flash_folder(d, fw, board, cl, n["id"], img), n["id"],
                                  heap, rom)
        if not cluster.wait_leader(cdir, _BOOT_S,
                                   give_up=lambda: all(p.poll() is not None
                                                       for p in procs.values())):
            failures.append("no leader within %d s of boot" % _BOOT_S)
        else:
            measure(cdir, opts, procs, res, failures)
    except Exception as e:  # a dead cluster surfaces here: report, don't trace
        failures.append("%s: %s" % (type(e).__name__, e))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
    for nid in sorted(procs):
        with open(os.path.join(d, "console%d.log" % nid)) as h:
            text = h.read()
        if rom:
            # The raise of the cap must cover the image and nothing more.
            got = [ln.split()[-1] for ln in text.splitlines()
                   if ln.startswith("romfs image heap ")]
            if not got or int(got[0]) > vboard.romfs_heap(rom):
                failures.append("node %d: the ROMFS image took %s bytes of heap, not %d"
                                % (nid, got[0] if got else "?", vboard.romfs_heap(rom)))
        for bad in ("MemoryError", "Traceback"):
            if bad in text:
                line = [ln for ln in text.splitlines() if bad in ln or "Error" in ln][-1:]
                failures.append("node %d console: %s" % (nid, (line or [bad])[0].strip()))
                break
    res["failures"] = failures
    if not opts["dir"]:
        shutil.rmtree(d, ignore_errors=True)
    return (1 if failures else 0), res


def main(argv):
    opts = parse(argv)
    if opts is None:
        print(USAGE)
        return 2
    code, res = run(opts)
    if res is None:
        return code
    print("board %s, heap %d bytes%s, %d nodes, %d in flight, %.0f s: %s puts/s"
          % (res["board"], res["heap_bytes"],
             " + ROMFS image %d bytes (-X heapsize=%d)" % (res["romfs_image_bytes"],
                                                          res["heapsize"])
             if res["romfs_image_bytes"] else " (-X heapsize)",
             len(res["nodes"]), res["inflight"],
             res["seconds"], "%.0f" % res["puts_per_s"] if "puts_per_s" in res else "-"))
    print("node  live heap: at boot   after 10 s   at end")
    for nid in sorted(res["nodes"]):
        n = res["nodes"][nid]
        print("%4d  %16s %12s %8s" % (nid, n["heap_at_boot"], n["heap_at_10s"], n["heap_at_end"]))
    for f in res["failures"]:
        print("FAIL: " + f)
    print("memory proof %s" % ("FAILED" if code else "passed"))
    if opts["json"]:
        with open(opts["json"], "w") as h:
            json.dump(res, h, indent=1)
    print(json.dumps(res))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
