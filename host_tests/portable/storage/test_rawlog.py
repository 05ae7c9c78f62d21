"""The raw-partition log (raftio/rawlog.py) on the fake NOR device.

NOR semantics are enforced by the device (a program onto bytes not erased
fails), so every test here also checks that the log never re-programs a
byte. Power cuts at every byte of scripted workloads reuse the sweep of
test_storage_cuts (the same expectations as the file formats: nothing
acknowledged lost, no truncated entry back, a healthy log after), with
blocks small enough that the ring wraps many times. Damage that no cut can
leave is reported in one line (CorruptStorage), never skipped.
"""
from raftio.fakeflash import FakeBlockDev, FakeFlash, NorViolation, PowerCut
from raftio.fs import CorruptStorage, StorageError, StorageFull
from raftio.rawlog import RawLog, RawStorage
from test_storage_cuts import (VOTERS, apply_op, expectations, gen_workload, model_reboot,
                               run, sweep, view)
from test_storage_iface import answers
from raft.memstorage import MemoryStorage


def _boot(nblocks, bs, slots, slot_size, prog=1):
    def boot(flash):
        dev = FakeBlockDev(flash, "part", nblocks, bs, prog)
        return RawStorage(flash, VOTERS, (), slots, slot_size, "n1",
                          RawLog(dev, slots, slot_size, prog, "part"))
    return boot


# 8 slots of entries up to 20 bytes, 128-byte blocks: a block holds 3-7
# records, so the workloads below wrap the 8-block ring several times.
_CFG = (8, 40, _boot(8, 128, 8, 40))


def _dev(st):
    return st._log.dev


def test_nor_device_refuses_reprogramming():
    f = FakeFlash()
    d = FakeBlockDev(f, "p", 4, 64, 1)
    d.writeblocks(1, b"\x0f\xf0", 3)
    d.writeblocks(1, b"\xff\xff", 3)            # 0xFF over programmed bytes: a no-op
    buf = bytearray(4)
    d.readblocks(1, buf, 2)
    assert bytes(buf) == b"\xff\x0f\xf0\xff"
    for bad in (b"\x0f", b"\x00"):              # even the same value is a second program
        try:
            d.writeblocks(1, bad, 3)
            assert False, "re-program accepted"
        except NorViolation as e:
            assert "not erased" in str(e)
    d.ioctl(6, 1)
    d.writeblocks(1, b"\x00", 3)                # erased again: allowed
    assert d.erases == [0, 1, 0, 0]
    p = FakeBlockDev(f, "q", 2, 512, 256)       # rp2: whole pages only
    try:
        p.writeblocks(0, b"\x00" * 16, 8)
        assert False, "unaligned program accepted"
    except NorViolation as e:
        assert "aligned" in str(e)
    try:
        d.readblocks(4, buf, 0)
        assert False
    except OSError:
        pass


def test_power_cut_mid_program_tears_and_scatters():
    f = FakeFlash(cut_after_bytes=3)
    d = FakeBlockDev(f, "p", 2, 64, 1)
    try:
        d.writeblocks(0, b"\x00" * 40, 0)
        assert False
    except PowerCut:
        pass
    g = f.reboot()
    data = g.files["p"]
    assert data[:3] == b"\x00" * 3 and data[3] == 0x0F       # torn: half its bits
    rest = data[4:40]
    assert 0 < sum(1 for x in rest if x == 0) < len(rest)                   # scattered, not a prefix
    assert data[40:] == b"\xff" * (128 - 40)


def test_same_answers_as_memory_storage():
    for seed in (1, 2, 3):
        m = MemoryStorage(VOTERS)
        f = FakeFlash()
        st = _CFG[2](f)
        for n, op in enumerate(gen_workload(seed, 80, (15, 75, 85, 92), _CFG[0], 12)):
            if op[0] == "reboot":
                model_reboot(m)
                f = f.reboot()
                st = _CFG[2](f)
            else:
                apply_op(m, op)
                apply_op(st, op)
            assert answers(st) == answers(m), "seed %d after op %d %r" % (seed, n, op[0])
        assert st._log._seq > 8, st._log._seq   # blocks started: the ring wrapped


def test_power_cut_at_every_byte():
    ops = gen_workload(7, 30, (10, 85, 95, 98), _CFG[0], 12)
    exps = expectations(ops)
    # Every budget unit of the whole workload is a cut point (no spreading).
    _, st, i, total = run(ops, _CFG)
    assert i is None and view(st) == exps[-1][2]
    n, total2 = sweep(ops, _CFG, total + 1)
    assert total2 == total and n == 2 * (total + 1), (n, total)
    assert total > 1000 and sum(1 for op in ops if op[0] == "append") >= 15, total


def test_power_cut_at_every_byte_batches_and_snapshots():
    ops = gen_workload(27, 24, (10, 40, 75, 92), _CFG[0], 4, 5)
    assert sum(1 for op in ops if op[0] == "install") >= 3
    assert sum(1 for op in ops if op[0] == "snap") >= 3
    _, st, i, total = run(ops, _CFG)
    n, _ = sweep(ops, _CFG, total + 1)
    assert n == 2 * (total + 1)


def test_power_cut_every_byte_rp2_pages():
    # 256-byte program pages: each record is programmed as whole pages with
    # 0xFF around it (a budget unit per page byte, so cuts are spread over
    # 500 points); a ring of six 512-byte blocks.
    cfg = (8, 40, _boot(6, 512, 8, 40, 256))
    ops = gen_workload(5, 30, (10, 85, 95, 98), 8, 12)
    _, st, i, total = run(ops, cfg)
    assert i is None and _dev(st).erases != [0] * 6
    n, _ = sweep(ops, cfg, 500)
    assert n >= 1000, n


def _filled(n=30, data=b"abcdefghij", lag=2):
    f = FakeFlash()
    st = _CFG[2](f)
    for i in range(1, n + 1):
        st.append([(i, 1, 0, data)])
        if i % 5 == 0:
            st.create_snapshot(i - lag, VOTERS, (), b"img")
            st.compact(i - lag)
    return f, st


def test_ring_wrap_erases_each_block_in_turn():
    f, st = _filled(200)
    e = _dev(st).erases
    assert min(e) >= 5 and max(e) - min(e) <= 1, e       # even wear: a ring
    st2 = _CFG[2](f.reboot())
    assert st2.last_index() == 200
    assert [x[0] for x in st2.entries(st2.first_index(), 201)] == list(range(st2.first_index(), 201))


def test_ring_full_of_live_entries_raises_storage_full():
    f = FakeFlash()
    st = _CFG[2](f)
    # Nothing compacted: 8 slots fit, the 9th append is refused (slots).
    for i in range(1, 9):
        st.append([(i, 1, 0, b"x" * 20)])
    try:
        st.append([(9, 1, 0, b"x")])
        assert False
    except StorageFull:
        pass
    # Blocks full of live entries: truncations write every entry again
    # until the block the ring would erase next still holds entry 1.
    k = 0
    try:
        for k in range(100):
            st.append([(8, 2 + k, 0, b"y" * 20)])
        assert False, "ring never filled"
    except StorageFull as e:
        assert "not compacted" in str(e)
    # Entry 8 of the refused append's term may be gone (truncated first);
    # what was compacted nowhere is intact.
    assert st.entries(1, 8)[0] == (1, 1, 0, b"x" * 20)
    # A leader's snapshot still installs: its truncation mark fits the
    # room entries leave at the end of every block.
    from raft.storage import Snapshot
    last = st.last_index()
    assert last >= 6
    st.apply_snapshot(Snapshot(5, 1, VOTERS, (), b"leader"))
    assert st.first_index() == 6 and st.last_index() == 5
    g = f.reboot()
    st = _CFG[2](g)
    assert (st.first_index(), st.last_index(), bytes(st.snapshot().data)) == (6, 5, b"leader")
    st.append([(6, 200, 0, b"z")])                       # room again
    f = g
    st2 = _CFG[2](f.reboot())
    assert st2.entries(6, 7) == [(6, 200, 0, b"z")]


def _corrupt(f, p):
    f.files["part"][p] ^= 0x10   # bit rot


def test_rotten_record_inside_a_block_is_reported():
    f, st = _filled(12)
    pos = st._log._pos[11 % 8]
    g = f.reboot()
    _corrupt(g, pos + 6)    # entry 11's record, entry 12 after it in its block
    try:
        _CFG[2](g)
        assert False, "damage accepted"
    except CorruptStorage as e:
        msg = str(e)
        assert "\n" not in msg and "does not read back" in msg, msg


def test_rotten_block_header_inside_the_log_is_reported():
    for n in range(40, 60):
        f, st = _filled(n, b"x" * 20, 3)              # 3 records a block
        b = st._log._pos[st.first_index() % 8] // 128  # the oldest live entry's block
        head = st._log._head
        if (b + 1) % 8 != head and b != head:
            break
    assert (b + 2) % 8 == head, (b, head)
    g = f.reboot()
    _corrupt(g, ((b + 1) % 8) * 128 + 5)               # a later block's header
    try:
        _CFG[2](g)
        assert False, "damage accepted"
    except CorruptStorage as e:
        assert "lost" in str(e), str(e)


def test_rotten_head_header_is_reported():
    f, st = _filled(40)
    head = st._log._head
    g = f.reboot()
    _corrupt(g, head * 128 + 2)
    try:
        _CFG[2](g)
        assert False, "damage accepted"
    except CorruptStorage as e:
        assert "header" in str(e) and "lost" in str(e), str(e)


def test_torn_tail_is_abandoned_and_counted():
    for n in range(10, 20):
        f, st = _filled(n)
        if st._log._w + 16 + 10 <= 128:     # the next record fits the head block
            break
    log = st._log
    g = f.reboot(10)                             # a cut 10 bytes into the next record
    st = _CFG[2](g)
    try:
        st.append([(n + 1, 1, 0, b"0123456789")])
        assert False
    except PowerCut:
        pass
    g2 = g.reboot()
    st2 = _CFG[2](g2)
    assert st2.last_index() == n and st2._log.torn == 1
    head = st2._log._head
    st2.append([(n + 1, 2, 0, b"after")])           # in a fresh block, not over the torn bytes
    assert st2._log._head == (head + 1) % 8
    st3 = _CFG[2](g2.reboot())
    assert st3.entries(n + 1, n + 2) == [(n + 1, 2, 0, b"after")] and st3._log.torn == 0
    assert log.torn == 0


def test_log_without_hard_state_is_refused():
    f, st = _filled(5)
    g = f.reboot()
    for name in list(g.files):
        if name.startswith("n1."):
            del g.files[name]
    try:
        _CFG[2](g)
        assert False
    except CorruptStorage as e:
        assert "part" in str(e)


def test_partition_too_small_is_one_line():
    f = FakeFlash()
    for args in ((FakeBlockDev(f, "a", 3, 128), 8, 40), (FakeBlockDev(f, "b", 8, 32), 8, 40)):
        try:
            RawLog(*args)
            assert False
        except StorageError as e:
            assert "\n" not in str(e) and "rawlog" in str(e)


def test_simulator_cluster_on_raw_logs():
    # Five nodes whose logs are raw partitions, under every fault (power cuts
    # at any byte included) with KV clients: histories stay linearizable.
    # (20,000-step runs wrap the 32-block rings: boards/README.md.)
    import gc
    import sim
    gc.collect()
    opts = sim.parse_args(["--seed", "3", "--steps", "2500", "--clients", "5", "--check-linear",
                           "--log", "raw"])
    s = sim.Sim(opts)
    res = s.run()
    assert res["violations"] == [] and res["linearizable"] is True, res["violations"]
    assert res["power_cuts"] >= 5 and res["commits"] > 300, res
    logs = [s.nodes[i].storage._log for i in s.ids]
    assert all(isinstance(lg, RawLog) for lg in logs)
    assert min(lg._seq for lg in logs) >= 10, [lg._seq for lg in logs]   # blocks started


class _Replayed(FakeBlockDev):
    """Notes the blocks whose records are read (offsets past the header)."""

    def readblocks(self, n, buf, off=0):
        if off:
            self.seen.add(n)
        FakeBlockDev.readblocks(self, n, buf, off)


def test_boot_replays_only_the_blocks_after_the_snapshot():
    # 64 blocks of 256 bytes written over, a snapshot 4 entries behind at
    # most 16 entries ago: the entries past it fill 4-5 blocks. The boot
    # reads block headers and replays from the newest block whose first
    # record is at or before snapshot + 1, not the whole partition.
    slots, size = 64, 60

    def boot(fl, dev_cls=FakeBlockDev):
        dev = dev_cls(fl, "part", 64, 256)
        dev.seen = set()
        return RawStorage(fl, VOTERS, (), slots, size, "n1", RawLog(dev, slots, size, 1, "part"))
    f = FakeFlash()
    st = boot(f)
    i = 0
    while st._log._seq < 70:
        i += 1
        st.append([(i, 1, 0, bytes(24))])
        if i % 16 == 0:
            st.create_snapshot(i - 4, VOTERS, (), b"img")
            st.compact(i - 4)
    st2 = boot(f.reboot(), _Replayed)
    assert st2.first_index() == st.snapshot().index + 1 and st2.last_index() == i
    assert st2.entries(st2.first_index(), i + 1) == st.entries(st2.first_index(), i + 1)
    # The replayed blocks, the block after the head (checked for a lost
    # header) and nothing else.
    assert 2 <= len(st2._log.dev.seen) <= 7, sorted(st2._log.dev.seen)
