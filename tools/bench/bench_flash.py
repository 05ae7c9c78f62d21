"""Flash wear and snapshot transfer figures for the closing notes of issue 3.

    python3 tools/bench/bench_flash.py

1. Bytes written to flash per committed entry: 5 nodes on the real flash
   formats (over the fake flash), fault-free, simulator clients.
2. Bytes written per election: a follower campaigns; everything the five
   nodes write until the new leader's no-op is applied everywhere.
3. Messages to move a 64 KB snapshot to an empty follower with 10% loss.
4. littlefs wear (tools/bench/lfswear.py: block erases littlefs v2 would do
   for the write trace, 4 KB blocks): erases per committed entry for one
   node with esp32 parameters (512 slots of 660 bytes, hard state every 64
   commits, a snapshot every 256 entries), one entry per flush (a board at
   1-10 puts/s: every put is its own Ready), for the log in one file
   (before) and in one-block segment files (now); erases per election in
   the simulator; and the life of a 4 MB flash at 1, 10 and 100 puts/s.
All run the engine the boards run (raftio/engine.py): 1, 2 and the
election wear in the simulator, 3 in the paper tests' cluster harness on its
engine backend. Prints a line of JSON.
"""
import json
import sys

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import lfswear  # noqa: E402
import raftnet  # noqa: E402
import sim  # noqa: E402
import simnode  # noqa: E402
from raft import msg as M  # noqa: E402
from raft.config import Config  # noqa: E402
from raft.core import LEADER  # noqa: E402
from raft.memstorage import MemoryStorage  # noqa: E402
from raft.storage import Snapshot  # noqa: E402
from raftio.storage import FlashStorage  # noqa: E402

# The wear model's flash and the life estimate's assumptions.
FLASH_BYTES = 4 << 20
BLOCK = lfswear.BLOCK
STATIC_BLOCKS = 64     # firmware .mpy, boot files, board/node files, snapshot: not rotated
ERASE_CYCLES = 100000
YEAR_S = 365.25 * 24 * 3600
RATES = (1, 10, 100)


def _written(s):
    return sum(s.nodes[i].storage.bytes_written for i in s.ids)


def wear():
    opts = sim.parse_args(["--faults", "powercut", "--seed", "4", "--steps", "0"])
    s = sim.Sim(opts)
    s.faults = []  # flash formats on, no cuts
    while s.leader() is None:
        s.step()
    for _ in range(50):
        s.step()
    b0, c0 = _written(s), s.checker.commit_count()
    for _ in range(3000):
        s.step()
    per_entry = (_written(s) - b0) / float(s.checker.commit_count() - c0)
    # Elections: quiesce, then make a follower campaign, 20 times.
    s.clients = lambda: None
    per_election = []
    for _ in range(20):
        for _ in range(30):
            s.step()
        ld = s.leader()
        f = s.nodes[[i for i in s.ids if i != ld.id][0]]
        b0, t0 = _written(s), ld.engine.core.term
        f.engine.core.hup(True)   # campaign now (as a leadership transfer would)
        f.engine.drive()
        for _ in range(30):
            s.step()
        assert s.leader() is not None and s.leader().engine.core.term > t0
        per_election.append(_written(s) - b0)
    return per_entry, sum(per_election) / float(len(per_election))


def snapshot_transfer(size=64 * 1024, loss=100, seed=1):
    ids = [1, 2, 3]
    data = bytes((k * 7) & 0xFF for k in range(size))
    raftnet.BACKEND = "engine"
    net = raftnet.Net(3, seed=seed, election_tick=10)
    for i in (1, 2):
        st = MemoryStorage(ids)
        st.apply_snapshot(Snapshot(100, 1, ids, (), data))
        st.set_hard_state((1, 0, 100))
        net.storages[i] = st
        net._boot(i)
    net.drop = loss
    net.nodes[1].campaign()
    net.drive(1)
    for step in range(20000):
        net.step()
        if net.raft(3).log.committed >= 100 and net.raft(1).role == LEADER:
            return net.sent_by_type[M.SNAP], step
    raise SystemExit("snapshot transfer did not finish")


def node_erases_per_entry(segment_bytes, n=3000, data=60):
    """littlefs erases per entry, one node, esp32 parameters, one entry per flush."""
    fl = lfswear.LfsFlash()
    st = FlashStorage(fl, [1, 2, 3], (), 512, 660, "raft", segment_bytes)
    t0 = fl.total()
    for i in range(1, n + 1):
        st.append([(i, 1, 0, bytes(data))])
        if i % 64 == 0:
            st.set_hard_state((1, 1, i))
        if i % 256 == 0:
            # raftkv image of ~64 keys, 128 entries kept for lagging followers.
            st.create_snapshot(i, [1, 2, 3], (), bytes(3000))
            st.compact(i - 128)
    return (fl.total() - t0) / float(n)


def election_erases():
    """Erases per election (all 5 nodes) in the simulator, littlefs model."""
    saved = simnode.FakeFlash
    simnode.FakeFlash = lfswear.LfsFlash
    try:
        opts = sim.parse_args(["--faults", "powercut", "--seed", "4", "--steps", "0"])
        s = sim.Sim(opts)
    finally:
        simnode.FakeFlash = saved
    s.faults = []
    while s.leader() is None:
        s.step()
    s.clients = lambda: None
    out = []
    for _ in range(10):
        for _ in range(30):
            s.step()
        ld = s.leader()
        f = s.nodes[[i for i in s.ids if i != ld.id][0]]
        e0 = sum(s.nodes[i].fs.total() for i in s.ids)
        f.engine.core.hup(True)
        f.engine.drive()
        for _ in range(30):
            s.step()
        out.append(sum(s.nodes[i].fs.total() for i in s.ids) - e0)
    return sum(out) / len(out)


def life_years(erases_per_entry, rate):
    usable = FLASH_BYTES // BLOCK - STATIC_BLOCKS
    return usable * ERASE_CYCLES / (erases_per_entry * rate) / YEAR_S


def littlefs_report():
    before = node_erases_per_entry(0)
    after = node_erases_per_entry(BLOCK)
    per_el = election_erases()
    print("littlefs wear model (tools/bench/lfswear.py): littlefs v2 as MicroPython builds it on")
    print("  esp32/rp2: 4 KB blocks, 32-byte program size, files <= 128 bytes inline in their")
    print("  directory's metadata block; a write at p in a file erases every block from p's to")
    print("  the file's last (copy-on-write, lfs_file_flush copies the rest of the file); an")
    print("  append after a sync erases one block (its partial last block is copied); every")
    print("  sync is a ~64-byte metadata commit, a metadata block erased per 3.5 KB of commits.")
    print("  Workload: one node, esp32 parameters (512 slots of 660 bytes), 60-byte entries,")
    print("  one entry per flush (each put its own Ready, as at 1-10 puts/s), hard state every")
    print("  64 commits, a 3 KB snapshot every 256 entries.")
    print("  block erases per committed entry, per node: %.2f with the log in one file (before),"
          " %.2f in one-block segment files (now)" % (before, after))
    print("  block erases per election (all 5 nodes, simulator): %.2f" % per_el)
    print("life of a 4 MB flash: %d blocks, %d of them static (firmware, config, snapshot),"
          % (FLASH_BYTES // BLOCK, STATIC_BLOCKS))
    print("  %d erase cycles per block, wear spread evenly over the other blocks (littlefs's"
          % ERASE_CYCLES)
    print("  dynamic wear levelling; on ESP32_GENERIC the file system is 2 MB: halve these);")
    print("  every node writes every entry; elections are rare and left out:")
    out = {"erases_per_entry_one_file": round(before, 3),
           "erases_per_entry_segments": round(after, 3),
           "erases_per_election_cluster": round(per_el, 3), "life_years": {}}
    for r in RATES:
        b, a = life_years(before, r), life_years(after, r)
        out["life_years"][str(r)] = {"one_file": round(b, 3), "segments": round(a, 3)}
        print("  %3d puts/s: %8.2f years before (%6.0f days), %8.2f years now (%6.0f days)"
              % (r, b, b * 365.25, a, a * 365.25))
    if life_years(after, 10) < 5:
        print("  under 5 years at 10 puts/s: one erase per flush is littlefs's floor for a file")
        print("  synced per Ready; what would go further: group commit (several puts per flush),")
        print("  or the log in a raw flash partition written sequentially (no file system).")
    return out


def main():
    lfs = littlefs_report()
    per_entry, per_election = wear()
    msgs, steps = snapshot_transfer()
    chunks = -(-(64 * 1024 + 10) // Config(1, [1]).snapshot_chunk)
    out = {"flash_bytes_per_committed_entry_cluster": round(per_entry, 1),
           "flash_bytes_per_committed_entry_per_node": round(per_entry / 5, 1),
           "flash_bytes_per_election_cluster": round(per_election, 1),
           "snapshot_64k_messages_10pct_loss": msgs, "snapshot_64k_chunks": chunks,
           "snapshot_64k_ticks": steps, "littlefs": lfs}
    print("flash: %.1f bytes per committed entry (%.1f per node), %.0f bytes per election "
          "(all 5 nodes)" % (per_entry, per_entry / 5, per_election))
    print("64 KB snapshot with 10%% loss: %d chunk messages (%d chunks minimum), %d ticks"
          % (msgs, chunks, steps))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
