"""Decoded append entries (raft/msg.py): validated at decode, built on first read.

decode_into records where a received APP's entries are instead of building
them (so it allocates nothing); reading m.entries builds them. These tests
pin down what that must never change: the entries a reader sees are exactly
the ones of the last successful decode, a failed decode leaves the record
as it was, and built entries do not depend on the buffer afterwards.
"""
from raft import msg as M
from raft.errors import DecodeError

_FIELDS = ("type", "flags", "to", "frm", "term", "log_term", "index", "commit", "hint",
           "hint_term", "ctx")


def _app(index, term, datas):
    ents = []
    for k, d in enumerate(datas):
        ents.append((index + 1 + k, term, k & 1, d))
    return M.Message(M.APP, 2, 1, term, log_term=term, index=index, commit=index,
                     entries=ents)


def _snapshot(m):
    return tuple(getattr(m, f) for f in _FIELDS) + (tuple(m.entries), bytes(m.data))


def test_entries_read_twice_are_the_same_list():
    b = M.encode(_app(10, 3, [b"a", b"bc"]))
    m = M.decode(b)
    first = m.entries
    assert first == [(11, 3, 0, b"a"), (12, 3, 1, b"bc")]
    assert m.entries is first


def test_reused_record_never_mixes_entries():
    buf = bytearray(300)
    rec = M.Message()
    cases = (_app(10, 3, [b"a", b"b", b"c"]), M.Message(M.HEARTBEAT, 2, 1, 3, commit=9),
             _app(20, 4, [b"z"]), _app(20, 4, []), M.Message(M.VOTE, 2, 1, 5, 4, 30),
             _app(7, 2, [b"q" * 50, b""]))
    for read_first in (True, False):
        for m in cases:
            n = M.encode_into(m, buf, 3)
            M.decode_into(rec, buf, n, 3)
            if read_first:
                assert rec.entries == m.entries, (m, rec)
        # Read only after the last decode: the last message's entries.
        assert rec.entries == cases[-1].entries


def test_failed_decode_leaves_record_unchanged():
    good = M.encode(_app(10, 3, [b"a", b"bc"]))
    bads = []
    b = bytearray(good)
    b[M.HEADER_SIZE + 4] = 5  # first entry: bad kind
    bads.append(b)
    bads.append(good[:-1])  # truncated data
    bads.append(good + b"\x00")  # trailing byte
    b = bytearray(good)
    b[M.HEADER_SIZE + 5] = 200  # first entry's length runs past the end
    bads.append(b)
    b = bytearray(good)
    b[0] = 99  # type
    bads.append(b)
    for read_first in (True, False):
        rec = M.decode(M.encode(_app(40, 6, [b"keep"])))
        before = _snapshot(rec) if read_first else None
        for bad in bads:
            try:
                M.decode_into(rec, bad, len(bad))
                assert False, bytes(bad)
            except DecodeError:
                pass
            if read_first:
                assert _snapshot(rec) == before
        assert rec.entries == [(41, 6, 0, b"keep")]


def test_built_entries_outlive_the_buffer():
    buf = bytearray(M.encode(_app(10, 3, [b"abc", b"de"])))
    m = M.decode_into(M.Message(), buf, len(buf))
    ents = m.entries
    for i in range(len(buf)):
        buf[i] = 0
    assert ents == [(11, 3, 0, b"abc"), (12, 3, 1, b"de")]
    assert isinstance(ents[0][3], bytes)


def test_setting_entries_replaces_decoded_ones():
    m = M.decode(M.encode(_app(10, 3, [b"a"])))
    m.entries = [(11, 3, 0, b"other")]
    assert m.entries == [(11, 3, 0, b"other")]
    assert M.decode(M.encode(m)).entries == [(11, 3, 0, b"other")]


def test_non_append_decodes_with_no_entries():
    for t in range(2, 14):
        m = M.Message(t, 2, 1, 3)
        if t == M.SNAP:
            m.data = b"chunk"
        rec = M.decode(M.encode(_app(1, 1, [b"x"])))
        rec.entries
        M.decode_into(rec, M.encode(m), M.encoded_size(m))
        assert rec.type == t and rec.entries == [], t
