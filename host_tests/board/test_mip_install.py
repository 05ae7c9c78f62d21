"""`mpremote mip install ./package.json` puts the board library on a board, which then boots a node (issue 11 item 6).

A virtual board (tools/board/vboard.py: the unix port on a pty, a folder as
its flash) with an empty flash. mpremote installs the checkout's
package.json from its local path (no network: mip reads local paths as
files), every module lands in /lib as source; the node file, board file and
main.py are copied as a user would, the board is reset, boots the node from
/lib and serves raftctl. Sources compile on the board, so it needs more heap
than the .mpy build (256K failed with a MemoryError here; 512K boots):
small boards take `make flash` (.mpy) or a frozen firmware (manifest.py). Bounded: every subprocess has a timeout and the
board stops on its own.
"""
import json
import os
import subprocess
import sys

import cluster
import raftctl
import vboard
from paths import ROOT
from test_vboard import MPREMOTE, VBOARD, stop_board


def test_mip_install_from_the_checkout_boots_a_node(tmp_path, capsys):
    d = str(tmp_path / "cl")
    cluster.create(d, nodes=1, limits="fit")
    with open(os.path.join(ROOT, "boards", "unix", "board.json")) as f:
        board = json.load(f)
    node_json = str(tmp_path / "node.json")
    with open(node_json, "w") as f:
        json.dump(vboard.node_config(os.path.join(d, "cluster.json"), 1, board)[0], f)
    flash, link = str(tmp_path / "flash"), str(tmp_path / "pty")
    console = str(tmp_path / "console.log")
    os.makedirs(flash)
    p = subprocess.Popen([sys.executable, VBOARD, "--flash", flash, "--link", link,
                          "--heap", "512K", "--seconds", "150", "--console", console],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("vboard: /dev/")
        # The documented command, run in the checkout.
        r = subprocess.run([MPREMOTE, "connect", link, "mip", "install", "./package.json"],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stdout.rstrip().endswith("Done"), r.stdout + r.stderr
        with open(os.path.join(ROOT, "package.json")) as f:
            urls = json.load(f)["urls"]
        for dest, src in urls:
            assert "Installing: /lib/%s" % dest in r.stdout, dest
            with open(os.path.join(flash, "lib", dest), "rb") as a, \
                    open(os.path.join(ROOT, src), "rb") as b:
                assert a.read() == b.read(), dest
        r = subprocess.run([MPREMOTE, "connect", link, "fs", "cp", node_json, ":node.json", "+",
                            "fs", "cp", os.path.join(ROOT, "boards", "unix", "board.json"),
                            ":board.json", "+", "fs", "cp",
                            os.path.join(ROOT, "firmware", "main.py"), ":main.py", "+", "reset"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert p.stdout.readline().strip() == "vboard: hard reset"
        assert cluster.wait_leader(d, timeout_s=30) == 1
        ctl = ["--cluster", d, "--timeout", "5000"]
        assert raftctl.main(ctl + ["put", "mip", "installed"], env={}) == 0
        assert raftctl.main(ctl + ["get", "mip"], env={}) == 0
        assert capsys.readouterr()[0] == "OK\ninstalled\n"
    finally:
        stop_board(p)
    with open(console, errors="replace") as h:
        text = h.read()
    # (mip's probes for folders print ENOENT tracebacks in the raw REPL: not the node's.)
    assert "mpraft: node 1 serving" in text and "MemoryError" not in text, text[-2000:]
    # Only the library: no .mpy build, nothing from the host tools.
    names = set()
    for dirpath, _, filenames in os.walk(os.path.join(flash, "lib")):
        names.update(filenames)
    assert not [n for n in names if not n.endswith(".py")], names
    assert "memstorage.py" not in names and "fakeflash.py" not in names
