"""`pip install` of the host side from a clean copy puts raftctl and mpraft-cluster on PATH (issue 11 item 6).

The tracked files (what a clone holds) are copied to a temporary folder; the
project's venv builds a wheel from them without network (setuptools and
wheel from requirements.txt, --no-build-isolation), and a fresh venv installs
it with --no-index. From a folder outside the checkout, with no PYTHONPATH,
the installed mpraft-cluster boots three nodes (CPython runtime: the fresh
venv has no MicroPython) and the installed raftctl writes and reads. About
25 s, most of it creating the venv.
"""
import os
import subprocess
import sys

from paths import ROOT


def files_of_a_clone():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=ROOT, capture_output=True, timeout=30, check=True).stdout
    return [f for f in out.decode().split("\0") if f and os.path.isfile(os.path.join(ROOT, f))]


def test_pip_install_puts_raftctl_and_the_launcher_on_path(tmp_path):
    import shutil
    src = tmp_path / "src"
    for f in files_of_a_clone():
        os.makedirs(os.path.dirname(str(src / f)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), str(src / f))
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["MPRAFT_STATE_DIR"] = str(tmp_path / "state")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(cmd, timeout=120):
        p = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True,
                           timeout=timeout)
        assert p.returncode == 0, (cmd, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr, p.stderr
        return p.stdout

    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps",
         "--no-index", "-w", str(tmp_path / "dist"), str(src)])
    wheels = os.listdir(str(tmp_path / "dist"))
    assert len(wheels) == 1 and wheels[0].startswith("mpraft-"), wheels
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--no-deps",
         str(tmp_path / "dist" / wheels[0])])
    # Nothing of the checkout is used from here on.
    shutil.rmtree(str(src))
    bin_ = venv / "bin"
    assert os.access(str(bin_ / "raftctl"), os.X_OK)
    assert os.access(str(bin_ / "mpraft-cluster"), os.X_OK)
    out = run([str(bin_ / "raftctl"), "--help"])
    assert "endpoint status" in out
    d = str(tmp_path / "cl")
    try:
        out = run([str(bin_ / "mpraft-cluster"), "up", "--nodes", "3", "--dir", d,
                   "--runtime", "cpython"], timeout=60)
        assert "cluster up" in out
        env["MPRAFT_CLUSTER"] = d
        assert run([str(bin_ / "raftctl"), "put", "pip", "installed"]) == "OK\n"
        assert run([str(bin_ / "raftctl"), "get", "pip"]) == "installed\n"
        out = run([str(bin_ / "raftctl"), "-w", "simple", "endpoint", "status"])
        assert len(out.splitlines()) == 3 and "leader" in out
    finally:
        subprocess.run([str(bin_ / "mpraft-cluster"), "down", "--dir", d], env=env,
                       capture_output=True, timeout=60)
    # The copy was gone before anything ran: the nodes ran the installed library.
    assert list(venv.glob("lib/python*/site-packages/mpraft_host/lib/raft/core.py"))
