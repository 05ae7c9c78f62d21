"""A board with ``log_partition`` set: the merged firmware and raftio/rawlog.py
compiled apart beside it (an optional module), on the unix port, where the
partition is a file standing in for it (raftio/blockfile.py, raft/LABEL.bin). CPython only: runs
the build, mpy-cross and micropython; one node on 127.0.0.1, bounded turns."""
import json
import os
import socket
import subprocess
import sys

from paths import ROOT

BUILD = os.path.join(ROOT, "tools", "board", "build.py")
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")

# Boot, serve 300 turns (a lone voter elects itself and commits its no-op),
# propose one command; print the storage class, last index and the file.
_RUN = """
import sys
sys.path[:0] = ['', 'lib']
import mpraft
n = mpraft.boot()
st = n.storage
assert 'raftio.rawlog' in sys.modules and 'raftio.storage' not in sys.modules
mpraft.run(300)
before = st.last_index()
print(type(st).__name__, before, st.first_index())
"""


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_firmware_boots_with_its_log_on_a_raw_partition(tmp_path):
    import build
    out = tmp_path / "board"
    p = subprocess.run([sys.executable, BUILD, "unix", "--out", str(out), "--no-budget"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert (out / "mpraft.mpy").exists() and not (out / "lib").exists()
    (out / "lib" / "raftio").mkdir(parents=True)
    for name in ("rawlog", "blockfile"):   # blockfile: the unix port's stand-in partition
        src = os.path.join(ROOT, "lib", "raftio", name + ".py")
        assert "# mpraft: optional" in open(src).readline()
        r = subprocess.run([build.find_mpy_cross(), "-o", str(out / "lib" / "raftio" / (name + ".mpy")),
                            src], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    board = json.load(open(out / "board.json"))
    board.update({"log_partition": "raftlog", "flash_log_slots": 64, "snapshot_entries": 32,
                  "ring_capacity": 16})
    (out / "board.json").write_text(json.dumps(board))
    node = {"node_id": 1, "cluster_id": 7, "key": "00" * 16,
            "peers": [{"id": 1, "host": "127.0.0.1", "port": _free_port()}]}
    (out / "node.json").write_text(json.dumps(node))
    runs = []
    for _ in range(2):
        r = subprocess.run([MICROPYTHON, "-c", _RUN], capture_output=True, text=True,
                           timeout=60, cwd=str(out))
        assert r.returncode == 0, r.stdout + r.stderr
        runs.append(r.stdout.split())
    # The first boot commits a no-op on the raw log; the second finds it there
    # and commits its own after it.
    assert runs[0][0] == "RawStorage" and int(runs[0][1]) >= 1, runs
    assert int(runs[1][1]) > int(runs[0][1]), runs
    part = out / "raft" / "raftlog.bin"
    assert part.exists() and part.stat().st_size % 4096 == 0
    assert not any(n.startswith("raft.log") for n in os.listdir(out / "raft"))   # no segment files
