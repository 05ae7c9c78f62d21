"""tools/board/memproof.py: the firmware under a board's heap cap, under the benchmark load.

Five nodes boot the unix .mpy build the way a board does (main.py from a
flash folder, code and data in one capped heap), take closed-loop puts at
16 in flight, and must neither raise MemoryError nor grow their live heap.
`make memproof` runs the full 60 s; here 20 s keeps `make test` quick. A heap
too small to boot fails with one line per node, not a hang. Loopback only.
"""
import json
import os
import subprocess
import sys

from paths import ROOT
MEMPROOF = os.path.join(ROOT, "tools", "board", "memproof.py")


def run(*args, timeout=240):
    return subprocess.run([sys.executable, MEMPROOF] + list(args), capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_unix_board_budget_holds_under_load(tmp_path):
    out = str(tmp_path / "proof.json")
    r = run("--board", "unix", "--seconds", "20", "--json", out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "memory proof passed" in r.stdout
    res = json.load(open(out))
    assert res["heap_bytes"] == 256 * 1024 and res["puts"] > 1000, res
    for n in res["nodes"].values():
        assert n["heap_at_end"] <= n["heap_at_10s"] * 1.05, res


def test_a_heap_too_small_to_boot_fails_in_one_line_per_node(tmp_path):
    r = run("--board", "unix", "--heap", "96K", "--seconds", "12", "--nodes", "3")
    assert r.returncode == 1, r.stdout + r.stderr
    fails = [ln for ln in r.stdout.splitlines() if ln.startswith("FAIL: ")]
    assert "FAIL: no leader within 30 s of boot" in fails, r.stdout
    assert sum("MemoryError" in ln for ln in fails) == 3, r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_usage_errors_exit_2():
    assert run("--seconds", "5").returncode == 2
    assert run("--board", "nosuch").returncode == 2
    assert run("--heap", "lots").returncode == 2


def test_romfs_deployment_runs_code_in_place_and_counts_only_the_image(tmp_path):
    out = str(tmp_path / "proof.json")
    r = run("--board", "unix", "--seconds", "12", "--nodes", "3", "--romfs", "--json", out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    res = json.load(open(out))
    rom = res["romfs_image_bytes"]
    # The cap is the budget plus the image's bytearray (object + 32-byte blocks).
    assert rom > 30000 and res["heapsize"] == 256 * 1024 + 32 + (rom + 31) // 32 * 32, res
    assert res["puts"] > 500, res
    for n in res["nodes"].values():
        # Bytecode used in place: the code's heap is far below the .mpy size
        # it would take copied (about 108 KB live at boot with the image).
        assert n["heap_at_boot"] - rom < 100 * 1024, res
