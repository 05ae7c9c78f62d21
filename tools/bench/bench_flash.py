"""Flash wear and snapshot transfer figures for the closing notes of issue 3.

    python3 tools/bench/bench_flash.py

1. Bytes written to flash per committed entry: 5 nodes on the real flash
   formats (over the fake flash), fault-free, simulator clients.
2. Bytes written per election: a follower campaigns; everything the five
   nodes write until the new leader's no-op is applied everywhere.
3. Messages to move a 64 KB snapshot to an empty follower with 10% loss.
All three run the engine the boards run (raftio/engine.py): 1 and 2 in the
simulator, 3 in the paper tests' cluster harness on its engine backend.
Prints a line of JSON.
"""
import json
import sys

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

import raftnet  # noqa: E402
import sim  # noqa: E402
from raft import msg as M  # noqa: E402
from raft.config import Config  # noqa: E402
from raft.core import LEADER  # noqa: E402
from raft.memstorage import MemoryStorage  # noqa: E402
from raft.storage import Snapshot  # noqa: E402


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


def main():
    per_entry, per_election = wear()
    msgs, steps = snapshot_transfer()
    chunks = -(-(64 * 1024 + 10) // Config(1, [1]).snapshot_chunk)
    out = {"flash_bytes_per_committed_entry_cluster": round(per_entry, 1),
           "flash_bytes_per_committed_entry_per_node": round(per_entry / 5, 1),
           "flash_bytes_per_election_cluster": round(per_election, 1),
           "snapshot_64k_messages_10pct_loss": msgs, "snapshot_64k_chunks": chunks,
           "snapshot_64k_ticks": steps}
    print("flash: %.1f bytes per committed entry (%.1f per node), %.0f bytes per election "
          "(all 5 nodes)" % (per_entry, per_entry / 5, per_election))
    print("64 KB snapshot with 10%% loss: %d chunk messages (%d chunks minimum), %d ticks"
          % (msgs, chunks, steps))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
