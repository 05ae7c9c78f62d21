"""lib/raftkv/limits.py: the cluster limits record, the refusal and fit()."""
import json
import os

import pytest

from paths import ROOT
from raft.errors import ConfigError
from raftkv import limits


def _board(name):
    with open(os.path.join(ROOT, "boards", name, "board.json")) as f:
        return json.load(f)


def test_validate_names_the_field():
    lim = limits.of_board(_board("unix"))
    assert limits.validate(dict(lim)) == lim == {"max_key": 128, "max_value": 512,
                                                 "max_keys": 8192, "max_sessions": 256}
    for bad, field in ((dict(lim, max_key=0), "max_key"), (dict(lim, max_keys="9"), "max_keys"),
                       (dict(lim, colour=1), "colour"), ({}, "max_key")):
        with pytest.raises(ConfigError) as e:
            limits.validate(bad, "cluster: limits")
        assert str(e.value).startswith("cluster: limits: ") and field in str(e.value)


def test_a_board_holds_its_fitted_limits_and_is_refused_past_them():
    for name in ("esp32", "esp32s3", "rp2_pico_w", "stm32", "unix"):
        b = _board(name)
        fit = limits.fit(b)
        assert limits.refusal(fit, b) is None, (name, fit)
        assert limits.need_bytes(fit, limits.word(b)) <= limits.budget_bytes(b)
        more = dict(fit, max_keys=fit["max_keys"] + 1)
        why = limits.refusal(more, b)
        assert why.startswith("refused: cluster limits need ~") and name in why, why


def test_a_laptop_cluster_is_refused_on_an_esp32s3_in_one_line_with_the_numbers():
    lim = limits.of_board(_board("unix"))
    why = limits.refusal(lim, _board("esp32s3"))
    assert why == ("refused: cluster limits need entries of 1167 B (a CAS of a 128 B key and"
                   " two 512 B values), board esp32s3 takes 768 B (max_entry_bytes)")
    small = dict(lim, max_key=64, max_value=256)
    need = limits.need_bytes(small, 4)
    assert limits.refusal(small, _board("esp32s3")) == (
        "refused: cluster limits need ~%d KB for 8192 keys x 320 B and 256 sessions, board"
        " esp32s3 budget is 37 KB (a quarter of its 150 KB heap)" % ((need + 1023) // 1024))


def test_words_and_the_model_grow_with_every_limit():
    assert limits.word(_board("unix")) == 8 and limits.word(_board("esp32")) == 4
    base = {"max_key": 16, "max_value": 64, "max_keys": 10, "max_sessions": 4}
    n = limits.need_bytes(base)
    for k in limits.FIELDS:
        assert limits.need_bytes(dict(base, **{k: base[k] + 1})) > n, k
    assert limits.need_bytes(base, 8) > n
