"""tools/history/lincheck.py: hand-made histories, a brute-force differential test,
the CLI contract (exit codes, last line JSON) and the 10k-op benchmark."""
import itertools
import json
import os
import random
import subprocess
import sys

import gen_history
import lincheck

from paths import ROOT as _ROOT
_TOOL = os.path.join(_ROOT, "tools", "history", "lincheck.py")


def inv(p, f, key="x", value=None):
    ev = {"process": p, "type": "invoke", "f": f, "key": key}
    if value is not None:
        ev["value"] = value
    return ev


def done(p, t="ok", value="<none>"):
    ev = {"process": p, "type": t}
    if value != "<none>":
        ev["value"] = value
    return ev


def seq(*ops):
    """Sequential history from (f, value[, result]) tuples; result is the
    completion type, or for get the value read."""
    out = []
    for i, op in enumerate(ops):
        f, value = op[0], op[1]
        out.append(inv(i, f, value=value if f != "get" else None))
        if f == "get":
            out.append(done(i, value=value))
        else:
            out.append(done(i, op[2] if len(op) > 2 else "ok"))
    return out


def check(events):
    return lincheck.check_events(events)


def run_cli(args, stdin=None):
    return subprocess.run([sys.executable, _TOOL] + args, input=stdin, capture_output=True,
                          text=True, timeout=120)


# --- hand-made histories -------------------------------------------------

def test_empty_history_is_linearizable():
    r = check([])
    assert r["linearizable"] is True and r["ops"] == 0


def test_sequential_put_get_delete():
    r = check(seq(("get", None), ("put", "1"), ("get", "1"), ("delete", None), ("get", None)))
    assert r["linearizable"] is True and r["ops"] == 5


def test_stale_read():
    r = check(seq(("put", "1"), ("put", "2"), ("get", "1")))
    assert r["linearizable"] is False
    assert r["key"] == "x"
    got = [(d["f"], d["value"]) for d in r["ops_unorderable"]]
    assert got == [("put", "1"), ("put", "2"), ("get", "1")]
    assert r["prefix_end_line"] == 6


def test_duplicate_apply():
    # one put of 1, but 1 is seen again after 2 replaced it
    r = check(seq(("put", "1"), ("put", "2"), ("get", "2"), ("get", "1")))
    assert r["linearizable"] is False
    assert r["prefix_end_line"] == 8


def test_lost_update_two_cas_from_same_value():
    h = seq(("put", "0"))
    h += [inv(1, "cas", value=["0", "1"]), inv(2, "cas", value=["0", "2"]),
          done(1), done(2)]
    r = check(h)
    assert r["linearizable"] is False
    fs = sorted(d["f"] for d in r["ops_unorderable"])
    assert fs == ["cas", "cas", "put"]


def test_read_of_failed_write():
    r = check(seq(("put", "1", "fail"), ("get", "1")))
    assert r["linearizable"] is False
    assert [d["f"] for d in r["ops_unorderable"]] == ["get"]


def test_failed_write_not_seen_is_fine():
    assert check(seq(("put", "1", "fail"), ("get", None)))["linearizable"] is True


def test_cas_saw_a_value_never_written():
    r = check(seq(("put", "a"), ("cas", ["zz", "b"])))
    assert r["linearizable"] is False
    assert r["ops_unorderable"][-1]["value"] == ["zz", "b"]


def test_cas_semantics():
    assert check(seq(("put", "a"), ("cas", ["a", "b"]), ("get", "b")))["linearizable"] is True
    # a failed cas never happened
    assert check(seq(("put", "a"), ("cas", ["a", "b"], "fail"), ("get", "a")))["linearizable"] is True
    # cas from absent
    assert check(seq(("cas", [None, "b"]), ("get", "b")))["linearizable"] is True
    assert check(seq(("put", "a"), ("cas", [None, "b"])))["linearizable"] is False


def test_get_before_any_write():
    assert check(seq(("get", None)))["linearizable"] is True
    assert check(seq(("get", "v")))["linearizable"] is False


def test_read_after_delete():
    assert check(seq(("put", "1"), ("delete", None), ("get", "1")))["linearizable"] is False


def test_concurrent_overlapping_ops_are_fine():
    # the read overlaps the write: it may see either value
    for seen in ("1", None):
        h = [inv(1, "put", value="1"), inv(2, "get"), done(2, value=seen), done(1)]
        assert check(h)["linearizable"] is True, seen
    # two overlapping writes then reads agreeing on one order
    h = [inv(1, "put", value="1"), inv(2, "put", value="2"), done(2), done(1),
         inv(3, "get"), done(3, value="1"), inv(3, "get"), done(3, value="1")]
    assert check(h)["linearizable"] is True


def test_reads_disagree_on_overlapping_writes_order():
    h = [inv(1, "put", value="1"), inv(2, "put", value="2"), done(2), done(1),
         inv(3, "get"), done(3, value="1"), inv(3, "get"), done(3, value="2")]
    assert check(h)["linearizable"] is False


def test_info_op_may_or_may_not_have_applied():
    for t in ("info", None):  # explicit info, or left open at the end
        for seen in ("1", None):
            h = [inv(1, "put", value="1")]
            if t:
                h.append(done(1, t))
            h += [inv(2, "get"), done(2, value=seen)]
            r = check(h)
            assert r["linearizable"] is True, (t, seen)
            assert r["info"] == 1


def test_info_op_applies_at_most_once():
    h = [inv(1, "put", value="1"), done(1, "info"),
         inv(2, "get"), done(2, value="1"), inv(2, "get"), done(2, value=None),
         inv(2, "get"), done(2, value="1")]
    assert check(h)["linearizable"] is False


def test_info_op_cannot_act_before_its_invoke():
    h = [inv(2, "get"), done(2, value="1"), inv(1, "put", value="1"), done(1, "info")]
    assert check(h)["linearizable"] is False


def test_info_cas_chain():
    h = seq(("put", "a"))
    h += [inv(1, "cas", value=["a", "b"]), done(1, "info"),
          inv(2, "cas", value=["b", "c"]), done(2, "info"),
          inv(3, "get"), done(3, value="c")]
    assert check(h)["linearizable"] is True
    h[-1] = done(3, value="b")
    assert check(h)["linearizable"] is True


def test_info_write_feeds_a_cas():
    h = [inv(1, "put", value="a"), done(1, "info"),
         inv(2, "cas", value=["a", "b"]), done(2, "info"),
         inv(3, "get"), done(3, value="b")]
    assert check(h)["linearizable"] is True


def test_info_get_is_dropped_and_keys_are_independent():
    h = [inv(1, "get", key="y"), done(1, "info"),
         inv(2, "put", key="y", value="1"), done(2),
         inv(3, "get", key="z"), done(3, value=None)]
    r = check(h)
    assert r["linearizable"] is True and r["keys"] == 2 and r["ops"] == 3


def test_failing_key_is_named():
    h = seq(("put", "1"))
    h += [inv(7, "put", key="k2", value="a"), done(7), inv(7, "get", key="k2"), done(7, value="b")]
    r = check(h)
    assert r["linearizable"] is False and r["key"] == "k2" and r["failed_keys"] == ["k2"]
    d = r["ops_unorderable"][-1]
    assert d == {"process": 7, "f": "get", "key": "k2", "value": "b", "type": "ok",
                 "invoke": 5, "complete": 6}


# --- differential test against brute force ------------------------------

def _brute(events):
    """Linearizable per key by trying every order of every subset of info ops."""
    ops = []
    openp = {}
    for line, ev in enumerate(events, 1):
        if ev["type"] == "invoke":
            openp[ev["process"]] = [ev, line]
            continue
        iv, l0 = openp.pop(ev["process"])
        if ev["type"] == "fail" or (ev["type"] == "info" and iv["f"] == "get"):
            continue
        ops.append((iv, l0, line if ev["type"] == "ok" else None, ev.get("value")))
    for iv, l0 in openp.values():
        if iv["f"] != "get":
            ops.append((iv, l0, None, None))
    for key in set(o[0]["key"] for o in ops):
        mine = [o for o in ops if o[0]["key"] == key]
        sure = [o for o in mine if o[2] is not None]
        maybe = [o for o in mine if o[2] is None]
        found = False
        for n in range(len(maybe) + 1):
            for extra in itertools.combinations(maybe, n):
                for order in itertools.permutations(sure + list(extra)):
                    if _legal(order):
                        found = True
                        break
                if found:
                    break
            if found:
                break
        if not found:
            return False
    return True


def _legal(order):
    for a in range(len(order)):
        for b in range(a + 1, len(order)):
            if order[b][2] is not None and order[b][2] < order[a][1]:
                return False  # b returned before a was invoked
    state = None
    for iv, _l0, _l1, read in order:
        f = iv["f"]
        if f == "get":
            if state != read:
                return False
        elif f == "put":
            state = iv["value"]
        elif f == "delete":
            state = None
        else:
            if state != iv["value"][0]:
                return False
            state = iv["value"][1]
    return True


def _random_history(rng, nops):
    events = []
    busy = {}
    started = 0
    vals = ["a", "b", None]
    for _ in range(nops * 4):
        p = rng.randrange(4)
        if p not in busy:
            if started >= nops:
                continue
            started += 1
            f = rng.choice(["get", "put", "put", "delete", "cas", "cas"])
            key = rng.choice(["x", "x", "y"])
            ev = inv(p, f, key=key)
            if f == "put":
                ev["value"] = rng.choice(vals[:2])
            elif f == "cas":
                ev["value"] = [rng.choice(vals), rng.choice(vals[:2])]
            events.append(ev)
            busy[p] = f
        else:
            f = busy.pop(p)
            t = rng.choice(["ok", "ok", "ok", "fail", "info"])
            if t == "info":
                events.append(done(p, "info"))
            elif f == "get" and t == "ok":
                events.append(done(p, value=rng.choice(vals)))
            else:
                events.append(done(p, t))
    return events


def _replay(ops, relax=None):
    """Events of reported op dicts, each on its own process; `relax` becomes
    info (a get is left out)."""
    timed = []
    for n, d in enumerate(ops):
        if d is relax and d["f"] == "get":
            continue
        ev = inv(n, d["f"], key=d["key"], value=d["value"] if d["f"] in ("put", "cas") else None)
        timed.append((d["invoke"], ev))
        if d["complete"] is not None and d is not relax:
            timed.append((d["complete"], done(n, value=d["value"]) if d["f"] == "get" else done(n)))
    timed.sort(key=lambda t: t[0])
    return [ev for _, ev in timed]


def test_matches_brute_force_on_random_small_histories():
    rng = random.Random(20261123)
    counts = {True: 0, False: 0}
    for _ in range(3000):
        h = _random_history(rng, rng.randrange(1, 8))
        want = _brute(h)
        got = lincheck.check_events(h)
        assert got["linearizable"] is want, json.dumps(h)
        counts[want] += 1
        if not want:
            bad = got["ops_unorderable"]
            assert bad and all(d["key"] == got["key"] for d in bad)
            # the reported set fails on its own, and dropping any read but
            # the last makes it linearizable (writers of what a read saw are
            # kept on purpose, even when the read would fail without them)
            assert lincheck.check_events(_replay(bad))["linearizable"] is False, json.dumps(h)
            last = max(d["complete"] or 0 for d in bad)
            for d in bad:
                if d["complete"] != last and d["f"] == "get":
                    r = lincheck.check_events(_replay(bad, relax=d))
                    assert r["linearizable"] is True, (json.dumps(h), d)
    assert counts[True] > 300 and counts[False] > 300, counts


def _without_failed(h):
    drop = set()
    openp = {}
    for i, e in enumerate(h):
        if e["type"] == "invoke":
            openp[e["process"]] = i
        else:
            j = openp.pop(e["process"])
            if e["type"] == "fail":
                drop.update((i, j))
    return [e for i, e in enumerate(h) if i not in drop]


def test_minimal_prefix_is_minimal():
    rng = random.Random(7)
    for _ in range(300):
        h = _without_failed(_random_history(rng, 7))
        r = lincheck.check_events(h)
        if r["linearizable"]:
            continue
        end = r["prefix_end_line"]
        # cut just before the end: later completions become info (an op
        # known to fail would become info too, hence _without_failed)
        cut = h[:end - 1]
        assert lincheck.check_events(cut)["linearizable"] is True
        assert lincheck.check_events(h[:end])["linearizable"] is False


# --- CLI ------------------------------------------------------------------

def _write(tmp_path, events, name="h.jsonl"):
    p = tmp_path / name
    p.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(p)


def test_cli_linearizable_exit_0_last_line_json(tmp_path):
    r = run_cli([_write(tmp_path, seq(("put", "1"), ("get", "1")))])
    assert r.returncode == 0, r.stdout + r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["linearizable"] is True and last["ops"] == 2


def test_cli_not_linearizable_exit_1(tmp_path):
    r = run_cli([_write(tmp_path, seq(("put", "1"), ("put", "2"), ("get", "1")))])
    assert r.returncode == 1
    lines = r.stdout.strip().splitlines()
    assert len(lines) > 1 and "NOT linearizable" in r.stdout
    last = json.loads(lines[-1])
    assert last["linearizable"] is False and last["key"] == "x" and last["ops"] == 3
    assert [d["invoke"] for d in last["ops_unorderable"]] == [1, 3, 5]
    assert [d["complete"] for d in last["ops_unorderable"]] == [2, 4, 6]


def test_cli_stdin_and_empty(tmp_path):
    r = run_cli(["-"], stdin="")
    assert r.returncode == 0
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["linearizable"] is True and last["ops"] == 0
    text = "".join(json.dumps(e) + "\n" for e in seq(("put", "1"), ("get", "2")))
    assert run_cli(["-"], stdin=text).returncode == 1


def test_cli_malformed_input_exit_2_names_the_line(tmp_path):
    cases = [
        ('{"process": 1, "type": "invoke", "f": "put", "key": "x", "value": "1"}\n'
         '{"process": 1, "type": "ok"}\n'
         '{"process": 1, "type": "invoke", "f": "get", "key": "x"\n', "line 3"),
        ('{"process": 1, "type": "ok", "f": "get", "value": null}\n', "line 1"),
        ('{"process": 1, "type": "invoke", "f": "get", "key": "x"}\n'
         '\n'
         '{"process": 1, "type": "invoke", "f": "get", "key": "x"}\n', "line 3"),
        ('{"process": 1, "type": "invoke", "f": "incr", "key": "x"}\n', "line 1"),
        ('{"process": 1, "type": "invoke", "f": "cas", "key": "x", "value": "a"}\n', "line 1"),
        ('{"process": 1, "type": "invoke", "f": "get", "key": "x"}\n'
         '{"process": 1, "type": "ok", "f": "put", "value": null}\n', "line 2"),
        ('{"process": 1, "type": "invoke", "f": "get", "key": "x"}\n'
         '{"process": 1, "type": "ok"}\n', "line 2"),
        ('[1, 2]\n', "line 1"),
        ('{"process": 1, "type": "done"}\n', "line 1"),
    ]
    for text, where in cases:
        p = tmp_path / "bad.jsonl"
        p.write_text(text)
        r = run_cli([str(p)])
        assert r.returncode == 2, text
        assert where in r.stdout, (text, r.stdout)
        assert "Traceback" not in r.stdout + r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1])["linearizable"] is None


def test_malformed_raises_typed_error():
    try:
        lincheck.check_events([inv(1, "get"), done(2)])
    except lincheck.HistoryError as e:
        assert "line 2" in e.args[0]
    else:
        raise AssertionError("no HistoryError")


def test_cli_bad_usage_exit_2(tmp_path):
    assert run_cli([]).returncode == 2
    assert run_cli(["--bogus", "x"]).returncode == 2
    assert run_cli([str(tmp_path / "missing.jsonl")]).returncode == 2


def test_cli_gives_up_with_exit_3(tmp_path):
    h = gen_history.generate(300, 1, 8, 5)
    r = run_cli(["--max-configs", "10", _write(tmp_path, h)])
    assert r.returncode == 3
    assert json.loads(r.stdout.strip().splitlines()[-1])["linearizable"] is None


# --- generated histories ----------------------------------------------------

def test_generator_is_deterministic():
    assert gen_history.generate(500, 10, 5, 9) == gen_history.generate(500, 10, 5, 9)
    assert gen_history.generate(500, 10, 5, 9) != gen_history.generate(500, 10, 5, 10)


def test_generated_10k_history_is_linearizable_within_a_bounded_search():
    # Effort, not wall time (no timed unit tests): every key's search must
    # finish within 20,000 memoized configurations (it needs under 1,000);
    # a search that went exponential gives up and returns None.
    h = gen_history.generate(10000, 100, 8, 1)
    r = lincheck.check_events(h, max_configs=20000)
    assert r["linearizable"] is True and r["ops"] == 10000


def _gets(h):
    return [i for i, e in enumerate(h) if e["type"] == "ok" and "value" in e and e["value"] is not None]


def test_mutated_read_of_never_written_value_is_caught():
    h = gen_history.generate(10000, 100, 8, 1)
    i = _gets(h)[1500]
    h[i] = dict(h[i], value="never-written")
    r = lincheck.check_events(h)
    assert r["linearizable"] is False
    assert r["prefix_end_line"] == i + 1
    assert [d["complete"] for d in r["ops_unorderable"]] == [i + 1]


def test_mutated_stale_read_is_caught_with_its_writers():
    h = gen_history.generate(10000, 10, 8, 2)
    i = _gets(h)[2000]
    key = None
    for j in range(i, -1, -1):  # the invoke of this get names its key
        if h[j]["process"] == h[i]["process"] and h[j]["type"] == "invoke":
            key = h[j]["key"]
            break
    first = [e["value"] for e in h if e["type"] == "invoke" and e["f"] == "put" and e["key"] == key][0]
    assert first != h[i]["value"]
    h[i] = dict(h[i], value=first)
    r = lincheck.check_events(h)
    assert r["linearizable"] is False and r["key"] == key
    bad = r["ops_unorderable"]
    assert bad[-1]["complete"] == i + 1
    assert any(d["f"] == "put" and d["value"] == first for d in bad)
    assert 2 <= len(bad) <= 6, bad
