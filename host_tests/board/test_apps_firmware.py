"""The optional application machines beside a board's merged firmware
(CPython only: runs the build, mpy-cross and micropython).

The default firmware merges the session layer and the KV store into one
module (mpraft.mpy) and leaves the counter and the lock service out
(``# mpraft: optional``). Compiled on their own and copied to
lib/raftapp/, they find the session layer inside the merged firmware."""
import os
import subprocess
import sys

from paths import ROOT

BUILD = os.path.join(ROOT, "tools", "board", "build.py")
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")

_RUN = """
import sys
sys.path[:0] = ['', 'lib']
import mpraft
from raftapp import counter, lock
assert 'raftapp.session' not in sys.modules   # the merged firmware's, not a module
c = counter.machine()
c.apply(1, b'\\x01')
print(counter.decode_value(c.apply(2, counter.encode_add(1, 1, 41))))
m = lock.machine()
m.apply(1, b'\\x01')
print(lock.decode_grant(m.apply(2, lock.encode_acquire(1, 1, b'door', 30))))
m.apply(3, lock.encode_advance(30))
print(lock.decode_query(m.query(lock.encode_query(b'door'))))
other = lock.machine()
other.restore(m.snapshot())
print(other.app.fence, other.app.now)
"""


def test_optional_apps_run_beside_the_merged_firmware(tmp_path):
    import build
    out = tmp_path / "board"
    # The budget has its own test (test_build.py); this one is about imports.
    p = subprocess.run([sys.executable, BUILD, "unix", "--out", str(out), "--no-budget"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert not (out / "lib").exists() and (out / "mpraft.mpy").exists()
    mpy = build.find_mpy_cross()
    (out / "lib" / "raftapp").mkdir(parents=True)
    for name in ("counter", "lock"):
        src = os.path.join(ROOT, "lib", "raftapp", name + ".py")
        assert "# mpraft: optional" in open(src).readline()
        r = subprocess.run([mpy, "-o", str(out / "lib" / "raftapp" / (name + ".mpy")), src],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    r = subprocess.run([MICROPYTHON, "-c", _RUN], capture_output=True, text=True,
                       timeout=60, cwd=str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split("\n")[:4] == ["41", "(0, 1, 30)", "(0, 0, 0, 30)", "1 30"]
