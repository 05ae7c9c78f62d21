"""The timeline of a simulator run (tools/timeline/simrec.py, page.py).

Fast checks of the data the page draws, its size, and that recording it
changes nothing in the run; make test-browser opens the pages in Chromium.
"""
import json
import os
import re
import subprocess
import sys

from simrun import MICROPYTHON, ROOT, run_cli, run_inproc

import page
import simrec

ALL = ["drop", "dup", "reorder", "partition", "crash", "leader", "powercut"]


def _data(tmp_path, **kw):
    sim, res = run_inproc(timeline=str(tmp_path / "t.html"), **kw)
    return sim, res, sim.rec.data(res, "cmd")


def _page_data(html):
    m = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)
    assert m, "no data block in the page"
    return json.loads(m.group(1))


def test_role_spans_cover_the_run_and_match_the_checkers_leaders(tmp_path):
    sim, res, d = _data(tmp_path, seed=7, steps=1500, faults=ALL, clients=3, check_linear=True)
    assert d["nodes"] == [1, 2, 3, 4, 5] and d["unit"] == "tick" and d["t1"] == res["steps"]
    for sp in d["spans"]:
        assert sp[0][0] == 1 and sp[-1][1] == res["steps"]
        for a, b in zip(sp, sp[1:]):
            assert a[1] == b[0] and a[0] < a[1], (a, b)       # contiguous, no gap
            assert (a[2], a[3]) != (b[2], b[3]), (a, b)        # a change each time
        assert all(0 <= s[2] < len(d["roles"]) for s in sp)
    # Every term's leader the safety checker saw is a leader span of that
    # node and term on the page, and nothing else is.
    leaders = set((s[2], s[3]) for s in d["leaders"])
    assert leaders == set((n, t) for t, n in sim.checker.leaders.items())
    assert len(d["elections"]) >= res["elections"]
    # A real election: its leader voted for itself and got votes from others.
    n, t = d["leaders"][0][2], d["leaders"][0][3]
    voters = set(v[1] for v in d["votes"] if v[2] == n and v[3] == t and not v[4])
    assert n in voters and len(voters) >= 3, (n, t, voters)
    # Pre-votes leave no state behind: the engines' events report them.
    pre = [v for v in d["votes"] if v[4]]
    assert pre and all(v[1] != v[2] and v[2] in d["nodes"] for v in pre)
    # The pre-vote campaign that preceded that election got grants before it.
    e = [x for x in d["elections"] if x[1] == n and x[3] == 1 and x[0] <= d["leaders"][0][0]]
    assert e and [v for v in pre if v[2] == n and e[-1][0] <= v[0] <= d["leaders"][0][0]]


def test_datagram_density_adds_up_to_the_network_counters(tmp_path):
    sim, res, d = _data(tmp_path, seed=3, steps=1200, faults=ALL, clients=2)
    den = d["density"]
    assert sum(sum(r) for r in den["sent"]) == res["messages"]
    assert sum(sum(r) for r in den["lost"]) == res["dropped"]
    assert len(den["rows"]) == 6 and sum(den["sent"][5]) > 0  # the clients' row
    # Votes kept one by one are real: each names two nodes and a vote type.
    kinds = set(m[3] for m in d["msgs"])
    assert kinds and kinds <= set([3, 4, 5, 6, 9, 13]), kinds
    assert all(m[1] in d["nodes"] and m[2] in d["nodes"] for m in d["msgs"])


def test_index_lines_are_monotonic_and_thinned(tmp_path):
    import sim as simmod
    opts = simmod.parse_args(["--seed", "5", "--steps", "3000", "--faults", "drop,partition",
                              "--timeline", str(tmp_path / "x.html")])
    s = simmod.Sim(opts)
    s.rec.res = 50  # as a 125,000-step run would have it
    res = s.run()
    d = s.rec.data(res)
    for k, pts in enumerate(d["index"]):
        assert pts, "node %d has no commit points" % (k + 1)
        assert all(p[2] <= p[1] for p in pts)                  # applied <= commit
        assert all(a[1] <= b[1] and a[0] < b[0] for a, b in zip(pts, pts[1:]))
        per = {}
        for p in pts:
            per[p[0] // 50] = per.get(p[0] // 50, 0) + 1
        assert max(per.values()) <= 2, per                     # thinned to the window
        assert len(pts) > 3000 // 50 // 2                      # yet the line is there
        assert pts[-1][1] == s.nodes[k + 1].engine.core.log.committed


def test_recording_changes_nothing_in_the_run(tmp_path):
    kw = dict(seed=11, steps=1500, faults=ALL + ["reconfig"], clients=4, check_linear=True)
    _, plain = run_inproc(**kw)
    _, rec = run_inproc(timeline=str(tmp_path / "x.html"), **kw)
    assert plain == rec


def test_out_of_memory_stops_recording_not_the_run(tmp_path, monkeypatch):
    kw = dict(seed=6, steps=1000, faults=ALL, clients=2)
    _, plain = run_inproc(**kw)
    real = simrec.SimRecorder._end_step

    def starved(self):
        if self.sim.now >= 400:
            raise MemoryError("simulated")
        real(self)
    monkeypatch.setattr(simrec.SimRecorder, "_end_step", starved)
    sim, res, d = _data(tmp_path, **kw)
    assert res == plain
    assert ["recording", "stopped at step 400: out of memory"] in d["meta"]
    assert max(s[1] for sp in d["spans"] for s in sp) == 400
    html = page.html(d)
    assert "stopped at step 400" in html


def test_lock_service_runs_record_the_cluster_without_ops(tmp_path):
    kw = dict(seed=2, steps=800, faults=ALL, clients=3, machine="lock")
    _, plain = run_inproc(**kw)
    sim, res, d = _data(tmp_path, **kw)
    assert plain == res and "ops" not in d and d["leaders"]


def test_client_ops_pair_the_history_and_mark_what_lincheck_could_not_order(tmp_path):
    # Local reads (the negative control) are stale now and then: seed 1
    # makes lincheck fail on a key and name the ops it could not order.
    sim, res, d = _data(tmp_path, seed=1, steps=1500, faults=ALL, clients=5,
                        check_linear=True, reads="local")
    assert res["linearizable"] is False
    ops = d["ops"]
    assert len(ops["rows"]) == res["ops"]
    bad = [r for r in ops["rows"] if r[8]]
    assert bad and sorted(r[7] for r in bad) == sorted(sim.workload.unorderable)
    assert set(r[2] for r in bad) == set([res["lincheck_key"]])
    for r in ops["rows"]:
        assert r[4] == -1 or r[3] <= r[4], r
        assert r[5] in ("ok", "fail", "info", "open")
    # A clean run marks nothing.
    sim, res, d = _data(tmp_path, seed=1, steps=1500, faults=ALL, clients=5, check_linear=True)
    assert res["linearizable"] is True and not any(r[8] for r in d["ops"]["rows"])


def test_page_is_self_contained_and_small(tmp_path):
    out = tmp_path / "seed7.html"
    code, res, stdout = run_cli(["--seed", "7", "--steps", "2000", "--clients", "5",
                                 "--check-linear", "--timeline", str(out)])
    assert code == 0 and ("timeline: %s" % out) in stdout
    html = out.read_text()
    # Size: about 60 bytes a step for 5 nodes and 5 clients, assets included.
    assert len(html) < 250000, len(html)
    low = html.lower()
    for bad in ("<script src", "<link", "@import", "@font-face", "url(http", "src=\"http",
                "href=\"http"):
        assert bad not in low, bad
    assert low.count("</script>") == 3  # the error hook, the data, the viewer
    d = _page_data(html)
    assert d["meta"] and dict(d["meta"])["digest"] == res["digest"]


def test_strings_in_the_data_cannot_end_the_script(tmp_path):
    d = {"title": "</script><script>alert(1)</script>", "nodes": [1], "x": "<!--"}
    html = page.html(d)
    assert html.lower().count("</script>") == 3
    assert _page_data(html) == d


def test_viewer_never_closes_its_own_script():
    js = open(os.path.join(ROOT, "tools", "timeline", "viewer.js")).read()
    assert "</script" not in js.lower()


def test_violation_writes_the_timeline_of_its_shortest_reproduction(tmp_path):
    wrapper = tmp_path / "broken_sim.py"
    wrapper.write_text(
        "import sys\n"
        "sys.path.insert(0, %r)\n"
        "import paths\n"
        "paths.setup()\n"
        "import raft.log\n"
        "raft.log.RaftLog.is_up_to_date = lambda self, i, t: True\n"
        "import sim\n"
        "sys.exit(sim.main(sys.argv[1:]))\n" % (ROOT + "/tools"))
    out = tmp_path / "run.html"
    p = subprocess.run([sys.executable, str(wrapper), "--seed", "1", "--steps", "5000",
                        "--faults", "all", "--timeline", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 1, p.stdout[-2000:]
    lines = p.stdout.splitlines()
    k = [i for i, ln in enumerate(lines) if ln.startswith("shortest reproduction found:")][0]
    repro = tmp_path / "run-repro.html"
    assert lines[k + 1] == "timeline of that run: %s" % repro
    d = _page_data(repro.read_text())
    cmd = lines[k].split(": ", 1)[1]
    assert cmd in d["command"]
    steps = int(cmd.split("--steps ")[1].split()[0])
    assert d["t1"] == steps and d["violations"] and d["violations"][0][0] == steps
    assert d["trace"], "the reproduction's trace is on the page"


def test_micropython_writes_the_same_page(tmp_path):
    args = ["--seed", "4", "--steps", "800", "--clients", "3", "--check-linear"]
    a, b = tmp_path / "cp.html", tmp_path / "mp.html"
    code, res, _ = run_cli(args + ["--timeline", str(a)])
    code2, res2, _ = run_cli(args + ["--timeline", str(b)], interp=MICROPYTHON)
    assert code == code2 == 0 and res["digest"] == res2["digest"]
    assert a.read_bytes() == b.read_bytes()


def test_messages_past_the_cap_are_only_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(simrec, "_MAX_MSGS", 50)
    sim, res, d = _data(tmp_path, seed=7, steps=1500, faults=ALL)
    assert len(d["msgs"]) == 50 and d["msgs_capped"] > 0
    assert sum(sum(r) for r in d["density"]["sent"]) == res["messages"]
