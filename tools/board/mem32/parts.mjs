// What each firmware module costs in RAM on a 32-bit MicroPython, loaded from .mpy.
//
//   python3 tools/board/build.py esp32 --no-merge --no-budget --out build/parts
//   node tools/board/mem32/parts.mjs build/parts
//
// Imports the modules of a --no-merge build one by one, dependencies first,
// in the webassembly port (32-bit, as mem32.mjs), and prints the live heap
// each import added: that module's bytecode, constants and globals (its
// dependencies were already loaded). The merged build stores shared names
// once, so the sum here is a little above mem32's "code"; the ranking is
// what tells which parts are worth loading lazily. One JSON line per module,
// then the total.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "fs";
import path from "path";

const [build] = process.argv.slice(2);
if (!build || !fs.existsSync(path.join(build, "lib"))) {
  console.log("usage: node parts.mjs BUILD_DIR   (a --no-merge build, with lib/)");
  process.exit(2);
}
const mp = await loadMicroPython({ stdout: (l) => console.log(l), stderr: (l) => console.log(l) });
function copy(src, dst) {
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name), d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) { mp.FS.mkdirTree(d); copy(s, d); }
    else mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
mp.FS.mkdirTree("/flash/lib");
copy(path.join(build, "lib"), "/flash/lib");
mp.FS.writeFile("/flash/lib/socket.py", "AF_INET = 2\nSOCK_DGRAM = 2\nMSG_PEEK = 2\n");
const py = (code) => mp.runPython(code);
const live = () => { py("gc.collect()"); py("_l = gc.mem_alloc()"); return mp.globals.get("_l"); };
py("import sys, gc, os, struct, time, json, binascii, hashlib, select");
py('sys.path[:0] = ["/flash/lib"]; import socket');
const order = [
  "raft.errors", "raft.roles", "raft.quorum", "raft.config", "raft.storage", "raft.msg",
  "raft.progress", "raft.confchange", "raft.snapblob", "raft.events", "raft.log",
  "raft.readonly", "raft.membership", "raft.snapshot", "raft.core", "raft.rawnode",
  "raftio.fs", "raftio.hardstate", "raftio.logfile", "raftio.snapfile", "raftio.storage",
  "raftio.clock", "raftio.auth", "raftio.frame", "raftio.wire", "raftio.udp",
  "raftio.engine", "raftio.server", "raftio.admin", "raftkv.codec", "raftapp.session", "raftkv.kv",
  "raftio.batch", "raftio.node",
  "raftio.station"];
let total = 0;
for (const m of order) {
  if (!fs.existsSync(path.join(build, "lib", m.replace(".", "/") + ".mpy"))) continue;
  const before = live();
  py(`import ${m}`);
  const cost = live() - before;
  total += cost;
  console.log(JSON.stringify({ module: m, bytes: cost }));
}
console.log(JSON.stringify({ total }));
