"""The Raft message codec allocates nothing on MicroPython (issue 6, item 7b).

Encoding an append and a heartbeat into a preallocated buffer, and decoding
both into a reused Message, run between micropython.heap_lock() and
heap_unlock(): any allocation raises MemoryError. Fields are checked after
unlocking (building an assertion message could allocate). MicroPython only:

    micropython tools/mptest.py host_tests/mp_only
"""
try:
    import micropython
except ImportError:
    # CPython has no heap lock to test. `make test` runs this folder only
    # under micropython (pytest is told to ignore it); a stray pytest run
    # says so instead of passing vacuously.
    import pytest
    pytest.skip("MicroPython only: micropython tools/mptest.py host_tests/mp_only",
                allow_module_level=True)

from raft import msg as M


def _locked(fn, a=None, b=None, c=None):
    """fn(a, b, c) with the heap locked; returns (result, exception or None).

    Fixed arguments, not *args: a star call allocates its argument array.
    """
    res = None
    err = None
    micropython.heap_lock()
    try:
        try:
            res = fn(a, b, c)
        except MemoryError as e:
            # The emergency exception buffer holds it: raising allocates nothing.
            err = e
    finally:
        micropython.heap_unlock()
    try:
        assert not micropython.heap_locked()
    except AttributeError:
        pass  # heap_locked() exists only in builds with MICROPY_PY_MICROPYTHON_HEAP_LOCKED
    return res, err


def _app():
    ents = [(101, 7, 0, b"put k1 v1"), (102, 7, 1, b""), (103, 7, 0, b"x" * 200)]
    return M.Message(M.APP, 2, 1, 7, log_term=6, index=100, commit=99, entries=ents)


def _heartbeat():
    return M.Message(M.HEARTBEAT, 3, 1, 7, commit=99, ctx=12345, hint=0x3FFFFFFF)


def _round_trip(m, buf, rec):
    n = M.encode_into(m, buf, 5)
    M.decode_into(rec, buf, n, 5)
    return n


def test_lock_is_effective():
    # Negative control: the same helper does see an allocation.
    _, err = _locked(lambda a, b, c: [a, b, c], 1, 2, 3)
    assert isinstance(err, MemoryError)


def test_heartbeat_round_trip_allocates_nothing():
    m = _heartbeat()
    buf = bytearray(1400)
    rec = M.Message()
    n, err = _locked(_round_trip, m, buf, rec)
    assert err is None, err
    assert n == M.HEADER_SIZE
    assert (rec.type, rec.to, rec.frm, rec.term) == (M.HEARTBEAT, 3, 1, 7)
    assert (rec.commit, rec.ctx, rec.hint, rec.flags) == (99, 12345, 0x3FFFFFFF, 0)
    assert rec.entries == [] and rec.data == b""


def test_append_round_trip_allocates_nothing():
    m = _app()
    buf = bytearray(1400)
    rec = M.Message()
    n, err = _locked(_round_trip, m, buf, rec)
    assert err is None, err
    assert n == M.encoded_size(m)
    assert (rec.type, rec.to, rec.frm, rec.term) == (M.APP, 2, 1, 7)
    assert (rec.log_term, rec.index, rec.commit) == (6, 100, 99)
    # Materialized after unlocking: the same entries the leader sent.
    assert rec.entries == m.entries
    assert M.encode(rec) == bytes(buf[5:5 + n])


def test_reused_record_allocates_nothing_and_forgets_old_entries():
    app = _app()
    hb = _heartbeat()
    buf = bytearray(1400)
    rec = M.Message()
    _locked(_round_trip, app, buf, rec)
    assert len(rec.entries) == 3  # materialized and cached on rec
    # Decoding again into the same record, with entries cached, still allocates nothing...
    n, err = _locked(_round_trip, hb, buf, rec)
    assert err is None, err
    # ...and the cached entries of the append are gone.
    assert rec.type == M.HEARTBEAT and rec.entries == []
    _, err = _locked(_round_trip, app, buf, rec)
    assert err is None, err
    assert rec.entries == app.entries


def test_bad_bytes_raise_decode_error_after_unlock():
    # Under the lock a DecodeError (its message is built by %) may itself
    # allocate; what matters is that bad bytes never corrupt the record.
    from raft.errors import DecodeError
    buf = bytearray(M.encode(_app()))
    rec = M.decode(M.encode(_heartbeat()))
    buf[M.HEADER_SIZE + 7 + 9 + 4] = 2  # second entry: bad kind
    try:
        M.decode_into(rec, buf, len(buf))
        assert False, "bad entry kind decoded"
    except DecodeError:
        pass
    assert rec.type == M.HEARTBEAT and rec.entries == []
