"""The memory model of lib/raftkv/limits.py bounds what a full store takes.

A KVStateMachine filled to its limits (every key and value at full size,
every session holding a full-size cached result, as a failed CAS leaves
it) is weighed with gc.mem_alloc on the unix port (64-bit words): the
model's state term at 8-byte words must cover it, and not by more than
2.5 times (a model that large would refuse boards for nothing).
MicroPython only: micropython tools/mptest.py host_tests/mp_only
"""
import gc

try:
    gc.mem_alloc
except AttributeError:
    import pytest
    pytest.skip("MicroPython only: micropython tools/mptest.py host_tests/mp_only",
                allow_module_level=True)

from raftkv import codec
from raftkv import limits
from raftkv.kv import KVStateMachine


def _weigh(lim):
    gc.collect()
    before = gc.mem_alloc()
    sm = KVStateMachine(lim["max_key"], lim["max_value"], lim["max_keys"], lim["max_sessions"])
    i = 1
    cids = []
    for _ in range(lim["max_sessions"]):
        cids.append(codec.decode_client_id(sm.apply(i, codec.encode_register())))
        i += 1
    c = cids[0]
    seq = 1
    for k in range(lim["max_keys"]):
        key = b"%0*d" % (lim["max_key"], k)
        sm.apply(i, codec.encode_put(c, seq, key, bytes([k & 0xFF]) * lim["max_value"]))
        i += 1
        seq += 1
    assert len(sm) == lim["max_keys"]
    # Each session caches a full value: a CAS that fails returns the current one.
    key0 = b"%0*d" % (lim["max_key"], 0)
    for c in cids:
        sm.apply(i, codec.encode_cas(c, 1 if c != cids[0] else seq, key0, b"x", b"y"))
        i += 1
    gc.collect()
    return gc.mem_alloc() - before, sm


def test_the_model_bounds_a_full_store():
    for lim in ({"max_key": 16, "max_value": 64, "max_keys": 300, "max_sessions": 20},
                {"max_key": 64, "max_value": 256, "max_keys": 100, "max_sessions": 32},
                {"max_key": 128, "max_value": 512, "max_keys": 40, "max_sessions": 8}):
        used, sm = _weigh(lim)
        model = limits.state_bytes(lim, 8)
        assert used <= model, (lim, used, model)
        assert model <= 2.5 * used, (lim, used, model)
        # The snapshot image the model adds beside the state is its size.
        img = limits.need_bytes(lim, 8) - model
        assert sm.snapshot_size() <= img, (sm.snapshot_size(), img)
