"""Simulated KV clients on a short run; pytest and MicroPython (mptest).
The digest and the client figures must not depend on the interpreter."""
import gc

import sim
import simkv


def _run(seed, steps, reads, faults):
    gc.collect()  # the previous run's heap, before the checker preallocates
    opts = sim.parse_args([])
    opts.update({"seed": seed, "steps": steps, "nodes": 5, "faults": faults,
                 "clients": 5, "check_linear": True, "reads": reads})
    s = sim.Sim(opts)
    res = s.run()
    return None, res


def test_short_run_linearizable_and_exactly_once():
    res = _run(11, 1200, "index", list(sim.FAULTS))[1]
    assert res["violations"] == []
    assert res["linearizable"] is True
    assert res["exactly_once"] is True
    assert res["get_ok"] > 20 and res["put_ok"] > 20 and res["cas_ok"] > 5


def test_local_reads_stale_under_partitions():
    # Some seed among a few must show a stale read (each fails in practice).
    found = False
    for seed in range(1, 6):
        res = _run(seed, 1500, "local", ["partition", "leader"])[1]
        if res["linearizable"] is False:
            found = True
            break
    assert found


def test_value_codes_round_trip():
    v = 3 << 20 | 17
    assert simkv.vstr(v) == "c3-17"
    assert simkv._vcode(b"c3-17") == v
    assert simkv._vcode(None) == simkv._NONE and simkv.vstr(-1) is None
