"""A real cluster run's timeline (tools/timeline/runlog.py, runview.py) from a
run log written here by hand, with a node event log in the CPython
runtime's --log-json shape; chaos and demo runs are opened in a browser by
make test-browser."""
import calendar
import json
import time

import pytest

import make_timeline
import page
import runview


class _Log:
    """Writes run.jsonl and node logs with chosen times (ms from the start)."""

    def __init__(self, d, t0_unix=1700000000.0):
        self.d = d
        self.t0 = t0_unix
        self.lines = [{"t": 0.0, "kind": "meta", "t0_unix": t0_unix, "source": "test",
                       "nodes": [1, 2, 3], "command": "python3 x"}]

    def add(self, t, kind, **f):
        rec = {"t": t, "kind": kind}
        rec.update(f)
        self.lines.append(rec)

    def status(self, t, node, role=None, term=0, commit=0):
        if role is None:
            self.add(t, "status", node=node, up=False)
        else:
            self.add(t, "status", node=node, up=True, role=role, term=term, leader=0,
                     commit=commit, applied=commit, snapshot=0, voters=[1, 2, 3], learners=[])

    def op(self, t, process, typ, f, key, value=None):
        ev = {"process": process, "type": typ, "f": f, "key": key}
        if value is not None or (f == "get" and typ == "ok"):
            ev["value"] = value
        self.add(t, "op", **ev)

    def save(self):
        with open(str(self.d / "run.jsonl"), "w") as f:
            for rec in self.lines:
                f.write(json.dumps(rec) + "\n")

    def node_log(self, nid, events):
        """events: (ms, dict) in raft.events.to_dict's shape."""
        with open(str(self.d / ("n%d.log" % nid)), "w") as f:
            f.write("node 1 starting (not JSON)\n")
            for ms, ev in events:
                u = self.t0 + ms / 1000.0
                rec = {"t": 5.0, "node": nid, "level": "info",
                       "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(u))
                       + ".%03dZ" % int(round((u % 1) * 1000))}
                rec.update(ev)
                f.write(json.dumps(rec) + "\n")


def _run(tmp_path):
    lg = _Log(tmp_path)
    for n in (1, 2, 3):
        lg.status(100, n, "follower", 1, 0)
    lg.status(500, 1, "leader", 2, 3)
    lg.add(1000, "fault", fault="kill", node=1, text="kill 1 (leader)")
    lg.status(1100, 1, "leader", 2, 5)      # answered before the kill: ignored
    lg.status(1200, 1)                      # dead
    lg.status(1700, 2, "leader", 3, 6)
    lg.add(2000, "fault", fault="restart", node=1, text="restart 1")
    lg.status(2600, 1, "follower", 3, 6)
    lg.add(3000, "fault", fault="partition", nodes=[3], text="partition [3] | [1, 2]")
    lg.add(3500, "fault", fault="heal", text="heal partition")
    lg.add(3600, "net", forwarded=100, dropped=0, cut=0)
    lg.add(3800, "net", forwarded=150, dropped=10, cut=5)
    # A stale read: put x=a acknowledged, then a get that returns nothing.
    lg.op(4000, 1, "invoke", "put", "x", "a")
    lg.op(4100, 1, "ok", "put", "x", "a")
    lg.op(4200, 2, "invoke", "get", "x")
    lg.op(4300, 2, "ok", "get", "x", None)
    lg.op(4400, 1, "invoke", "get", "y")
    lg.op(4500, 1, "ok", "get", "y", None)
    lg.status(5000, 3, "follower", 3, 9)
    lg.save()
    # Node 3 wrote its own events: a pre-vote campaign, a vote, a snapshot.
    lg.node_log(3, [(1500, {"event": "role", "term": 2, "role": "pre-candidate", "lead": 0}),
                    (1510, {"event": "election", "term": 2, "pre": 1}),
                    (1600, {"event": "vote", "term": 3, "candidate": 2, "pre": 0}),
                    (1650, {"event": "role", "term": 3, "role": "follower", "lead": 2}),
                    (4700, {"event": "snap_installed", "term": 3, "index": 8})])
    return lg


def test_spans_from_polls_kills_and_node_events(tmp_path):
    _run(tmp_path)
    d = runview.load(str(tmp_path))
    assert d["unit"] == "ms" and d["nodes"] == [1, 2, 3] and d["t1"] == 5000
    roles = d["roles"]
    n1 = [(s[0], s[1], roles[s[2]], s[3]) for s in d["spans"][0]]
    # Leader until the kill; the answer logged after it is ignored; down
    # until it answers after its restart.
    assert n1 == [(100, 500, "follower", 1), (500, 1000, "leader", 2), (1000, 2600, "down", -1),
                  (2600, 5000, "follower", 3)], n1
    n3 = [(s[0], roles[s[2]], s[3]) for s in d["spans"][2]]
    assert n3 == [(1500, "pre-candidate", 2), (1650, "follower", 3)], n3  # from its events
    assert [1510, 3, 2, 1] in [[round(e[0]), e[1], e[2], e[3]] for e in d["elections"]]
    assert [[round(v[0]), v[1], v[2], v[3], v[4]] for v in d["votes"]] == [[1600, 3, 2, 3, 0]]
    assert [[round(s[0]), s[1], s[2], s[3]] for s in d["snaps"]] == [[4700, 3, 1, 8]]
    assert [(a, b, n, t) for a, b, n, t in d["leaders"]] == [(500, 1000, 1, 2), (1700, 5000, 2, 3)]
    assert ["node event logs", "3"] in d["meta"]


def test_faults_density_and_unorderable_ops(tmp_path):
    _run(tmp_path)
    d = runview.load(str(tmp_path / "run.jsonl"))
    assert [f[:4] for f in d["faults"]] == [[3000, 3500, "partition", [3]]]
    marks = [(m[0], m[1], m[2]) for m in d["marks"]]
    assert (1000, "kill", 1) in marks and (2000, "restart", 1) in marks
    den = d["density"]
    assert den["label"] == "datagrams"
    assert sum(den["sent"][0]) == 65 and sum(den["lost"][0]) == 15
    ops = d["ops"]
    assert ops["linearizable"] is False
    bad = sorted(r[7] for r in ops["rows"] if r[8])
    assert bad == sorted(ops["unorderable"]) and bad  # the put and the stale get
    assert all(r[2] == "x" for r in ops["rows"] if r[8])
    html = page.html(d)
    assert "data-errors" in html and "\"source\":\"cluster\"" in html


def test_bad_input_is_one_line(tmp_path, capsys):
    assert make_timeline.main([str(tmp_path)]) == 2
    assert "no run log" in capsys.readouterr().out
    (tmp_path / "run.jsonl").write_text("{\"t\": 0, \"kind\": \"status\"}\n")
    with pytest.raises(runview.RunLogError):
        runview.load(str(tmp_path))
    assert make_timeline.main([str(tmp_path / "run.jsonl")]) == 2
    assert make_timeline.main([]) == 2


def test_cli_writes_the_page_beside_the_run_log(tmp_path, capsys):
    _run(tmp_path)
    # A torn last line (the tool was killed mid-write) is skipped.
    with open(str(tmp_path / "run.jsonl"), "a") as f:
        f.write("{\"t\": 5100, \"kind\": \"sta")
    assert make_timeline.main([str(tmp_path)]) == 0
    out = tmp_path / "timeline.html"
    assert out.exists() and "timeline: %s" % out in capsys.readouterr().out


def test_event_times_are_read_as_utc():
    ms = runview._unix_ms({"time": "2023-11-14T22:13:20.250Z"})
    assert ms == calendar.timegm((2023, 11, 14, 22, 13, 20, 0, 0, 0)) * 1000.0 + 250.0
    assert runview._unix_ms({"unix_ms": 12.5}) == 12.5
    assert runview._unix_ms({"t": 3}) is None
