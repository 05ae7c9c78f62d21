"""Hypothesis: random storage workloads with a power cut at a random byte.

Each example draws a workload (hard-state writes, appends of up to 12
entries, flushed once per batch, that sometimes truncate a conflicting tail,
snapshot + compact, snapshot installs, clean reboots), a cut point anywhere in the bytes it sends to flash, clean or torn,
and POSIX or FAT rename. After the cut the recovered storage must be a state
the operation in flight may leave (test_storage_cuts.allowed):
- every hard state and entry whose write returned before the cut is there;
- nothing that was never written appears;
- entries truncated away (or dropped by a snapshot install) never come back;
and it must accept new writes and survive one more reboot.
"""
from hypothesis import given, settings, strategies as st, HealthCheck

import test_storage_cuts as T


class DrawRng(T.Rng):
    def __init__(self, data):
        self._data = data

    def below(self, n):
        return self._data.draw(st.integers(0, n - 1)) if n > 1 else 0

    def data(self, n):
        return self._data.draw(st.binary(min_size=n, max_size=n))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_cut_anywhere_keeps_acknowledged_state(data):
    slots = data.draw(st.integers(3, 10), label="slots")
    max_data = data.draw(st.integers(0, 20), label="max_data")
    cfg = (slots, 20 + max_data + data.draw(st.integers(1, 8)))
    a = data.draw(st.integers(0, 40))
    b = data.draw(st.integers(a, 100))
    c = data.draw(st.integers(b, 100))
    d = data.draw(st.integers(c, 100))
    n = data.draw(st.integers(1, 30), label="ops")
    batch = data.draw(st.integers(1, 12), label="batch")
    ops = T.gen_workload(DrawRng(data), n, (a, b, c, d), slots, max_data, batch)
    replaces = data.draw(st.booleans(), label="rename_replaces")
    exps = T.expectations(ops)
    marks = []
    _, stor, i, total = T.run(ops, cfg, None, replaces, marks=marks)
    assert i is None and T.view(stor) == exps[-1][2]
    marks.append(total)
    # Cut inside a chosen op, at an offset hypothesis can push to boundaries.
    j = data.draw(st.integers(0, len(ops) - 1), label="op in flight")
    cut = marks[j] + data.draw(st.integers(0, marks[j + 1] - marks[j]), label="offset")
    torn = data.draw(st.booleans(), label="torn")
    T.check_cut(ops, exps, cfg, cut, replaces, torn)
