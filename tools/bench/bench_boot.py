"""Boot time on the virtual board: power-on to serving, with a full flash log.

    python3 tools/bench/bench_boot.py [--entries 10000] [--heap 256K]

Builds the unix firmware (tools/board/build.py), lays out a board's flash
folder as `make flash` would (mpraft.mpy, main.py, board.json with esp32
parameters except flash_log_slots and snapshot_entries, which must hold the
log), and writes node 1's storage in the boards' format (one-block log
segment files): a snapshot of a 64-key raftkv image at index 500, then
--entries puts after it, all committed. Then it powers the board on the
way tools/board/vboard.py does (the unix port, the flash folder as /, heap
capped at --heap) and times, from the VM's start:
  serving: main() printed "mpraft: node 1 serving" (config read, flash
           scanned, snapshot restored, socket open);
  caught up: a status query answers with applied == the last index (the
           entries after the snapshot replayed into the state machine).
Single-node cluster, loopback. Prints one line of JSON.
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

import cluster  # noqa: E402
from raftio.client import Client  # noqa: E402
from raftio.fs import RealFS  # noqa: E402
from raftio.node import slot_size  # noqa: E402
from raftio.storage import FlashStorage  # noqa: E402
from raftkv import codec  # noqa: E402
from raftkv.kv import KVStateMachine  # noqa: E402

ROOT = paths.ROOT
SNAP_AT = 500


def make_flash(root, entries):
    with open(os.path.join(ROOT, "boards", "esp32", "board.json")) as f:
        board = json.load(f)
    board["flash_log_slots"] = entries + 256
    board["snapshot_entries"] = entries + 256
    with open(os.path.join(root, "board.json"), "w") as f:
        json.dump(board, f)
    port = cluster.free_ports(1)[0]
    node = {"node_id": 1, "cluster_id": 7, "key": "00" * 16,
            "peers": [{"id": 1, "host": "127.0.0.1", "port": port}]}
    with open(os.path.join(root, "node.json"), "w") as f:
        json.dump(node, f)
    os.makedirs(os.path.join(root, "raft"))
    st = FlashStorage(RealFS(os.path.join(root, "raft")), [1], (), board["flash_log_slots"],
                      slot_size(board), "raft", board["log_segment_bytes"])
    kv = KVStateMachine(board["max_key"], board["max_value"], 4096, board["max_sessions"])
    kv.apply(1, codec.encode_register())
    for i in range(2, SNAP_AT + 1):
        kv.apply(i, codec.encode_put(1, i, b"key%02d" % (i % 64), b"value-%06d" % i))
    buf = bytearray(kv.snapshot_size())
    kv.snapshot_into(buf)
    st.apply_snapshot(__import__("raft.storage", None, None, ["Snapshot"]).Snapshot(
        SNAP_AT, 1, [1], (), bytes(buf)))
    batch = []
    for i in range(SNAP_AT + 1, SNAP_AT + entries + 1):
        batch.append((i, 1, 0, codec.encode_put(1, i, b"key%02d" % (i % 64), b"value-%06d" % i)))
        if len(batch) == 64:
            st.append(batch)
            batch = []
    if batch:
        st.append(batch)
    last = SNAP_AT + entries
    st.set_hard_state((1, 1, last))
    st.close()
    return port, last


def main(argv):
    opts = {"entries": "10000", "heap": "256K"}
    for i in range(0, len(argv) - 1, 2):
        opts[argv[i][2:]] = argv[i + 1]
    entries = int(opts["entries"])
    tmp = tempfile.mkdtemp(prefix="mpraft-boot-")
    proc = None
    try:
        build = os.path.join(tmp, "build")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "board", "build.py"), "unix",
                        "--out", build, "--no-budget"], check=True, capture_output=True)
        root = os.path.join(tmp, "flash")
        shutil.copytree(build, root)
        port, last = make_flash(root, entries)
        files = len(os.listdir(os.path.join(root, "raft")))
        sys.path.insert(0, os.path.join(ROOT, "tools", "board"))
        import vboard
        script, heap = vboard.startup(root, True, vboard.heap_bytes(opts["heap"]))
        path = os.path.join(tmp, "vm.py")
        with open(path, "w") as f:
            f.write(script)
        t0 = time.monotonic()
        proc = subprocess.Popen([vboard.MICROPYTHON, "-X", "heapsize=%d" % heap, path],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=root)
        line = b""
        deadline = t0 + 60
        while b"serving" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
        serving = time.monotonic() - t0
        if b"serving" not in line:
            print(json.dumps({"error": "did not serve", "output": line.decode()}))
            return 1
        c = Client(7, b"\0" * 16, [(1, "127.0.0.1", port)])
        caught = None
        try:
            while time.monotonic() < deadline:
                st = c.status(1, 200)
                if st and st["applied"] >= last:
                    caught = time.monotonic() - t0
                    break
                time.sleep(0.02)
        finally:
            c.close()
        if caught is None:
            proc.kill()
            print(proc.stdout.read().decode()[-1500:])
        out = {"entries": entries, "snapshot_index": SNAP_AT, "log_files": files,
               "heap": opts["heap"], "serving_ms": round(serving * 1000),
               "caught_up_ms": caught and round(caught * 1000)}
        print("boot with a %d-entry flash log (%d files) and a snapshot, heap %s: serving after "
              "%d ms, all entries applied after %s ms" % (
                  entries, files, opts["heap"], out["serving_ms"], out["caught_up_ms"]))
        print(json.dumps(out))
        return 0 if caught else 1
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
