"""firmware/: main.py and mpraft booting the node under the MicroPython unix port.

Each test builds the unix board (tools/board/build.py, so exactly what a board
gets: .mpy files, host-only modules left out) into a folder acting as the
board's root, cds into it and runs `micropython main.py`. Only 127.0.0.1;
every wait is bounded.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

import cluster

from paths import ROOT
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
RAFTCTL = os.path.join(ROOT, "tools", "ops", "raftctl.py")
ENV = dict(os.environ, MICROPYPATH=":lib")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fw") / "unix")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "board", "build.py"), "unix",
                        "--out", out, "--no-budget"], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(os.path.join(out, "mpraft.mpy"))
    assert not os.path.exists(os.path.join(out, "lib", "raftio", "board.mpy"))
    return out


def board_root(build, path, node=None):
    shutil.copytree(build, path)
    if node is not None:
        with open(os.path.join(path, "node.json"), "w") as f:
            json.dump(node, f)
    return path


def boot(root, timeout=20):
    return subprocess.run([MICROPYTHON, "main.py"], cwd=root, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def one_line(r):
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert len(lines) == 1, r.stdout
    return lines[0]


def stop_boards(procs):
    """Stop (Popen, console log, root) boards."""
    for p, log, root in procs:
        p.kill()
        p.wait(timeout=10)
        log.close()


def assert_served(procs):
    """Each board's console says it served, without a traceback."""
    for p, log, root in procs:
        with open(os.path.join(root, "console.log")) as f:
            text = f.read()
        assert "mpraft: node" in text and "Traceback" not in text, text


def good_node(port=7001):
    return {"node_id": 1, "cluster_id": 7, "key": "00" * 16,
            "peers": [{"id": 1, "host": "127.0.0.1", "port": port}]}


def test_missing_config_one_line(build, tmp_path):
    line = one_line(boot(board_root(build, str(tmp_path / "b"))))
    assert line == "mpraft: ValueError no valid /node.json"


def test_an_error_message_read_from_flash_is_the_source_text(build, tmp_path):
    # The build keeps the resident firmware's error messages in mpraft_msgK.mpy
    # (tools/board/messages.py), read when an error is raised: the error
    # still says exactly what the source says, and the part is dropped again.
    assert os.path.exists(os.path.join(build, "mpraft_msg0.mpy"))
    with open(os.path.join(build, "mpraft.mpy"), "rb") as f:
        assert b"no event level" not in f.read()
    root = board_root(build, str(tmp_path / "b"), good_node(7303))
    with open(os.path.join(root, "script.py"), "w") as f:
        f.write(SCRIPT_HEAD + "import sys\nfor _ in range(2):\n    try:\n"
                "        mpraft.level('loud')\n    except ValueError as e:\n        print(e)\n"
                "print(sorted(m for m in sys.modules if m.startswith('mpraft_')))\n")
    r = subprocess.run([MICROPYTHON, "script.py"], cwd=root, env=ENV, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-3:] == [
        "no event level 'loud'", "no event level 'loud'", "[]"], r.stdout


def test_boot_only_code_is_dropped_once_the_node_is_built(build, tmp_path):
    # `# mpraft: boot` defs (tools/board/bootpart.py) run from mpraft_boot.mpy,
    # which boot() drops from sys.modules once the node is built, whether
    # the boot worked or not; so are the other parts the boot used
    # (mpraft_snap restores a snapshot; imported here by hand).
    assert os.path.exists(os.path.join(build, "mpraft_boot.mpy"))
    for node in (good_node(7304), None):
        root = board_root(build, str(tmp_path / ("b%d" % (node is None))), node)
        with open(os.path.join(root, "script.py"), "w") as f:
            f.write("import mpraft_snap\n" + SCRIPT_HEAD + "import sys\n"
                    "print(mpraft.node is not None, "
                    "sorted(m for m in sys.modules if m.startswith('mpraft_')))\n")
        r = subprocess.run([MICROPYTHON, "script.py"], cwd=root, env=ENV, capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
        assert r.stdout.strip().splitlines()[-1] == "%s []" % (node is not None), r.stdout


SCRIPT_HEAD = "import mpraft\nmpraft.run = lambda **kw: None\nmpraft.main()\n"


def test_bad_json_one_line(build, tmp_path):
    root = board_root(build, str(tmp_path / "b"))
    with open(os.path.join(root, "node.json"), "w") as f:
        f.write("{not json")
    assert "node.json" in one_line(boot(root))


@pytest.mark.parametrize("field,value", [("node_id", "1"), ("cluster_id", None),
                                         ("key", "abc"), ("peers", {}), ("node_id", 9)])
def test_bad_field_named(build, tmp_path, field, value):
    node = good_node()
    if value is None:
        del node[field]
    else:
        node[field] = value
    line = one_line(boot(board_root(build, str(tmp_path / "b"), node)))
    assert line.startswith("mpraft: ") and field in line, line


def test_safe_mode_skips_autostart(build, tmp_path):
    root = board_root(build, str(tmp_path / "b"), good_node())
    open(os.path.join(root, "SAFE"), "w").close()
    assert one_line(boot(root)) == "mpraft: /SAFE"
    assert not os.path.exists(os.path.join(root, "raft"))


SCRIPT = """
import mpraft
loop = mpraft.run
mpraft.run = lambda **kw: None
mpraft.main()
mpraft.level("trace")
loop(300)
print("STATUS")
mpraft.status()
print("PEERS")
mpraft.peers()
print("EVENTS")
mpraft.events(40)
import struct
mpraft.node.engine.propose(struct.pack("<BIIBH", 2, 9, 4, 3, 2) + b"keyv1")
mpraft.node.engine.propose(b"junk")
loop(50)
print("ENTRIES")
mpraft.log(2)
print("THATS-ALL")
e = mpraft.node.engine
e.propose_conf_change(2, 6, b"127.0.0.1:7999")
loop(50)
e.propose_conf_change(4, (2, ((3, 6),)), b"")
loop(50)
e.propose_conf_change(4, (0, ()), b"")
loop(50)
print("CONF")
mpraft.log(3)
print("CONF-EVENTS")
mpraft.events(12)
print("END")
mpraft.campaign()
loop(50)
mpraft.stop()
print("LEVEL", mpraft.level())
"""


def test_repl_inspection_single_node(build, tmp_path):
    port = cluster.free_ports(1)[0]
    root = board_root(build, str(tmp_path / "b"), good_node(port))
    with open(os.path.join(root, "script.py"), "w") as f:
        f.write(SCRIPT)
    r = subprocess.run([MICROPYTHON, "script.py"], cwd=root, env=ENV, capture_output=True,
                       text=True, timeout=30)
    out = r.stdout
    assert r.returncode == 0 and "Traceback" not in out + r.stderr, out + r.stderr
    assert "mpraft: node 1 serving" in out
    # A table: one aligned "name value" row per field, counters that moved.
    status = out.split("STATUS\n")[1].split("PEERS\n")[0].splitlines()
    assert "role         leader" in status and "term         1" in status, status
    assert "drops        -" in status, status
    assert any(ln.startswith("heap_free    ") for ln in status), status
    assert status.index("peer  match   next  state      inflight") == len(status) - 2, status
    assert status[-1] == "1    self", status
    assert "1    self" in out.split("PEERS\n")[1]
    events = out.split("EVENTS\n")[1].split("ENTRIES\n")[0].splitlines()
    # Reported by the core as it happened (raft/events.py), seconds before now.
    assert any(re.match(r" +-\d+\.\ds essential leader +term 1 1 0$", ln) for ln in events), events
    assert any(re.match(r" +-\d+\.\ds essential role +term 0 pre-candidate 0$", ln)
               for ln in events), events
    assert any(re.match(r" +-\d+\.\ds essential role +term 1 leader 1$", ln) for ln in events), events
    assert any(re.match(r" +-\d+\.\ds debug +commit +term 1 \d+ 0$", ln) for ln in events), events
    assert any(re.match(r" +-\d+\.\ds trace +applied +term 1 ", ln) for ln in events), events
    assert "LEVEL trace" in out
    log = out.split("ENTRIES\n")[1].split("THATS-ALL")[0].splitlines()
    assert log == ["2 1 put 9 4 b'key' b'v1'", "3 1 ? b'junk'"], log
    # Membership entries decoded: single-server, joint (explicit), leaving.
    conf = out.split("CONF\n")[1].split("CONF-EVENTS\n")[0].splitlines()
    assert conf == ["4 1 conf add-learner 6", "5 1 conf remove 6", "6 1 conf leave-joint"], conf
    ev = out.split("CONF-EVENTS\n")[1].split("END\n")[0]
    assert re.search(r"essential conf +term 1 remove 6", ev), ev
    assert re.search(r"essential conf +term 1 leave-joint 0", ev), ev
    assert os.path.isdir(os.path.join(root, "raft"))


def test_three_boards_serve_raftctl(build, tmp_path):
    d = str(tmp_path / "cl")
    cl = cluster.create(d, nodes=3)
    procs = []
    try:
        for n in cl["nodes"]:
            with open(os.path.join(d, "node%d.json" % n["id"])) as f:
                node = json.load(f)
            root = board_root(build, str(tmp_path / ("b%d" % n["id"])), node)
            log = open(os.path.join(root, "console.log"), "w")
            procs.append((subprocess.Popen([MICROPYTHON, "main.py"], cwd=root, env=ENV,
                                           stdout=log, stderr=subprocess.STDOUT), log, root))
        cluster.wait_leader(d, timeout_s=20)
        ctl = [sys.executable, RAFTCTL, "--cluster", os.path.join(d, "cluster.json")]
        r = subprocess.run(ctl + ["put", "k1", "v1"], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 0, r.stdout + r.stderr
        r = subprocess.run(ctl + ["get", "k1"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and r.stdout.strip() == "v1", r.stdout + r.stderr
        r = subprocess.run(ctl + ["status"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and "leader" in r.stdout, r.stdout + r.stderr
    finally:
        stop_boards(procs)
    assert_served(procs)


CRASH = """
import sys
import time as _t
class M:
    def reset():
        print("RESET")
        sys.exit(3)
class T:
    ticks_ms = _t.ticks_ms
    ticks_diff = _t.ticks_diff
    ticks_add = _t.ticks_add
    def sleep_ms(ms):
        pass
sys.modules["machine"] = M  # machine.reset ends this process: the next run is the next boot
sys.modules["time"] = T     # no 3 s wait before the reset
import mpraft
mpraft.Node.run_once = lambda self: 1 // 0   # a bug that kills the loop at every boot
mpraft.main()
"""


def test_crash_loop_ends_in_safe_mode(build, tmp_path):
    # Three fatal resets in a row: the fourth boot writes /SAFE and stays at
    # the REPL instead of resetting forever; the flash is kept for inspection.
    root = board_root(build, str(tmp_path / "b"), good_node(7302))
    with open(os.path.join(root, "crash.py"), "w") as f:
        f.write(CRASH)
    outs = []
    for _ in range(5):
        r = subprocess.run([MICROPYTHON, "crash.py"], cwd=root, env=ENV, capture_output=True,
                           text=True, timeout=30)
        outs.append(r.stdout)
    for k in range(3):
        assert "mpraft: fatal; reset in 3 s" in outs[k] and "RESET" in outs[k], outs[k]
    assert outs[3].strip() == "mpraft: 3 fatal errors in a row; /SAFE written", outs[3]
    assert outs[4].strip() == "mpraft: /SAFE", outs[4]
    assert os.path.exists(os.path.join(root, "SAFE"))
    assert not os.path.exists(os.path.join(root, "CRASHES"))
    assert os.path.isdir(os.path.join(root, "raft"))


def test_status_after_a_failed_boot_says_why(build, tmp_path):
    node = good_node()
    del node["key"]
    root = board_root(build, str(tmp_path / "b"), node)
    with open(os.path.join(root, "script.py"), "w") as f:
        f.write("import mpraft\nmpraft.main()\nmpraft.status()\nmpraft.run()\n")
    r = subprocess.run([MICROPYTHON, "script.py"], cwd=root, env=ENV, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert "node not running: KeyError" in r.stdout and "key" in r.stdout, r.stdout
    # run() too says why instead of an AttributeError on None.
    assert r.stdout.count("node not running: KeyError") == 2, r.stdout


def test_lazy_parts_load_for_a_membership_change_and_a_snapshot_send(build, tmp_path):
    # The build ships membership changes and snapshot transfer as lazily
    # imported parts (docs/memory.md): a learner added to a cluster whose
    # log is compacted away needs both, on the leader (propose the change,
    # send the snapshot) and on the learner (install it, apply the change).
    assert os.path.exists(os.path.join(build, "mpraft_conf.mpy"))
    assert os.path.exists(os.path.join(build, "mpraft_snap.mpy"))
    d = str(tmp_path / "cl")
    cl = cluster.create(d, nodes=4, voters=3)
    procs = []
    ctl = [sys.executable, RAFTCTL, "--cluster", os.path.join(d, "cluster.json")]

    def endpoints():
        r = subprocess.run(ctl + ["-w", "json", "status"], capture_output=True,
                           text=True, timeout=20)
        return dict((row["id"], row) for row in json.loads(r.stdout))

    try:
        for n in cl["nodes"]:
            with open(os.path.join(d, "node%d.json" % n["id"])) as f:
                node = json.load(f)
            root = board_root(build, str(tmp_path / ("b%d" % n["id"])), node)
            with open(os.path.join(root, "board.json")) as f:
                board = json.load(f)
            # Snapshot and compact every 32 entries, so the learner's first
            # entries are gone by the time it joins.
            board.update(snapshot_entries=32, ring_capacity=32)
            with open(os.path.join(root, "board.json"), "w") as f:
                json.dump(board, f)
            log = open(os.path.join(root, "console.log"), "w")
            procs.append((subprocess.Popen([MICROPYTHON, "main.py"], cwd=root, env=ENV,
                                           stdout=log, stderr=subprocess.STDOUT), log, root))
        cluster.wait_leader(d, timeout_s=20)
        pairs = tmp_path / "pairs.txt"
        pairs.write_text("".join("k%d v%d\n" % (i, i) for i in range(2000)))
        r = subprocess.run(ctl + ["bulk-load", str(pairs)], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        rows = endpoints()
        lead = [row for row in rows.values() if row.get("role") == "leader"][0]
        assert lead["snapshot"] > 1, lead
        r = subprocess.run(ctl + ["add-learner", "4"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        deadline = time.time() + 20
        while time.time() < deadline:
            me = endpoints().get(4, {})
            if (me.get("applied") or 0) >= lead["commit"]:
                break
            time.sleep(0.2)
        assert me["applied"] >= lead["commit"] and me["snapshot"] >= lead["snapshot"], me
    finally:
        stop_boards(procs)
    assert_served(procs)
