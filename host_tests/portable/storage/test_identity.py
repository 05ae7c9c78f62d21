"""A node's identity on flash (raftio/identity.py; docs/incarnation.md) and
the incarnations a snapshot file carries. Plain assert functions; pytest and
`micropython tools/mptest.py`."""
from raft.errors import CorruptStorage
from raftio import identity
from raftio.fakeflash import FakeFlash
from raftio.storage import FlashStorage


def test_a_blank_flash_adopts_the_provisioned_incarnation_once():
    f = FakeFlash()
    assert identity.load(f, 3) == 0
    assert identity.ensure(f, 3, 777) == 777
    f = f.reboot()
    # Provisioned once: a later boot keeps it, whatever it is offered.
    assert identity.load(f, 3) == 777 and identity.ensure(f, 3, 999) == 777


def test_a_blank_flash_without_provisioning_is_a_new_random_incarnation():
    seen = set()
    for _ in range(20):
        f = FakeFlash()
        inc = identity.ensure(f, 3)
        assert 0 < inc <= identity.MAX_INC
        assert identity.load(f.reboot(), 3) == inc
        seen.add(inc)
    assert len(seen) == 20


def test_a_torn_or_bad_identity_counts_as_none_and_another_nodes_is_refused():
    f = FakeFlash()
    identity.save(f, 3, 5)
    g = f.reboot()
    h = g.open(identity.NAME, "r+b")
    h.seek(6)
    h.write(b"\x06")    # the incarnation changed under the crc
    h.flush()
    h.close()
    assert identity.load(g, 3) == 0
    k = FakeFlash()
    identity.save(k, 4, 5)
    try:
        identity.load(k, 3)
    except CorruptStorage as e:
        assert "node 4's, not 3's" in str(e)
    else:
        raise AssertionError("another node's identity was accepted")


def test_a_power_cut_while_writing_the_identity_leaves_none_or_all():
    for cut in range(0, 40, 3):
        f = FakeFlash(cut_after_bytes=cut)
        try:
            identity.save(f, 2, 1234)
        except Exception:
            pass
        assert identity.load(f.reboot(), 2) in (0, 1234)


def test_the_snapshot_file_keeps_incarnations():
    f = FakeFlash()
    st = FlashStorage(f, (1, 2, 3), (), 8, 64, "n1")
    st.append([(1, 1, 0, b"a"), (2, 1, 0, b"b")])
    st.set_hard_state((1, 1, 2))
    st.create_snapshot(2, (1, 2), (3,), b"img", (), False, (11, 12, 903 | 0x80000000))
    st2 = FlashStorage(f.reboot(), (1, 2, 3), (), 8, 64, "n1")
    s = st2.snapshot()
    assert s.incs == (11, 12, 903 | 0x80000000) and s.learners == (3,) and s.data == b"img"
    f3 = FakeFlash()
    st3 = FlashStorage(f3, (1, 2, 3), (), 8, 64, "n1")
    st3.append([(1, 1, 0, b"a")])
    st3.set_hard_state((1, 1, 1))
    st3.create_snapshot(1, (1, 2, 3), (), b"plain")
    assert FlashStorage(f3.reboot(), (1, 2, 3), (), 8, 64, "n1").snapshot().incs == ()
