"""Timeline pages in a real browser: `make test-browser` (not in make test).

Headless Chromium (Debian's `chromium`; the make target installs it when
missing) opens each page from a file, dumps the DOM after the scripts ran,
and takes a screenshot. Checked: no script error (the page counts them on
<body data-errors> from window.onerror), the page rendered, one lane per
node, the leader span of a known election, and, for a non-linearizable
history, exactly the ops lincheck could not order drawn highlighted. The
pages: simulator seed 7; seed 1 with stale local reads (the negative
control lincheck rejects); the shortest reproduction of a violation found
with the up-to-date check sabotaged; a 10 s chaos run on real MicroPython
nodes; and the 20,000-step, 5-node, 5-client run, whose size and render time
are printed (README and docs/timeline.md report them). Screenshots go to
build/timeline/.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser

import pytest

from simrun import ROOT, run_cli

OUT = os.path.join(ROOT, "build", "timeline")
SIM_ARGS = ["--nodes", "5", "--faults", "all", "--clients", "5", "--check-linear"]


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    pytest.fail("no chromium on PATH: run `make test-browser` (it installs Debian's chromium)")


def _browser(args, timeout=120):
    # --no-sandbox: the tests run as root here, where Chromium's sandbox refuses.
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--user-data-dir=" + os.path.join(OUT, "profile")] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


class _Dom(HTMLParser):
    """Every element as (tag, attribute dict), in document order."""

    def __init__(self):
        HTMLParser.__init__(self)
        self.els = []

    def handle_starttag(self, tag, attrs):
        self.els.append((tag, dict(attrs)))


def open_page(path, name, size="1400,800"):
    """(elements, body attributes, seconds) of the page after its scripts
    ran; a screenshot lands in build/timeline/NAME.png."""
    url = "file://" + os.path.abspath(path)
    t = time.monotonic()
    p = _browser(["--dump-dom", url])
    secs = time.monotonic() - t
    assert p.returncode == 0 and "<body" in p.stdout, p.stderr[-2000:]
    dom = _Dom()
    dom.feed(p.stdout)
    body = [a for tag, a in dom.els if tag == "body"][0]
    errors = re.search(r'<pre id="errors">(.*?)</pre>', p.stdout, re.S)
    assert body.get("data-errors") == "0", (body, errors and errors.group(1))
    assert body.get("data-rendered") == "1", body
    png = os.path.join(OUT, name + ".png")
    if os.path.exists(png):
        os.remove(png)
    s = _browser(["--window-size=" + size, "--screenshot=" + png, url])
    assert s.returncode == 0 and os.path.getsize(png) > 5000, s.stderr[-2000:]
    return dom.els, body, secs


def _classes(a):
    return set((a.get("class") or "").split())


def _data(path):
    html = open(path).read()
    m = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def _lanes(els, nodes):
    lanes = set(a.get("data-lane") for tag, a in els if tag == "g" and "lane" in _classes(a))
    assert set("node-%d" % n for n in nodes) <= lanes, lanes
    return lanes


def _leader_span(els, node, term):
    return [a for tag, a in els if tag == "rect" and "r-leader" in _classes(a)
            and a.get("data-node") == str(node) and a.get("data-term") == str(term)]


def setup_module(module):
    os.makedirs(OUT, exist_ok=True)


def test_seed_7_opens_with_its_lanes_and_the_first_elections_leader():
    path = os.path.join(OUT, "seed7.html")
    code, res, _ = run_cli(["--seed", "7", "--steps", "2000", "--timeline", path] + SIM_ARGS)
    assert code == 0, res
    d = _data(path)
    els, body, secs = open_page(path, "seed7")
    assert _lanes(els, d["nodes"]) >= set(["faults", "messages", "clients"])
    # The first election of the run: the page data and the checker agree on
    # it (host_tests/timeline); here its span must be drawn.
    start, end, node, term = d["leaders"][0]
    assert _leader_span(els, node, term), (node, term)
    # Every leader span of the run is drawn at full zoom (none merged away).
    drawn = [(a["data-node"], a["data-term"]) for tag, a in els
             if tag == "rect" and "r-leader" in _classes(a)]
    assert len(drawn) == len(d["leaders"])
    ops = [a for tag, a in els if tag == "rect" and "op" in _classes(a)]
    assert ops and not [a for a in ops if "unorderable" in _classes(a)]
    print("seed 7: %d bytes, rendered at %s ms" % (os.path.getsize(path), body["data-render-ms"]))


def test_non_linearizable_history_highlights_the_unorderable_ops():
    path = os.path.join(OUT, "seed1-local-reads.html")
    code, res, _ = run_cli(["--seed", "1", "--steps", "1500", "--reads", "local",
                            "--timeline", path] + SIM_ARGS)
    assert code == 1 and res["linearizable"] is False, res
    d = _data(path)
    want = sorted(d["ops"]["unorderable"])
    assert want
    els, body, secs = open_page(path, "seed1-local-reads")
    hi = [x for tag, x in els if tag == "rect" and "unorderable" in _classes(x)]
    assert sorted(int(x["data-line"]) for x in hi) == want
    verdict = [x for tag, x in els if x.get("id") == "verdict"]
    assert verdict and "bad" in _classes(verdict[0])


def test_zoomed_page_keeps_the_unorderable_ops_and_drops_the_rest():
    path = os.path.join(OUT, "seed1-local-reads.html")
    if not os.path.exists(path):
        run_cli(["--seed", "1", "--steps", "1500", "--reads", "local", "--timeline", path]
                + SIM_ARGS)
    d = _data(path)
    bad = [r for r in d["ops"]["rows"] if r[8]]
    a = min(r[3] for r in bad) - 40
    b = max(r[4] for r in bad) + 40
    url = os.path.abspath(path) + "#range=%d-%d" % (a, b)
    p = _browser(["--dump-dom", "file://" + url])
    dom = _Dom()
    dom.feed(p.stdout)
    body = [x for tag, x in dom.els if tag == "body"][0]
    assert body.get("data-errors") == "0"
    hi = [x for tag, x in dom.els if tag == "rect" and "unorderable" in _classes(x)]
    assert sorted(int(x["data-line"]) for x in hi) == sorted(r[7] for r in bad)
    # Zoomed in, only what is visible is drawn.
    ops = [x for tag, x in dom.els if tag == "rect" and "op" in _classes(x)]
    inside = [r for r in d["ops"]["rows"] if r[3] <= b and (r[4] < 0 or r[4] >= a)]
    assert len(ops) <= len(inside) < len(d["ops"]["rows"])
    s = _browser(["--window-size=1400,620", "--screenshot=" + os.path.join(OUT, "unorderable.png"),
                  "file://" + url])
    assert s.returncode == 0


def test_violation_timeline_opens_with_the_violation_marked(tmp_path):
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
    base = os.path.join(OUT, "violation.html")
    p = subprocess.run([sys.executable, str(wrapper), "--seed", "1", "--steps", "5000",
                        "--faults", "all", "--timeline", base],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 1
    repro = os.path.join(OUT, "violation-repro.html")
    assert ("timeline of that run: %s" % repro) in p.stdout
    els, body, secs = open_page(repro, "violation")
    assert [a for tag, a in els if tag == "line" and "violation" in _classes(a)]


def test_chaos_run_opens():
    d = os.path.join(OUT, "chaos")
    shutil.rmtree(d, ignore_errors=True)
    path = os.path.join(OUT, "chaos.html")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "ops", "chaos.py"),
                        "--seconds", "10", "--seed", "7", "--clients", "4", "--dir", d,
                        "--timeline", path], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert p.returncode == 0, p.stdout[-3000:]
    data = _data(path)
    assert data["unit"] == "ms" and data["ops"]["linearizable"] is True
    els, body, secs = open_page(path, "chaos")
    _lanes(els, data["nodes"])
    assert data["leaders"], "the status polls saw no leader"
    start, end, node, term = data["leaders"][0]
    assert _leader_span(els, node, term)
    assert [a for tag, a in els if tag == "rect" and "op" in _classes(a)]


def test_20000_step_run_is_small_and_renders_fast():
    path = os.path.join(OUT, "seed7-20000.html")
    code, res, _ = run_cli(["--seed", "7", "--steps", "20000", "--timeline", path] + SIM_ARGS,
                           timeout=900)
    assert code == 0 and res["steps"] == 20000, res
    size = os.path.getsize(path)
    assert size < 5 * 1024 * 1024, size
    times = []
    for i in range(3):
        els, body, secs = open_page(path, "seed7-20000")
        times.append((int(body["data-render-ms"]), secs))
    ms = sorted(t[0] for t in times)[1]
    print("20,000 steps: %d bytes; rendered %s ms after navigation start (median of 3: %d ms); "
          "chromium start to DOM dump %.2f s" % (size, [t[0] for t in times], ms,
                                                  sorted(t[1] for t in times)[1]))
    assert ms < 2000, times
