"""FlashStorage answers exactly like MemoryStorage, and refuses bad input by type.

The same seeded workloads run against MemoryStorage and FlashStorage (on the
fake flash and on real files) in lockstep; after every operation every read
method is asked the same questions and must give the same answer, including
which exception it raises. A reboot is modelled on the MemoryStorage side as
compaction up to the snapshot (FlashStorage's documented boot behaviour).
"""
import os

from raft.errors import Compacted, Unavailable, EntryTooLarge, RaftError
from raft.memstorage import MemoryStorage
from raft.storage import Snapshot
from raftio.fs import RealFS, CorruptStorage, StorageFull, StorageError
from raftio.storage import FlashStorage
from raftio.fakeflash import FakeFlash
from test_storage_cuts import VOTERS, gen_workload, apply_op, model_reboot

_CFG = (8, 40)


def _ask(fn, *args):
    try:
        return ("ok", fn(*args))
    except (Compacted, Unavailable) as e:
        return (type(e).__name__, e.args)


def answers(st):
    out = [st.initial_state(), st.first_index(), st.last_index()]
    s = st.snapshot()
    out.append((s.index, s.term, tuple(s.voters), tuple(s.learners), bytes(s.data)))
    lo = st.first_index()
    hi = st.last_index()
    for i in range(lo - 2, hi + 3):
        out.append(_ask(st.term, i))
    for a in range(lo - 1, hi + 2):
        for b in (a, a + 1, a + 3, hi + 1, hi + 2):
            for mb in (0, 1, 30):
                r = _ask(st.entries, a, b, mb)
                if r[0] == "ok":
                    r = ("ok", [(e[0], e[1], e[2], bytes(e[3])) for e in r[1]])
                out.append(r)
    return out


def _lockstep(ops, make):
    m = MemoryStorage(VOTERS)
    f, st = make(None)
    assert answers(st) == answers(m)
    for n, op in enumerate(ops):
        if op[0] == "reboot":
            model_reboot(m)
            st.close()
            f, st = make(f)
        else:
            apply_op(m, op)
            apply_op(st, op)
        assert answers(st) == answers(m), "after op %d %r" % (n, op[0])
    return st


def _fake(prev):
    f = FakeFlash() if prev is None else prev.reboot()
    return f, FlashStorage(f, VOTERS, (), _CFG[0], _CFG[1], "n1")


def test_same_answers_as_memory_storage_fake_flash():
    for seed in (1, 2, 3):
        _lockstep(gen_workload(seed, 80, (15, 75, 85, 92), _CFG[0], 12), _fake)


def _rmtree(d):
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        os.remove(d + "/" + n)
    os.rmdir(d)


def test_same_answers_as_memory_storage_real_files():
    d = "/tmp/mpraft_storage_test"
    _rmtree(d)
    try:
        def make(prev):
            fs = RealFS(d)
            return fs, FlashStorage(fs, VOTERS, (), _CFG[0], _CFG[1], "n1")
        st = _lockstep(gen_workload(4, 80, (15, 75, 85, 92), _CFG[0], 12), make)
        st.close()
        assert sorted(os.listdir(d)) == ["n1.hs", "n1.log", "n1.snap"]
    finally:
        _rmtree(d)


def _raises(cls, fn, *args):
    try:
        fn(*args)
    except cls as e:
        return str(e)
    assert False, "expected %s" % cls.__name__


def _fresh(slots=4, size=32):
    f = FakeFlash()
    return f, FlashStorage(f, VOTERS, (), slots, size, "n1")


def test_ring_full_is_refused_until_compacted():
    f, st = _fresh(4, 32)
    st.append([(i, 1, 0, b"x") for i in range(1, 5)])
    msg = _raises(StorageFull, st.append, [(5, 1, 0, b"x")])
    assert "compact" in msg
    assert st.last_index() == 4
    st.set_hard_state((1, 1, 2))
    st.create_snapshot(2, VOTERS, (), b"img")
    _raises(StorageError, st.compact, 3)  # past the snapshot
    st.compact(2)
    st.append([(5, 1, 0, b"y"), (6, 1, 0, b"z")])
    _raises(StorageFull, st.append, [(7, 1, 0, b"x")])
    st2 = FlashStorage(f.reboot(), VOTERS, (), 4, 32, "n1")
    assert st2.first_index() == 3 and st2.last_index() == 6
    assert [e[3] for e in st2.entries(3, 7)] == [b"x", b"x", b"y", b"z"]


def test_bad_entries_are_refused_before_any_write():
    f, st = _fresh(4, 32)
    before = st.bytes_written
    _raises(EntryTooLarge, st.append, [(1, 1, 0, bytes(13))])
    _raises(StorageError, st.append, [(1, 1, 0, b""), (3, 1, 0, b"")])
    _raises(StorageError, st.append, [(1, -1, 0, b"")])
    _raises(Unavailable, st.append, [(2, 1, 0, b"")])
    assert st.bytes_written == before and st.last_index() == 0
    assert issubclass(StorageError, RaftError) and issubclass(CorruptStorage, StorageError)


def _flip(f, name, pos):
    f.files[name][pos] ^= 0x40


def test_corrupt_log_inside_live_range_is_reported():
    f, st = _fresh(8, 32)
    st.append([(i, 1, 0, b"e%d" % i) for i in range(1, 6)])
    # Corrupt entry 3 (slot 3), not the tail: boot must refuse, naming file and slot.
    g = f.reboot()
    _flip(g, "n1.log", 3 * 32 + 21)
    msg = _raises(CorruptStorage, FlashStorage, g, VOTERS, (), 8, 32, "n1")
    assert "n1.log" in msg and "slot 3" in msg, msg
    # The same damage on the last entry reads as a torn tail: dropped.
    g = f.reboot()
    _flip(g, "n1.log", 5 * 32 + 21)
    assert FlashStorage(g, VOTERS, (), 8, 32, "n1").last_index() == 4


def test_corrupt_log_found_at_read_time():
    f, st = _fresh(8, 32)
    st.append([(i, 1, 0, b"abc") for i in range(1, 4)])
    _flip(f, "n1.log", 2 * 32 + 21)
    msg = _raises(CorruptStorage, st.entries, 1, 4)
    assert "slot 2" in msg


def test_commit_past_log_is_reported():
    f, st = _fresh(8, 32)
    st.append([(1, 1, 0, b"")])
    st.set_hard_state((1, 1, 1))
    g = f.reboot()
    g.files["n1.log"][1 * 32] = 0  # entry 1 (acknowledged, committed) vanishes
    msg = _raises(CorruptStorage, FlashStorage, g, VOTERS, (), 8, 32, "n1")
    assert "commit" in msg


def test_corrupt_snapshot_and_hard_state_are_reported():
    f, st = _fresh(8, 32)
    st.append([(1, 1, 0, b"a"), (2, 1, 0, b"b")])
    st.set_hard_state((1, 1, 2))
    st.set_hard_state((2, 1, 2))
    st.create_snapshot(2, VOTERS, (5,), b"image")
    g = f.reboot()
    _flip(g, "n1.snap", 30)
    msg = _raises(CorruptStorage, FlashStorage, g, VOTERS, (), 8, 32, "n1")
    assert "n1.snap" in msg
    g = f.reboot()
    _flip(g, "n1.hs", 10)
    _flip(g, "n1.hs", 24 + 10)
    msg = _raises(CorruptStorage, FlashStorage, g, VOTERS, (), 8, 32, "n1")
    assert "n1.hs" in msg
    # One bad slot: the other holds the previous value.
    g = f.reboot()
    _flip(g, "n1.hs", 10)
    assert FlashStorage(g, VOTERS, (), 8, 32, "n1").initial_state()[0] == (2, 1, 2)
    g = f.reboot()
    _flip(g, "n1.hs", 24 + 10)
    assert FlashStorage(g, VOTERS, (), 8, 32, "n1").initial_state()[0] == (1, 1, 2)
    st2 = FlashStorage(f.reboot(), VOTERS, (), 8, 32, "n1")
    s = st2.snapshot()
    assert (s.index, s.term, s.voters, s.learners, s.data) == (2, 1, VOTERS, (5,), b"image")


def test_missing_hard_state_or_changed_ring_is_reported():
    f, st = _fresh(8, 32)
    st.append([(1, 1, 0, b"a")])
    g = f.reboot()
    del g.files["n1.hs"]
    _raises(CorruptStorage, FlashStorage, g, VOTERS, (), 8, 32, "n1")
    msg = _raises(CorruptStorage, FlashStorage, f.reboot(), VOTERS, (), 16, 32, "n1")
    assert "n1.log" in msg


def test_bytes_written_per_operation():
    f, st = _fresh(256, 512)
    w = st.bytes_written_by_file()
    assert w["log"] == 256 * 512 and w["hardstate"] == 48  # preallocation
    b = st.bytes_written
    st.set_hard_state((1, 1, 0))
    assert st.bytes_written - b == 24
    b = st.bytes_written
    st.append([(1, 1, 0, bytes(100))])
    assert st.bytes_written - b == 120
    b = st.bytes_written
    st.append([(1, 2, 0, bytes(10))])  # truncates entry 1: 8-byte invalidation + 30
    assert st.bytes_written - b == 38
    b = st.bytes_written
    st.set_hard_state((2, 1, 1))
    st.create_snapshot(1, VOTERS, (), bytes(50))
    assert st.bytes_written - b == 24 + 24 + 12 + 50


def test_one_flush_per_append_batch():
    f, st = _fresh(64, 64)
    n0, b0 = f.flushes, st.bytes_written
    st.append([(i, 1, 0, bytes(10)) for i in range(1, 17)])
    assert f.flushes - n0 == 1 and st.bytes_written - b0 == 16 * 30
    # A conflicting batch: one flush invalidates entries 13..16 (top down),
    # a second writes the 16 new entries.
    n0, b0 = f.flushes, st.bytes_written
    st.append([(i, 2, 0, bytes(10)) for i in range(13, 29)])
    assert f.flushes - n0 == 2 and st.bytes_written - b0 == 4 * 8 + 16 * 30
    assert st.last_index() == 28 and st.term(12) == 1 and st.term(13) == 2
    # Installing a snapshot over live entries costs exactly one flush more
    # than installing it on an empty log: the invalidation sweep.
    n0 = f.flushes
    st.apply_snapshot(Snapshot(20, 1, VOTERS, (), b"img"))
    with_tail = f.flushes - n0
    st2 = FlashStorage(f.reboot(), VOTERS, (), 64, 64, "n1")
    assert st2.first_index() == 21 and st2.last_index() == 20
    f2, st3 = _fresh(64, 64)
    n0 = f2.flushes
    st3.apply_snapshot(Snapshot(20, 1, VOTERS, (), b"img"))
    assert with_tail == f2.flushes - n0 + 1


def test_joint_membership_survives_the_snapshot_file_and_the_blob():
    # A snapshot taken in a joint configuration (thesis 4.3) keeps its
    # outgoing voters and auto-leave flag on flash and on the wire; one
    # written without them (the header's spare u16 is 0) reads back plain.
    from raft.snapblob import decode_blob, encode_blob
    f, st = _fresh()
    st.append([(1, 1, 0, b"a"), (2, 1, 0, b"b")])
    st.set_hard_state((1, 1, 2))
    st.create_snapshot(2, (1, 4, 5), (3,), b"img", (1, 2, 3), True)
    st.close()
    f = f.reboot()
    st = FlashStorage(f, VOTERS, (), 4, 32, "n1")
    s = st.snapshot()
    assert (s.voters, s.learners, s.voters_out, s.auto_leave) == ((1, 4, 5), (3,), (1, 2, 3), True)
    b = decode_blob(2, 1, encode_blob(s))
    assert (b.voters, b.learners, b.voters_out, b.auto_leave, bytes(b.data)) == (
        (1, 4, 5), (3,), (1, 2, 3), True, b"img")
    st.create_snapshot(2 + 0, (1,), (), b"x")   # not newer: ignored
    st.append([(3, 1, 0, b"c")])
    st.set_hard_state((1, 1, 3))
    st.create_snapshot(3, (1, 4, 5), (), b"img2")
    st.close()
    s = FlashStorage(f.reboot(), VOTERS, (), 4, 32, "n1").snapshot()
    assert (s.voters, s.voters_out, s.auto_leave) == ((1, 4, 5), (), False)
