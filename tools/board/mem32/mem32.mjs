// Weigh the mpraft firmware's live heap on a 32-bit MicroPython.
//
//   node tools/board/mem32/mem32.mjs BUILD_DIR BOARD_JSON [PUTS] [ROMFS_IMAGE]
//                                                   (or: make mem32 BOARD=esp32 [ROMFS=1])
//
// The unix port measures with 8-byte pointers and 32-byte GC blocks; boards
// have 4 and 16. The webassembly port of the same MicroPython release is a
// 32-bit build, so it loads the very .mpy files a board gets (BUILD_DIR, from
// tools/board/build.py) and shows what they weigh there. It has no sockets and
// cannot cap its heap, so this is a weighing, not a proof: one node alone
// (a single-voter cluster, which commits by itself) with BOARD_JSON's
// parameters, FlashStorage on an in-memory file system, a socket that sends
// nowhere; then PUTS puts from 16 sessions over 64 keys, proposed and driven
// through the node loop as the network would (the boot part, mpraft_boot,
// dropped once the node is built, as firmware/mpraft.py's boot() does).
// Live heap (gc.mem_alloc) is
// read after collections at top level only: this port cannot see the wasm
// stack, so a collection inside running Python code keeps garbage alive.
// Prints one JSON line: code, node, samples (live heap after each sixth of
// the load), applied, snapshots, imported (lazy parts the load imported:
// none expected) and lazy (each lazy part's weight once imported). With ROMFS_IMAGE (mpraft.mpy alone, from
// `mpremote romfs build`), the firmware is imported from that image mounted
// at /rom, its bytecode used in place as on a board with a ROMFS partition;
// the image sits in one bytearray here (a board maps it from flash), and
// its heap blocks (rom) are left out of code and samples.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "fs";
import path from "path";

const [build, boardFile, putsArg, romArg] = process.argv.slice(2);
if (!build || !boardFile) {
  console.log("usage: node mem32.mjs BUILD_DIR BOARD_JSON [PUTS]");
  process.exit(2);
}
const puts = parseInt(putsArg || "3000");
const mp = await loadMicroPython({ stdout: (l) => console.log(l), stderr: (l) => console.log(l) });

function copy(src, dst) {
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name), d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) { mp.FS.mkdirTree(d); copy(s, d); }
    else mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
mp.FS.mkdirTree("/flash/lib");
// A merged build (the default) is mpraft.mpy at the root; --no-merge has lib/.
const merged = !fs.existsSync(path.join(build, "lib"));
// The resident mpraft.mpy and the lazy parts (mpraft_PART.mpy, imported on
// first use; a node under puts never imports them).
const parts = fs.readdirSync(build).filter((n) => /^mpraft_[a-z0-9]+\.mpy$/.test(n)).sort();
if (merged) {
  for (const n of ["mpraft.mpy"].concat(parts)) mp.FS.writeFile("/flash/" + n, fs.readFileSync(path.join(build, n)));
} else copy(path.join(build, "lib"), "/flash/lib");
const board = JSON.parse(fs.readFileSync(boardFile));
board.network = "none";
mp.FS.writeFile("/flash/board.json", JSON.stringify(board));
mp.FS.writeFile("/flash/node.json", JSON.stringify({
  node_id: 1, cluster_id: 7, inc: 1, key: "00".repeat(16), peers: [{ id: 1, host: "127.0.0.1", port: 7001 }] }));
mp.FS.writeFile("/flash/lib/socket.py", `
import io
AF_INET = 2
SOCK_DGRAM = 2
MSG_PEEK = 2
def getaddrinfo(host, port, *a):
    return [(2, 2, 0, "", bytearray(16))]
class socket(io.IOBase):
    def __init__(self, *a): pass
    def bind(self, a): pass
    def setblocking(self, f): pass
    def sendto(self, b, a): return len(b)
    def recv(self, n, *f): raise OSError(11)
    def recvfrom(self, n, *f): raise OSError(11)
    def close(self): pass
    def ioctl(self, req, arg): return 0
`);

const py = (code) => mp.runPython(code);
const live = () => { py("gc.collect()"); py("_l = gc.mem_alloc()"); return mp.globals.get("_l"); };
py("import sys, gc, os, struct, time, json");
py('os.chdir("/flash"); sys.path[:0] = ["/flash", "/flash/lib"]; import socket');
let rom = 0;
if (romArg) {
  mp.FS.writeFile("/rom.img", fs.readFileSync(romArg));
  const before = live();
  py(`import vfs
_f = open("/rom.img", "rb"); _img = bytearray(os.stat("/rom.img")[6]); _f.readinto(_img); _f.close()
vfs.mount(vfs.VfsRom(_img), "/rom"); sys.path.insert(0, "/rom")`);
  rom = live() - before;
}
const base = live();
py(merged || romArg ? "from mpraft import RealFS, Node, slot_size, FlashStorage"
   : "from raftio.fs import RealFS\nfrom raftio.node import Node, slot_size\nfrom raftio.storage import FlashStorage");
const code = live() - base;
py(`c = json.load(open("node.json")); b = json.load(open("board.json"))
os.mkdir("raft")
node = Node(c, b, FlashStorage(RealFS("raft"), [1], (), b["flash_log_slots"], slot_size(b),
                              "raft", b["log_segment_bytes"]))
node.transport.poll = lambda ms: False
sys.modules.pop("mpraft_boot", None)  # as firmware/mpraft.py's boot() does once the node is built`);
const built = live() - base;
py(`t0 = time.ticks_ms()
while node.engine.core.role != 2 and time.ticks_diff(time.ticks_ms(), t0) < 5000:
    node.run_once()
if node.engine.core.role != 2:
    raise SystemExit("mem32: the single node did not become leader")
for i in range(16):
    node.engine.propose(b"\\x01")
    node.run_once()
cids = list(range(1, node.engine.core.log.last + 1))[-16:]
seq = [0] * 16
def load(n, k0):
    for k in range(k0, k0 + n):
        s = k % 16
        seq[s] += 1
        key = b"k%d" % (k % 64)
        val = b"v%d" % k
        node.engine.propose(struct.pack("<BIIBH", 2, cids[s], seq[s], len(key), len(val)) + key + val)
        node.run_once()`);
const samples = [];
const step = Math.floor(puts / 6);
for (let i = 0; i < 6; i++) {
  py(`load(${step}, ${i * step})`);
  samples.push(live() - base);
}
// Did the load import a lazy part? (It must not: that is what they are for.)
py('_m = json.dumps(sorted(k for k in sys.modules if k.startswith("mpraft_")))');
const imported = JSON.parse(mp.globals.get("_m"));
// What each lazy part weighs once imported (after the load, one at a time).
const lazy = {};
for (const n of parts) {
  const m = n.slice(0, -4), before = live();
  py(`import ${m}`);
  lazy[m] = live() - before;
}
py('st = node.status(); _s = json.dumps([st["applied"], st["n_snapshots"], st["keys"]])');
const s = JSON.parse(mp.globals.get("_s"));
console.log(JSON.stringify({ board: board.name, rom, code, node: built - code, samples,
  applied: s[0], snapshots: s[1], keys: s[2], imported, lazy }));
