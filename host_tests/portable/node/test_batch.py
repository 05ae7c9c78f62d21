"""Client batches (raftio/batch.py): strict format, exactly-once per session, bounded replies.

Runs under pytest and MicroPython.
"""
from raft.errors import DecodeError
from raftio import batch
from raftio.batch import REFUSED, UNSENT, BatchMachine
from raftkv import codec
from raftkv.kv import KVStateMachine


def _machine(max_value=64):
    kv = KVStateMachine(max_key=16, max_value=max_value, max_keys=64, max_sessions=8)
    return kv, BatchMachine(kv)


def _register(bm, n):
    """n sessions at indexes 1..n; returns their ids."""
    cids = []
    for i in range(1, n + 1):
        cids.append(codec.decode_client_id(bm.apply(i, codec.encode_register())))
    return cids


def _batch(cmds):
    buf = bytearray(4 + sum(2 + len(c) for c in cmds))
    n = batch.encode_into(buf, cmds)
    assert n == len(buf)
    return bytes(buf)


def _status(r):
    return codec.decode_result(r)[0]


def test_a_batch_applies_each_command_on_its_own_session():
    kv, bm = _machine()
    a, b, c = _register(bm, 3)
    data = _batch([codec.encode_put(a, 1, b"x", b"1"), codec.encode_put(b, 1, b"y", b"2"),
                   codec.encode_delete(c, 1, b"z")])
    assert bm.is_read(data) is False
    res = batch.decode_result(bm.apply(4, data))
    assert [_status(r) for r in res] == [codec.OK, codec.OK, codec.NOT_FOUND]
    assert kv.get_local(b"x") == b"1" and kv.get_local(b"y") == b"2"
    assert bm.applied_index == 4 and kv.applied_index == 4
    assert bm.batches == 1


def test_a_resent_batch_is_answered_from_the_session_caches():
    kv, bm = _machine()
    a, b = _register(bm, 2)
    first = _batch([codec.encode_put(a, 1, b"x", b"1"), codec.encode_put(b, 1, b"y", b"2")])
    r1 = bm.apply(3, first)
    bm.apply(4, codec.encode_put(a, 2, b"x", b"later"))
    # The same batch again (a client that never saw the reply): not applied
    # again, so the later put of session a stays.
    assert bm.apply(5, first) is not None
    assert kv.get_local(b"x") == b"later"
    assert kv.duplicates == 1  # b's put answered from its cache
    assert batch.decode_result(r1)[1] == codec.encode_result(codec.OK)


def test_a_replayed_index_is_not_applied():
    kv, bm = _machine()
    a, = _register(bm, 1)
    data = _batch([codec.encode_put(a, 1, b"x", b"1")])
    bm.apply(2, data)
    assert bm.apply(2, data) is None
    assert bm.apply(1, data) is None


def test_register_cannot_be_batched():
    kv, bm = _machine()
    a, = _register(bm, 1)
    data = _batch([codec.encode_put(a, 1, b"x", b"1"), codec.encode_register()])
    try:
        bm.is_read(data)
        assert False, "accepted"
    except DecodeError:
        pass
    # Proposed anyway (the in-process API skips is_read): a REGISTER inside is
    # refused, not given the entry's index as a second session id.
    data = _batch([codec.encode_register(), codec.encode_put(a, 1, b"x", b"1")])
    res = batch.decode_result(bm.apply(2, data))
    assert res[0] == REFUSED and _status(res[1]) == codec.OK
    assert kv.session_count() == 1


def test_commands_inside_are_the_machines_to_judge():
    kv, bm = _machine()
    a, b = _register(bm, 2)
    bm.apply(3, codec.encode_put(a, 1, b"x", b"1"))
    # A read goes through the log like a write; bytes that are no command
    # get the machine's MALFORMED; neither stops the rest of the batch.
    data = _batch([codec.encode_get(a, 2, b"x"), b"\x09junk", codec.encode_put(b, 1, b"y", b"2")])
    assert bm.is_read(data) is False
    res = batch.decode_result(bm.apply(4, data))
    assert codec.decode_result(res[0]) == (codec.OK, b"1")
    assert _status(res[1]) == codec.MALFORMED
    assert _status(res[2]) == codec.OK and kv.get_local(b"y") == b"2"


def test_results_that_do_not_fit_a_reply_are_fetched_alone():
    kv, bm = _machine(max_value=600)
    cids = _register(bm, 3)
    big = b"v" * 600
    bm.apply(4, codec.encode_put(cids[0], 1, b"k", big))
    # Three failing CAS answer with the 600-byte value each: 1,809 bytes.
    cas = [codec.encode_cas(c, 1 + (c == cids[0]), b"k", b"other", b"new") for c in cids]
    res = batch.decode_result(bm.apply(5, _batch(cas)))
    assert res[2] == UNSENT and isinstance(res[0], bytes) and isinstance(res[1], bytes)
    assert codec.decode_result(res[0]) == (codec.CAS_FAILED, big)
    # The client sends that command alone: its session's cached result.
    assert codec.decode_result(bm.apply(6, cas[2])) == (codec.CAS_FAILED, big)
    assert kv.duplicates == 1


def test_malformed_batches_raise_decode_error_only():
    kv, bm = _machine()
    a, = _register(bm, 1)
    good = _batch([codec.encode_put(a, 1, b"x", b"1")])
    bad = [good[:3], b"\x00B\x02" + good[3:], good[:3] + b"\x00" + good[4:],
           good + b"\x00", good[:-1], b"\x00B\x01\x01\x00\x00",
           b"\x00B\x01\x02" + good[4:]]
    for data in bad:
        try:
            bm.is_read(data)
            assert False, "accepted %r" % (data,)
        except DecodeError:
            pass
        try:
            batch.check(data)
            assert False
        except DecodeError:
            pass
    # Logged anyway: every node skips it alike, the index counts as applied.
    assert bm.apply(2, bad[-1]) == b"\x00"
    assert kv.applied_index == 2 and kv.get_local(b"x") is None


def test_not_a_batch_goes_to_the_machine_unchanged():
    kv, bm = _machine()
    a, = _register(bm, 1)
    assert not batch.is_batch(codec.encode_put(a, 1, b"x", b"1"))
    assert _status(bm.apply(2, codec.encode_put(a, 1, b"x", b"1"))) == codec.OK
    assert bm.is_read(codec.encode_get(a, 0, b"x")) is True
    assert len(bm) == 1


def test_decode_result_is_strict():
    for res in (b"", b"\x01", b"\x01\x05\x00ab", b"\x01\x01\x00\x00\x00"):
        try:
            batch.decode_result(res)
            assert False, "accepted %r" % (res,)
        except DecodeError:
            pass
    assert batch.decode_result(b"\x02\x00\x00\xff\xff") == [REFUSED, UNSENT]
