"""tools/bench/bench_boot.py on a small log: a node powered on with 2,000
committed entries on flash after its snapshot serves and applies them all
under a 256 KB heap (it died of a MemoryError at every boot while the engine
read every committed entry into one list; raftio/node.py max_apply_bytes)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_boot_with_a_committed_log_catches_up():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench", "bench_boot.py"),
                        "--entries", "2000", "--heap", "256K"], capture_output=True, text=True,
                       timeout=240, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["serving_ms"] > 0 and out["caught_up_ms"] >= out["serving_ms"], out
    assert out["log_files"] > 300, out   # one-block segment files, as on a board
