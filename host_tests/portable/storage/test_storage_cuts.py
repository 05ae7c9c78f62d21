"""Power cuts at every byte of scripted workloads, one per flash format.

For each workload: run it once without a cut to learn how many budget units
(bytes + metadata ops) it spends, then replay it from scratch with
FakeFlash(cut_after_bytes=K) for every K (or an even spread of >= 1,000 of
them), reboot, boot a new FlashStorage and check that what it recovers is a
state the operation in flight may leave: nothing acknowledged lost, nothing
never written, no truncated entry back. Then write once more and reboot again,
to show the recovered files are healthy. The helpers here are shared with
host_tests/portable/storage/test_storage_iface.py and
host_tests/storage/test_storage_props.py.
"""
from raft.memstorage import MemoryStorage
from raft.storage import Snapshot
from raftio.storage import FlashStorage
from raftio.fakeflash import FakeFlash, PowerCut

VOTERS = (1, 2, 3)


class Rng:
    """Small LCG: the same numbers on CPython and MicroPython."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 12345) & 0x7FFFFFFF

    def below(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 8) % n

    def randint(self, a, b):
        return a + self.below(b - a + 1)

    def data(self, n):
        return bytes([self.below(256) for _ in range(n)])


# -- workloads ---------------------------------------------------------------
# An op is a tuple: ("hs", hs) | ("append", entries) | ("snap", index, data,
# compact_to) | ("install", Snapshot) | ("reboot",).

def model_reboot(m):
    if m.first_index() <= m.snap.index:
        m.compact(m.snap.index)


def apply_op(st, op):
    k = op[0]
    if k == "hs":
        st.set_hard_state(op[1])
    elif k == "append":
        st.append(op[1])
    elif k == "snap":
        st.create_snapshot(op[1], VOTERS, (), op[2])
        st.compact(op[3])
    elif k == "install":
        st.apply_snapshot(op[1])


def gen_workload(seed, n, mix, slots, max_data, batch=3):
    """mix: cumulative percent thresholds for (hs, append, snap, install); rest reboots.
    seed: an int, or any object with Rng's below() (hypothesis drives it so).
    batch: most entries per append (one flush each); a conflicting append
    starts up to max(3, batch) entries before the end."""
    rng = seed if hasattr(seed, "below") else Rng(seed)
    m = MemoryStorage(VOTERS)
    ops = []
    cur = 1
    while len(ops) < n:
        r = rng.below(100)
        off = m.first_index() - 1
        last = m.last_index()
        term, vote, commit = m.hard_state
        op = None
        if r < mix[0]:
            if rng.below(4) == 0:
                cur += 1
            op = ("hs", (cur, rng.below(4), rng.randint(commit, last)))
        elif r < mix[1]:
            k = last + 1
            if rng.below(3) == 0:
                k = rng.randint(max(commit + 1, off + 1, last - max(3, batch)), last + 1)
            cnt = rng.randint(1, batch)
            cnt = min(cnt, off + slots - k + 1)
            if cnt < 1:
                if commit > m.snap.index:
                    idx = rng.randint(m.snap.index + 1, commit)
                    op = ("snap", idx, rng.data(rng.below(12)), idx)
                else:
                    op = ("hs", (max(cur, term), vote, last))
            else:
                lo = m.term(k - 1)
                cur = max(cur, lo)
                if rng.below(5) == 0:
                    cur += 1
                t = rng.randint(lo, cur)
                ents = []
                for i in range(k, k + cnt):
                    ents.append((i, t, rng.below(2), rng.data(rng.below(max_data + 1))))
                op = ("append", ents)
        elif r < mix[2]:
            if commit > m.snap.index:
                idx = rng.randint(m.snap.index + 1, commit)
                op = ("snap", idx, rng.data(rng.below(40)), rng.randint(max(idx - 2, 0), idx))
        elif r < mix[3]:
            s = rng.randint(max(commit, m.snap.index) + 1, last + 3)
            t = rng.randint(max(m.snap.term, 1), cur)
            op = ("install", Snapshot(s, t, VOTERS, (4,), rng.data(rng.below(40))))
        else:
            op = ("reboot",)
        if op is None:
            continue
        if op[0] == "reboot":
            model_reboot(m)
        else:
            apply_op(m, op)
        ops.append(op)
    return ops


# -- views and what a cut may leave ------------------------------------------

def view(st):
    """What survives a reboot: hard state, snapshot, entries after the snapshot."""
    s = st.snapshot()
    hs = st.initial_state()[0]
    if hs[2] < s.index:
        hs = (hs[0], hs[1], s.index)
    ents = ()
    if st.last_index() > s.index:
        ents = tuple(st.entries(s.index + 1, st.last_index() + 1))
    return (tuple(hs), (s.index, s.term, tuple(s.voters), tuple(s.learners), bytes(s.data)), ents)


def expectations(ops):
    """For each op: (kind, view before, view after, entries that must survive)."""
    m = MemoryStorage(VOTERS)
    out = []
    for op in ops:
        v0 = view(m)
        if op[0] == "reboot":
            model_reboot(m)
        else:
            apply_op(m, op)
        v1 = view(m)
        keep = 0
        if op[0] == "append":
            keep = op[1][0][0] - 1 - v0[1][0]
        elif op[0] == "install":
            keep = min(v0[1][0] + len(v0[2]), op[1].index) - v0[1][0]
        out.append((op[0], v0, v1, keep))
    return out


def _prefix_of(ents, full, keep):
    return keep <= len(ents) <= len(full) and ents == full[:len(ents)]


def allowed(exp, got):
    kind, v0, v1, keep = exp
    if got == v0 or got == v1:
        return True
    if kind == "append":
        return got[:2] == v0[:2] and (_prefix_of(got[2], v0[2], keep) or _prefix_of(got[2], v1[2], keep))
    if kind == "install":
        return got[:2] == v0[:2] and _prefix_of(got[2], v0[2], keep)
    return False


# -- the cut runner ----------------------------------------------------------

def boot(flash, cfg):
    # cfg: (slots, slot size[, segment bytes or a function of the flash
    # that boots the storage]); the default segment (4096 bytes) holds
    # every ring here in one file.
    if len(cfg) > 2 and callable(cfg[2]):
        return cfg[2](flash)
    if len(cfg) > 2:
        return FlashStorage(flash, VOTERS, (), cfg[0], cfg[1], "n1", cfg[2])
    return FlashStorage(flash, VOTERS, (), cfg[0], cfg[1], "n1")


def run(ops, cfg, cut=None, replaces=True, torn=True, marks=None):
    """Run ops on a fresh fake. Return (flash, storage, op index in flight or None,
    units spent). If marks is a list, append the units spent before each op."""
    flash = FakeFlash(cut, rename_replaces=replaces, torn=torn)
    spent = 0
    i = -1
    st = None
    try:
        st = boot(flash, cfg)
        for i in range(len(ops)):
            op = ops[i]
            if marks is not None:
                marks.append(spent + flash.landed)
            if op[0] == "reboot":
                spent += flash.landed
                flash = flash.reboot(flash.budget)
                st = boot(flash, cfg)
            else:
                apply_op(st, op)
        i = None
    except PowerCut:
        pass
    return flash, st, i, spent + flash.landed


EMPTY = ((0, 0, 0), (0, 0, VOTERS, (), b""), ())


def check_cut(ops, exps, cfg, cut, replaces=True, torn=True):
    flash, st, i, _ = run(ops, cfg, cut, replaces, torn)
    flash = flash.reboot()
    st = boot(flash, cfg)
    got = view(st)
    if i is None:
        ok = got == exps[-1][2]
    elif i < 0:
        ok = got == EMPTY
    else:
        ok = allowed(exps[i], got)
    assert ok, "torn=%r cut %d during op %d %r: recovered %r; expected %r" % (
        torn, cut, -1 if i is None else i, ops[i][0] if i is not None and i >= 0 else "boot", got,
        exps[i][1:3] if i is not None and i >= 0 else EMPTY)
    # The recovered files must take new writes and survive another reboot.
    hs = got[0]
    st.set_hard_state((hs[0] + 1, 2, hs[2]))
    last = st.last_index()
    e = None
    if last + 1 - (st.first_index() - 1) <= cfg[0]:
        e = (last + 1, max(st.term(last), 1), 0, b"ok"[:st.max_entry_bytes()])
        st.append([e])
    st2 = boot(flash.reboot(), cfg)
    again = view(st2)
    assert again[0] == (hs[0] + 1, 2, hs[2]), (cut, again[0])
    assert again[1] == got[1]
    assert again[2] == got[2] + ((e,) if e else ()), (cut, again[2], got[2])
    return i, got


def cut_points(total, want):
    step = max(1, total // want)
    return range(0, total + 1, step)


def sweep(ops, cfg, want=1000, replaces=True, on_cut=None):
    """on_cut, if given, is called with (op index in flight, recovered view) per cut."""
    exps = expectations(ops)
    _, st, i, total = run(ops, cfg, None, replaces)
    assert i is None
    assert view(st) == exps[-1][2]
    n = 0
    for k in cut_points(total, want):
        for torn in (False, True):
            r = check_cut(ops, exps, cfg, k, replaces, torn)
            if on_cut is not None:
                on_cut(r[0], r[1])
        n += 2
    return n, total


# Ring settings: small, so the workloads wrap the log ring several times.
_LOG_CFG = (8, 40)
_HS_CFG = (4, 24)


def test_hard_state_cuts():
    ops = []
    for j in range(40):
        ops.append(("hs", (1 + j // 3, j % 4, 0)))
        if j % 13 == 12:
            ops.append(("reboot",))
    n, total = sweep(ops, _HS_CFG)
    assert n >= 1000, (n, total)


def test_log_cuts():
    ops = gen_workload(7, 60, (10, 85, 95, 98), _LOG_CFG[0], 12)
    assert sum(1 for op in ops if op[0] == "append") > 30
    n, total = sweep(ops, _LOG_CFG, 10000)
    assert n >= 1000, (n, total)


def test_snapshot_cuts():
    ops = gen_workload(27, 40, (10, 40, 75, 92), _LOG_CFG[0], 4)
    assert sum(1 for op in ops if op[0] == "snap") >= 5
    assert sum(1 for op in ops if op[0] == "install") >= 5
    n, total = sweep(ops, _LOG_CFG, 10000)
    assert n >= 1000, (n, total)


def test_snapshot_cuts_fat_rename():
    # FAT-style rename (no replace): remove + rename, adopt NAME.tmp at boot.
    ops = gen_workload(35, 40, (10, 40, 75, 92), _LOG_CFG[0], 4)
    n, total = sweep(ops, _LOG_CFG, 300, replaces=False)
    assert n >= 300, (n, total)


_BATCH_CFG = (16, 32)


def test_batch_cuts():
    # Appends of up to 12 entries, one flush each (twice when they truncate):
    # a cut inside a batch must leave a clean prefix of it, and a cut inside
    # the invalidation sweep a prefix of the old log.
    ops = gen_workload(17, 40, (8, 80, 94, 97), _BATCH_CFG[0], 12, 12)
    appends = [op[1] for op in ops if op[0] == "append"]
    assert sum(1 for a in appends if len(a) >= 6) >= 8
    exps = expectations(ops)
    truncating = 0
    for j in range(len(ops)):
        if ops[j][0] == "append" and len(ops[j][1]) >= 2:
            if ops[j][1][0][0] <= exps[j][1][1][0] + len(exps[j][1][2]) - 2:
                truncating += 1  # drops at least two live entries
    assert truncating >= 5, truncating
    assert sum(1 for op in ops if op[0] == "install") >= 2
    # Count the cuts that recovered a batch part-way: 0 < kept < batch size.
    torn = [0]

    def on_cut(i, got):
        if i is not None and i >= 0 and ops[i][0] == "append":
            kept = len(got[2]) - exps[i][3]
            if 0 < kept < len(ops[i][1]) and got[2] != exps[i][2][2]:
                torn[0] += 1

    n, total = sweep(ops, _BATCH_CFG, 10000, on_cut=on_cut)
    assert n >= 1000, (n, total)
    assert torn[0] >= 1000, torn[0]


_SEG_CFG = (16, 32, 96)  # 3 slots per segment file: batches cross files


def test_batch_cuts_across_segment_files():
    # The ring cut into files of 3 slots (raftio/logfile.py: one littlefs
    # block each on a board): a batch flushes each file before writing the
    # next, in index order, so a cut between two files' flushes must still
    # leave a clean prefix (and the invalidation sweep a prefix of the old log).
    ops = gen_workload(17, 40, (8, 80, 94, 97), _SEG_CFG[0], 12, 12)
    exps = expectations(ops)
    torn = [0]

    def on_cut(i, got):
        if i is not None and i >= 0 and ops[i][0] == "append":
            kept = len(got[2]) - exps[i][3]
            if 0 < kept < len(ops[i][1]) and got[2] != exps[i][2][2]:
                torn[0] += 1

    n, total = sweep(ops, _SEG_CFG, 4000, on_cut=on_cut)
    assert n >= 1000, (n, total)
    assert torn[0] >= 300, torn[0]
    f = FakeFlash()
    boot(f, _SEG_CFG)
    assert sorted(f.listdir()) == ["n1.hs", "n1.log"] + ["n1.log.%d" % k for k in range(1, 6)]
