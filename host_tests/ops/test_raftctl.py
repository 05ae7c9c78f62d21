"""raftctl says what happened (issue 12 item 5, issue 11 item 6): one row per bad input.

Every bad input exits 2 with one line on stderr naming the problem (never a
raw exception name, never a traceback); help goes to stdout with exit 0;
writes print OK; refused membership changes say why. raftctl's main() runs
in-process against three MicroPython node processes on loopback.
"""
import json
import os

import pytest

import cluster
import raftctl

pytestmark = pytest.mark.skipif(not os.path.exists(cluster.micropython()) and
                                cluster.micropython() != "micropython",
                                reason="no micropython")


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("ctl") / "cl")
    cluster.up(d, 3, "micropython", timeout_s=20)
    # The table below checks the wire's limits and the node's TOO_LARGE: a
    # cluster file from before "limits" (the nodes keep theirs, the same
    # unix-board defaults); test_the_cluster_files_limits_are_checked_first
    # has them.
    with open(os.path.join(d, "cluster.json")) as f:
        cl = json.load(f)
    with open(os.path.join(d, "limits.json"), "w") as f:
        json.dump(cl, f)
    del cl["limits"]
    with open(os.path.join(d, "cluster.json"), "w") as f:
        json.dump(cl, f)
    try:
        yield d
    finally:
        cluster.down(d)


def ctl(capsys, d, *args, env=None):
    argv = list(args) if d is None else ["--cluster", os.path.join(d, "cluster.json"),
                                         "--timeout", "3000"] + list(args)
    rc = raftctl.main(argv, env={} if env is None else env)
    out, err = capsys.readouterr()
    return rc, out, err


# (arguments, exit code, the one line on stderr). Nothing here reaches a node
# except the membership rows, which the leader refuses with its reason.
BIG = "v" * 2000
BAD = [
    (["put", "k" * 300, "v"], 2, "raftctl: key of 300 bytes is over the limit of 255"),
    (["get", "k" * 256], 2, "raftctl: key of 256 bytes is over the limit of 255"),
    (["put", "k", BIG], 2, "raftctl: value of 2000 bytes is over the limit of 1356"),
    (["cas", "k", "x" * 700, "y" * 700], 2, "raftctl: value of 700 bytes is over the limit of 656"),
    (["put", "k", "v" * 600], 2,
     "raftctl: refused: key or value over the cluster's limits (TOO_LARGE)"),
    (["add-voter", "70000"], 2, "raftctl: node id 70000 is out of range 1..65535"),
    (["add-learner", "0", "127.0.0.1:9"], 2, "raftctl: node id 0 is out of range 1..65535"),
    (["remove", "x"], 2, "raftctl: a node id is a number, got 'x'"),
    (["transfer", "-3"], 2, "raftctl: node id -3 is out of range 1..65535"),
    (["transfer", "9"], 2, "raftctl: node 9 is not in the cluster file (1, 2, 3)"),
    (["add-learner", "7"], 2, "raftctl: node 7 is not in the cluster file; give its HOST:PORT"),
    (["add-learner", "7", "nowhere"], 2, "raftctl: address must be HOST:PORT, got 'nowhere'"),
    (["--timeout", "0", "get", "k"], 2, "raftctl: --timeout must be 1..3600000 ms, got 0"),
    (["--timeout", "soon", "get", "k"], 2, "raftctl: --timeout wants a number, got 'soon'"),
    (["-w", "yaml", "endpoint", "status"], 2,
     "raftctl: --write-out must be one of table|json|simple, got 'yaml'"),
    (["frobnicate"], 2, "raftctl: unknown command 'frobnicate' (see raftctl --help)"),
    (["--frob", "get", "k"], 2, "raftctl: unknown option --frob (see raftctl --help)"),
    (["endpoint", "health"], 2, "raftctl: unknown endpoint command 'health' (endpoint status)"),
    (["put", "only-key"], 2, "raftctl: usage: raftctl put KEY VALUE"),
    ([], 2, "raftctl: no command given"),
    (["get", "--absent"], 2, "raftctl: --absent only stands for OLD in cas"),
    (["add-voter", "2"], 2, "raftctl: refused by node LEADER: node 2 is already a voter"),
    (["remove", "9"], 2, "raftctl: refused by node LEADER: node 9 is not a member"),
]


@pytest.mark.parametrize("args,code,line", BAD, ids=[" ".join(r[0])[:40] or "none"
                                                     for r in BAD])
def test_bad_input_exits_with_one_line(three, capsys, args, code, line):
    rc, out, err = ctl(capsys, three, *args)
    line = line.replace("LEADER", str(cluster.wait_leader(three, 10)))
    assert (rc, err) == (code, line + "\n"), (rc, out, err)
    assert out == ""


def test_the_cluster_files_limits_are_checked_first(three, capsys):
    # cluster.json states the cluster's limits (README, "Cluster limits"):
    # raftctl refuses past them locally, in one line, with their numbers.
    lim = ["--cluster", os.path.join(three, "limits.json")]
    for args, line in ((["put", "k" * 200, "v"], "key of 200 bytes is over the limit of 128"),
                       (["put", "k", "v" * 600], "value of 600 bytes is over the limit of 512")):
        assert ctl(capsys, None, *(lim + args)) == (2, "", "raftctl: %s\n" % line)
    assert ctl(capsys, None, *(lim + ["put", "k", "v" * 512])) == (0, "OK\n", "")


def test_no_cluster_says_how_to_give_one(capsys):
    rc, out, err = ctl(capsys, None, "get", "k")
    assert (rc, out, err) == (2, "", "raftctl: no cluster: give --cluster FILE or set "
                                     "MPRAFT_CLUSTER\n")
    rc, out, err = ctl(capsys, None, "--cluster", "/nonexistent/c.json", "get", "k")
    assert rc == 2 and err.startswith("raftctl: cannot read cluster file /nonexistent/c.json")
    assert len(err.splitlines()) == 1


def test_help_goes_to_stdout_with_exit_0(capsys):
    for args in (["--help"], ["-h"], ["help"]):
        rc, out, err = ctl(capsys, None, *args)
        assert rc == 0 and err == "" and "endpoint status" in out and "MPRAFT_CLUSTER" in out
    for args in (["put", "--help"], ["help", "put"], ["--cluster", "x", "put", "-h"]):
        rc, out, err = ctl(capsys, None, *args)
        assert (rc, err) == (0, ""), err
        assert out.startswith("usage: raftctl [global flags] put KEY VALUE\n"), out
    rc, out, err = ctl(capsys, None, "help", "frob")
    assert rc == 2 and out == "" and len(err.splitlines()) == 1


def test_writes_print_ok_and_reads_the_value(three, capsys):
    assert ctl(capsys, three, "put", "k", "v1") == (0, "OK\n", "")
    assert ctl(capsys, three, "get", "k") == (0, "v1\n", "")
    assert ctl(capsys, three, "-w", "json", "get", "k") == (
        0, '{"key": "k", "value": "v1"}\n', "")
    assert ctl(capsys, three, "cas", "k", "v1", "v2") == (0, "OK\n", "")
    assert ctl(capsys, three, "cas", "k", "v1", "v3") == (
        1, "", "raftctl: cas failed: 'k' holds 'v2'\n")
    assert ctl(capsys, three, "delete", "k") == (0, "OK\n", "")
    assert ctl(capsys, three, "delete", "k") == (1, "", "raftctl: key 'k' not found\n")
    # The empty key is a key like any other (the state machine takes it).
    assert ctl(capsys, three, "put", "", "e") == (0, "OK\n", "")
    assert ctl(capsys, three, "get", "") == (0, "e\n", "")


def test_cluster_from_the_environment(three, capsys):
    env = {"MPRAFT_CLUSTER": three}  # a folder means its cluster.json
    assert raftctl.main(["put", "env", "yes"], env=env) == 0
    assert raftctl.main(["get", "env"], env=env) == 0
    assert capsys.readouterr() == ("OK\nyes\n", "")
    # --cluster wins over the environment.
    env = {"MPRAFT_CLUSTER": "/nonexistent"}
    assert raftctl.main(["--cluster", three, "get", "env"], env=env) == 0


def test_endpoint_status_in_three_write_outs(three, capsys):
    lead = cluster.wait_leader(three, 10)
    cl = cluster.load(three)
    addr = dict((n["id"], "%s:%d" % (n["host"], n["port"])) for n in cl["nodes"])
    rc, out, err = ctl(capsys, three, "-w", "json", "endpoint", "status")
    rows = json.loads(out)
    assert rc == 0 and err == ""
    assert [r["id"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert sorted(r) == sorted(raftctl.ENDPOINT_COLUMNS)
        assert r["address"] == addr[r["id"]] and r["reachable"] is True
        assert r["leader"] == lead and r["role"] == ("leader" if r["id"] == lead else "follower")
    rc, out, err = ctl(capsys, three, "--write-out=simple", "endpoint", "status")
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 3
    f = lines[lead - 1].split(", ")
    assert f[:3] == [str(lead), addr[lead], "leader"] and f[-1] == "true", lines
    rc, out, err = ctl(capsys, three, "endpoint", "status")
    lines = out.splitlines()
    assert rc == 0 and lines[0].startswith("+--") and lines[1].split() == [
        "|", "ID", "|", "ADDRESS", "|", "ROLE", "|", "TERM", "|", "LEADER", "|", "COMMIT", "|",
        "APPLIED", "|", "REACHABLE", "|"]
    assert len(lines) == 7 and " %s " % addr[lead] in lines[2 + lead]
    # status keeps --json and gains -w simple.
    rc, out, err = ctl(capsys, three, "status", "--json")
    assert rc == 0 and [r["id"] for r in json.loads(out)] == [1, 2, 3]
    rc, out, err = ctl(capsys, three, "-w", "simple", "status")
    assert rc == 0 and len(out.splitlines()) == 3


def board_file(tmp_path, **changes):
    """A copy of the unix board file with some fields changed."""
    with open(cluster.BOARD) as f:
        b = json.load(f)
    b.update(changes)
    path = str(tmp_path / "board.json")
    with open(path, "w") as f:
        json.dump(b, f)
    return path


def test_a_pending_change_is_named_and_an_unreachable_cluster_exits_3(tmp_path, capsys):
    # Two of three voters down: a change can be proposed but never commit, so
    # the next one is refused BUSY until its deadline: "still pending". A
    # 6 s election timeout keeps the lone leader in office meanwhile (it
    # steps down once it has not heard a quorum for that long); the 2 s
    # deadline leaves a loaded machine time to answer at all.
    d = str(tmp_path / "cl")
    cluster.up(d, 3, "micropython", timeout_s=30, board=board_file(tmp_path, election_ticks=600))
    try:
        lead = cluster.wait_leader(d, 20)
        for n in (1, 2, 3):
            if n != lead:
                cluster.kill(d, n)
        args = ["--cluster", d, "--timeout", "2000"]
        rc = raftctl.main(args[:-1] + ["300", "add-learner", "8", "127.0.0.1:9"], env={})
        out, err = capsys.readouterr()
        assert (rc, out) == (3, "") and "no leader answered within 300" in err, err
        rc = raftctl.main(args + ["add-learner", "9", "127.0.0.1:9"], env={})
        out, err = capsys.readouterr()
        assert (rc, out, err) == (3, "", "raftctl: another membership change is still pending "
                                         "after 2000 ms\n")
    finally:
        cluster.down(d)
    rc = raftctl.main(["--cluster", d, "--timeout", "300", "get", "k"], env={})
    out, err = capsys.readouterr()
    assert (rc, out) == (3, "") and err == ("raftctl: cluster unavailable: no leader answered "
                                            "within 300 ms\n")


def test_add_node_then_the_printed_add_learner_brings_it_in(tmp_path, capsys):
    d = str(tmp_path / "cl")
    cluster.up(d, 3, "micropython", timeout_s=20)
    try:
        assert cluster.main(["add-node", "--id", "4", "--dir", d]) == 0
        out = capsys.readouterr()[0].splitlines()
        addr = "%s:%d" % [(n["host"], n["port"]) for n in cluster.load(d)["nodes"]
                          if n["id"] == 4][0]
        assert out[0].startswith("node 4 added to %s/cluster.json at %s" % (d, addr)), out
        want = "then: raftctl --cluster %s/cluster.json add-learner 4 %s" % (d, addr)
        assert out[-1] == want, out
        # The first membership is pinned: node 4 boots as an outsider.
        assert cluster.load(d)["voters"] == [1, 2, 3]
        with open(os.path.join(d, "node4.json")) as f:
            assert json.load(f)["voters"] == [1, 2, 3]
        cluster.start(d, 4)
        cmd = want.split("raftctl ", 1)[1].split()
        assert raftctl.main(cmd, env={}) == 0
        assert capsys.readouterr()[0] == "add-learner 4: applied\n"
        assert raftctl.main(["--cluster", d, "put", "k", "v"], env={}) == 0
        lead = cluster.wait_leader(d, 10)
        for _ in range(100):
            st = dict(cluster.statuses(d))
            if st.get(4) and st[4]["applied"] >= st[lead]["commit"]:
                break
            import time
            time.sleep(0.05)
        assert st[4]["role"] == "learner" and st[4]["applied"] >= st[lead]["commit"]
        # Bad input: one line, exit 2.
        for args, line in ((["--id", "4"], "cluster: add-node: node 4 is already in %s/"
                                           "cluster.json" % d),
                           (["--id", "0"], "cluster: add-node: node id 0 is out of range "
                                           "1..65535"),
                           (["--id", "x"], "cluster: add-node wants numbers for --id and --port"),
                           (["--id", "5", "--port", addr.split(":")[1]],
                            "cluster: add-node: node 4 already listens on %s" % addr)):
            capsys.readouterr()
            assert cluster.main(["add-node", "--dir", d] + args) == 2
            assert capsys.readouterr()[0] == line + "\n"
    finally:
        cluster.down(d)


def test_the_client_refuses_a_command_over_one_datagram_in_one_line():
    # It grew its buffer past the datagram and leaked "BufferError: Existing
    # exports of data" (issue 12); nothing is sent, no node is needed.
    from raftio.client import Client
    c = Client(1, "00" * 32, [(1, "127.0.0.1", 9)], timeout_ms=100)
    try:
        for call in (lambda: c.put("k", "v" * 2000), lambda: c.cas("k", "o" * 700, "n" * 700),
                     lambda: c.get("k" * 1400)):
            with pytest.raises(ValueError) as e:
                call()
            assert str(e.value).startswith("client: a command of ") and str(e.value).endswith(
                " bytes does not fit in a datagram (1372)")
        assert c.sends == 0 and c.cid == 0
    finally:
        c.close()
