"""lincheck on small histories; runs under pytest and MicroPython (mptest)."""
import lincheck
import gen_history


def _inv(p, f, value=None, key="x"):
    ev = {"process": p, "type": "invoke", "f": f, "key": key}
    if value is not None:
        ev["value"] = value
    return ev


def _ok(p, value="-"):
    if value == "-":
        return {"process": p, "type": "ok"}
    return {"process": p, "type": "ok", "value": value}


def test_empty():
    r = lincheck.check_events([])
    assert r["linearizable"] is True
    assert r["ops"] == 0


def test_stale_read_is_caught():
    h = [_inv(1, "put", "1"), _ok(1), _inv(1, "put", "2"), _ok(1), _inv(2, "get"), _ok(2, "1")]
    r = lincheck.check_events(h)
    assert r["linearizable"] is False
    assert r["key"] == "x"
    assert r["prefix_end_line"] == 6
    assert [d["invoke"] for d in r["ops_unorderable"]] == [1, 3, 5]


def test_overlapping_read_may_see_either():
    for seen in ("1", None):
        h = [_inv(1, "put", "1"), _inv(2, "get"), _ok(2, seen), _ok(1)]
        assert lincheck.check_events(h)["linearizable"] is True


def test_info_both_ways():
    for seen in ("1", None):
        h = [_inv(1, "put", "1"), {"process": 1, "type": "info"}, _inv(2, "get"), _ok(2, seen)]
        assert lincheck.check_events(h)["linearizable"] is True


def test_cas():
    h = [_inv(1, "put", "a"), _ok(1), _inv(1, "cas", ["a", "b"]), _ok(1), _inv(1, "get"), _ok(1, "b")]
    assert lincheck.check_events(h)["linearizable"] is True
    h[3] = {"process": 1, "type": "fail"}
    assert lincheck.check_events(h)["linearizable"] is False


def test_malformed_names_line():
    try:
        lincheck.check_events([_inv(1, "get"), _inv(1, "get")])
    except lincheck.HistoryError as e:
        assert "line 2" in e.args[0]
    else:
        assert False, "no HistoryError"


def test_generated_history():
    h = gen_history.generate(600, 6, 6, 4)
    r = lincheck.check_events(h)
    assert r["linearizable"] is True
    assert r["ops"] == 600
    for i in range(len(h)):
        if h[i]["type"] == "ok" and h[i].get("value") is not None:
            h[i] = {"process": h[i]["process"], "type": "ok", "value": "never"}
            break
    assert lincheck.check_events(h)["linearizable"] is False
