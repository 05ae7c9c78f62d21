"""raftio/logfile.py reads a live entry's term back from its slot, and the
fake flash shows a handle its own unflushed writes (both interpreters)."""
from raftio.fakeflash import FakeFlash
from raftio.fs import CorruptStorage
from raftio.logfile import LogFile


def _raises(fn, *args):
    try:
        fn(*args)
    except CorruptStorage:
        return True
    return False


def test_a_term_comes_from_the_slot_that_holds_that_entry():
    lf = LogFile(FakeFlash(), "log", 4, 64, 0)
    lf.open()
    for i in range(1, 7):
        lf.write((i, 10 + i, 0, b"x%d" % i))
    lf.sync()
    assert [lf.term(i) for i in (3, 4, 5, 6)] == [13, 14, 15, 16]
    # Entry 5 took entry 1's slot: entry 1 is gone, not answered with 5's term.
    assert _raises(lf.term, 1) and _raises(lf.read, 2)


def test_a_handle_reads_its_pending_writes_and_only_the_window_asked_for():
    fl = FakeFlash(files={"f": bytearray(b"0123456789")})
    w = fl.open("f", "r+b")
    w.seek(3)
    w.write(b"AB")
    w.seek(12)
    w.write(b"Z")           # past the end: the gap reads as zeros
    w.seek(2)
    assert w.read(4) == b"2AB5"
    w.seek(0)
    assert w.read() == b"012AB56789\x00\x00Z"
    assert fl.open("f", "rb").read() == b"0123456789"   # not flushed: others see flash
    w.flush()
    assert fl.open("f", "rb").read(6) == b"012AB5"
