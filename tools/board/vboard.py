"""A virtual MicroPython board: a pty with the unix port behind it, a folder as its flash.

    python3 tools/board/vboard.py --flash DIR [--link PATH] [--heap 100K] [--seconds N]
                            [--console FILE] [--romfs SIZE] [--max-resets N]

Prints "vboard: PTY" (and makes PATH a symlink to it), then relays bytes
between that pty and a MicroPython unix-port VM running on a second pty, so
`mpremote connect PTY exec|cp|ls|run|resume|soft-reset ...` works as against
a board over USB serial:

- the VM mounts DIR at / with vfs.VfsPosix, cds there, puts /lib on sys.path,
  runs /boot.py and /main.py at power-up (like a board) and then its REPL;
- its pty has ISIG on and ECHO and OPOST off, so Ctrl-C during main.py raises
  KeyboardInterrupt and the raw-REPL bytes pass unchanged;
- Ctrl-C interrupts code run from the raw REPL too, as a board's UART does
  (it raises KeyboardInterrupt whenever code runs, whatever the terminal
  mode): the unix port runs raw-paste code (mpremote exec) with its terminal
  still raw, so ^C would be a byte nobody reads and the board unreachable
  for good. While the VM runs code (it catches SIGINT then) and its terminal
  has ISIG off, vboard turns the ^C byte into SIGINT;
- the unix port ends its process on Ctrl-D (soft reset); vboard then prints
  "MPY: soft reboot" and starts a new VM. After a soft reset from the raw
  REPL, the new VM skips main.py and re-enters the raw REPL (as a board does);
  from the friendly REPL it runs boot.py and main.py again;
- machine.reset() (what `mpremote reset` calls, and firmware/mpraft.py on a
  fatal error; the unix port lacks it) is a hard reset: a new VM that runs
  boot.py and main.py; vboard prints "vboard: hard reset" on its stdout.
  A reset loop shows and ends: after --max-resets (default 10) hard resets
  in a row, each within 30 s of its boot, vboard prints "vboard: reset
  loop: ..." and exits with status 3 (a real board would loop for ever);
- --console FILE also appends everything the VM prints to FILE, as a serial
  logger on a board's UART would, whether or not anyone is connected;
- --romfs SIZE gives the board a ROMFS partition of SIZE bytes (MicroPython
  1.25+ with MICROPY_VFS_ROM), kept in the file DIR.romfs beside the flash
  folder: `vfs.rom_ioctl` serves `mpremote romfs query|deploy`, and at
  power-up a valid image is mounted at /rom with "/rom" and "/rom/lib" on
  sys.path right after "", as a board does. The unix port cannot map flash,
  so the partition is a bytearray in the VM and -X heapsize is raised by
  exactly its heap blocks: --heap stays the budget for everything else.

The heap is capped at --heap (a board's budget, e.g. 100K for esp32). Stops
after --seconds (default: until killed). Host-only tool (CPython, Linux).

    python3 tools/board/vboard.py flash --build build/BOARD --port PORT --node N --cluster FILE
                                  [--ssid S --password P] [--force]

is what `make flash` runs, for real boards and virtual ones alike: it writes
node N's file from cluster.json (validated against the build's board.json),
and in one mpremote session creates the folders, copies node.json, the build
(mpraft.mpy or lib/ .mpy files, board.json, boot.py, main.py last) printing one
line per file, removes .py files that would shadow a copied .mpy, and resets.
It refuses (one line with the numbers, exit 2, nothing copied) a board
that cannot hold the cluster's state-machine limits (lib/raftkv/limits.py:
its max_entry_bytes, and the memory model against its heap budget);
--force flashes it anyway, with the node file's "capacity" saying what it
holds, so the node stops applying and reports instead of failing.
"""
import os
import select
import shutil
import signal
import subprocess
import sys
import termios
import time
import tty

sys.path.insert(0, __file__[:__file__.rfind("/") + 1] + "..")  # tools/, for paths.py (see there)
import paths  # noqa: E402
paths.setup()

ROOT = paths.ROOT
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
RAW_BANNER = b"raw REPL; CTRL-B to exit"
_HARD_RESET = 86  # the VM's exit status for machine.reset() (or SIGUSR1, see STARTUP)
_QUICK_S = 30     # a hard reset this soon after its boot counts toward a reset loop

STARTUP = """import vfs, os, sys
vfs.mount(vfs.VfsPosix(%r), "/")
os.chdir("/")
sys.path[:] = ["", "/lib", ".frozen"]
del vfs, os
import machine as _vboard_m
class _VboardMachine:
    # mpremote's `reset` and mpraft's fatal errors call machine.reset(),
    # which the unix port lacks: end the VM at once, as a board resets
    # wherever it is (a SystemExit would be caught: main.py's, by the boot
    # below), with a signal vboard knows (a hard reset runs main.py).
    def __getattr__(self, name):
        return getattr(_vboard_m, name)
    def reset(self):
        import os
        os.system("kill -USR1 $PPID")
        sys.exit(%d)
sys.modules["machine"] = _VboardMachine()
def _vboard_boot(names):
    import os
    for f in names:
        try:
            os.stat(f)
        except OSError:
            continue
        try:
            exec(open(f).read(), globals())
        except BaseException as e:
            sys.print_exception(e)
_vboard_boot(%r)
del _vboard_boot
"""


# A board with a ROMFS partition: rom_ioctl as MicroPython's ports implement
# it (1: partitions, 2: the partition's memory, 3: erase, 4: write, 5: done,
# 6: block size; negative errno otherwise), on a bytearray saved to PART.
# Runs first: the partition file lies outside the flash folder mounted at /,
# so it is opened while host paths still work, and kept open.
# _rom_heap: what the partition's bytearray took (romfs_heap() says what it
# should; tools/board/memproof.py checks the two agree).
# The names exist before the measurement, so globals growing is not counted.
ROMFS_OPEN = """import gc
_rom = None
_rom_heap = 0
gc.collect()
_rom_heap = gc.mem_alloc()
_rom = bytearray(%d)
gc.collect()
_rom_heap = gc.mem_alloc() - _rom_heap
_part = open(%r, "r+b")
_part.readinto(_rom)
"""
ROMFS = """import vfs as _vfs
class _VboardVfs:
    def __getattr__(self, name):
        return getattr(_vfs, name)
    def rom_ioctl(self, op, *a):
        if op == 1:
            return 1
        if not a or a[0] != 0:
            return -19
        if op == 2:
            return memoryview(_rom)
        if op == 3:
            return 4096
        if op == 4:
            _rom[a[1]:a[1] + len(a[2])] = a[2]
            return 0
        if op == 5:
            _part.seek(0)
            _part.write(_rom)
            _part.flush()
            return 0
        if op == 6:
            return 4096
        return -22
sys.modules["vfs"] = _VboardVfs()
if _rom[:3] == b"\\xd2\\xcd\\x31":
    _vfs.mount(_vfs.VfsRom(memoryview(_rom)), "/rom")
    sys.path[1:1] = ["/rom", "/rom/lib"]
"""


def romfs_heap(size):
    """Heap blocks of the partition's bytearray on the 64-bit unix port."""
    return 32 + (size + 31) // 32 * 32


_BOOT_ANCHOR = "import machine as _vboard_m\n"


def startup(flash, run_main, heap, romfs=0, before_boot=""):
    """(script, heapsize in bytes) for a VM with flash mounted at / that runs
    boot.py (and main.py if run_main) like a board at power-up, with a ROMFS
    partition of romfs bytes in the file flash + ".romfs" (created erased
    unless it exists with that size) and heap the budget for everything
    else. before_boot: code run just before boot.py."""
    text = STARTUP % (flash, _HARD_RESET, ["boot.py", "main.py"] if run_main else ["boot.py"])
    if romfs:
        part = flash + ".romfs"
        if not os.path.exists(part) or os.path.getsize(part) != romfs:
            with open(part, "wb") as f:  # an erased partition
                f.write(b"\xff" * romfs)
        text = ROMFS_OPEN % (romfs, part) + text.replace(_BOOT_ANCHOR, ROMFS + _BOOT_ANCHOR, 1)
        heap += romfs_heap(romfs)
    return text.replace(_BOOT_ANCHOR, before_boot + _BOOT_ANCHOR, 1), heap


def _preexec():
    # The VM's pty becomes its controlling terminal, so ^C is a SIGINT.
    os.setsid()
    import fcntl
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class VBoard:
    def __init__(self, flash, heap="100K", micropython=MICROPYTHON, console=None, romfs=0,
                 max_resets=10):
        self.console = open(console, "ab") if console else None
        self.romfs = romfs
        self.flash = os.path.abspath(flash)
        os.makedirs(self.flash, exist_ok=True)
        self.heap = heap
        self.micropython = micropython
        self.host, self.host_slave = os.openpty()
        tty.setraw(self.host_slave)
        self.path = os.ttyname(self.host_slave)
        self.proc = None
        self.vm = None
        self.raw = False
        self.tail = b""
        self.boots = 0
        self.resets = 0          # hard resets (machine.reset)
        self.max_resets = max_resets
        self.quick_resets = 0    # hard resets in a row within _QUICK_S of their boot
        self.booted = 0.0        # time.time() of the last boot
        self.looping = False     # stopped by max_resets
        self.interrupts = 0  # ^C turned into SIGINT (see _interrupt)
        self.script = "/tmp/vboard-%d-%d.py" % (os.getpid(), self.host_slave)

    def start_vm(self, run_main):
        m, s = os.openpty()
        a = termios.tcgetattr(s)
        a[1] &= ~termios.OPOST
        a[3] &= ~(termios.ECHO | termios.ECHONL)
        termios.tcsetattr(s, termios.TCSANOW, a)
        script = self.script
        text, heap = startup(self.flash, run_main, heap_bytes(self.heap), self.romfs)
        with open(script, "w") as f:
            f.write(text)
        self.proc = subprocess.Popen(
            [self.micropython, "-X", "heapsize=%d" % heap, "-i", script],
            stdin=s, stdout=s, stderr=s, preexec_fn=_preexec, close_fds=True)
        os.close(s)
        self.vm = m
        self.boots += 1
        self.booted = time.time()
        if not run_main:
            os.write(m, b"\r\x01")

    def _interrupt(self, data):
        # A board's UART raises KeyboardInterrupt on ^C while code runs (the
        # VM catches SIGINT exactly then) and drops the byte; with ISIG on the
        # kernel already does that, and at a REPL prompt ^C is a key.
        try:
            if termios.tcgetattr(self.vm)[3] & termios.ISIG:
                return data
            with open("/proc/%d/status" % self.proc.pid) as f:
                caught = [ln for ln in f if ln.startswith("SigCgt:")]
        except (OSError, termios.error):
            return data
        if not caught or not int(caught[0].split()[1], 16) & (1 << (signal.SIGINT - 1)):
            return data
        os.kill(self.proc.pid, signal.SIGINT)
        self.interrupts += 1
        return data.replace(b"\x03", b"")

    def _from_vm(self):
        try:
            data = os.read(self.vm, 4096)
        except OSError:
            return False
        if not data:
            return False
        t = self.tail + data
        if RAW_BANNER in t:
            self.raw = True
        self.tail = t[-len(RAW_BANNER):]
        if self.console:
            self.console.write(data)
            self.console.flush()
        os.write(self.host, data)
        return True

    def _restart(self):
        # Drain what the old VM printed, then reboot it like a board.
        while self.vm is not None:
            r = select.select([self.vm], [], [], 0.05)[0]
            if not r or not self._from_vm():
                break
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        os.close(self.vm)
        self.vm = None
        if self.proc.returncode in (_HARD_RESET, -signal.SIGUSR1):
            self.raw = False
            self.resets += 1
            quick = time.time() - self.booted < _QUICK_S
            self.quick_resets = self.quick_resets + 1 if quick else 0
            print("vboard: hard reset", flush=True)
            if self.max_resets and self.quick_resets >= self.max_resets:
                print("vboard: reset loop: %d hard resets in a row, each within %d s of its "
                      "boot; board stopped" % (self.quick_resets, _QUICK_S), flush=True)
                self.looping = True
                return
        else:
            os.write(self.host, b"MPY: soft reboot\r\n")
        self.start_vm(run_main=not self.raw)

    def serve(self, seconds=-1):
        self.start_vm(run_main=True)
        end = time.time() + seconds if seconds >= 0 else None
        try:
            while end is None or time.time() < end:
                r = select.select([self.host, self.vm], [], [], 0.1)[0]
                if self.vm in r and not self._from_vm() and self.proc.poll() is None:
                    time.sleep(0.01)
                if self.host in r:
                    data = os.read(self.host, 4096)
                    if b"\x02" in data:
                        self.raw = False
                    if b"\x01" in data:
                        self.raw = True
                    if b"\x03" in data:
                        data = self._interrupt(data)
                    try:
                        os.write(self.vm, data)
                    except OSError:
                        pass
                if self.proc.poll() is not None:
                    self._restart()
                    if self.looping:
                        break
        finally:
            self.close()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.console:
            self.console.close()
            self.console = None
        for fd in (self.vm, self.host, self.host_slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.vm = None
        try:
            os.remove(self.script)
        except OSError:
            pass


# Runs on the board after the copy: a .py next to its .mpy would be imported
# instead of it (MicroPython prefers .py), so stale sources are removed.
STALE = """import os
def _w(d):
    for n in os.listdir(d or "/"):
        p = d + "/" + n
        if os.stat(p)[0] & 0x4000:
            _w(p)
        elif n[-3:] == ".py" and n[:-3] + ".mpy" in os.listdir(d or "/"):
            os.remove(p)
            print("removed stale", p)
_w("")
"""

MKDIRS = """import os
for d in %r:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""


def node_config(cluster_path, node_id, board, ssid=None, password="", force=False):
    """The node file for node_id of a cluster.json (cluster.py's format),
    validated against the board; raises raft.errors.ConfigError, also when
    the board cannot hold the cluster's limits (unless force: then the file
    says what it can hold, "capacity"). Returns (node file, refusal or None)."""
    import json
    from raft.errors import ConfigError
    from raftio.board import validate_node_config
    from raftkv import limits
    with open(cluster_path) as f:
        cl = json.load(f)
    cfg = {"node_id": node_id, "cluster_id": cl["cluster_id"], "key": cl["key"],
           "peers": cl["nodes"]}
    lim = cl.get("limits")
    why = None
    if lim is not None:
        cfg["limits"] = lim = limits.validate(lim, "cluster: limits")
        why = limits.refusal(lim, board)
        if why and not force:
            raise ConfigError(why + " (--force / FORCE=1 flashes it anyway)")
        if why:
            cfg["capacity"] = limits.fit(board, lim)
    if "incs" in cl:
        # The founders' incarnations (docs/incarnation.md); a founder never
        # provisioned adopts its own at first boot.
        cfg["incs"] = cl["incs"]
        if str(node_id) in cl["incs"] and node_id not in cl.get("provisioned", ()):
            cfg["inc"] = cl["incs"][str(node_id)]
    if ssid:
        cfg["wifi"] = {"ssid": ssid, "password": password}
    return validate_node_config(cfg, board), why


# With ROMFS: the image's modules must not also be on the file system, where
# they would shadow /rom ("" comes first on sys.path).
UNSHADOW = """import os
for p in %r:
    for q in (p, p[:-4] + ".py"):
        try:
            os.remove(q)
            print("removed shadowing", q)
        except OSError:
            pass
"""


def flash_command(build_dir, port, node_json, mpremote=None, romfs_dir=None):
    """One mpremote command line (commands chained with +) that copies a
    board build and a node file, removes stale .py and resets the board.
    mpremote prints one `cp` line per file. romfs_dir: a folder to fill with
    the build's .mpy files, which go into the board's ROMFS partition
    (`mpremote romfs deploy`) instead of its file system."""
    files = []
    rom = []
    for dirpath, dirnames, filenames in os.walk(build_dir):
        dirnames.sort()
        for n in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, n), build_dir)
            if romfs_dir and n.endswith(".mpy"):
                rom.append(rel)
            elif rel != "node.json":
                files.append(rel)
    # main.py last: a board reset mid-copy does not start a half-copied node.
    files.sort(key=lambda r: (r == "main.py", r.count("/") == 0, r))
    dirs = sorted({"/" + os.path.dirname(r) for r in files if "/" in r})
    dirs = sorted({"/".join(d.split("/")[:i + 1]) for d in dirs
                   for i in range(1, d.count("/") + 1)})
    cmd = [mpremote or os.path.join(ROOT, ".venv", "bin", "mpremote"), "connect", port]
    if rom:
        for r in rom:
            os.makedirs(os.path.dirname(os.path.join(romfs_dir, r)), exist_ok=True)
            shutil.copyfile(os.path.join(build_dir, r), os.path.join(romfs_dir, r))
        cmd += ["romfs", "deploy", romfs_dir, "+", "exec", UNSHADOW % ["/" + r for r in rom],
                "+"]
    cmd += ["exec", MKDIRS % dirs]
    cmd += ["+", "fs", "cp", node_json, ":node.json"]
    for r in files:
        cmd += ["+", "fs", "cp", os.path.join(build_dir, r), ":" + r]
    cmd += ["+", "exec", STALE, "+", "reset"]
    return cmd


def flash(argv):
    """flash --build DIR --port PORT --node N --cluster FILE [--ssid S --password P] [--romfs]
              [--force]"""
    import json
    opts = {"--build": None, "--port": None, "--node": None, "--cluster": None,
            "--ssid": None, "--password": ""}
    romfs = "--romfs" in argv
    force = "--force" in argv
    argv = [a for a in argv if a not in ("--romfs", "--force")]
    i = 0
    while i < len(argv):
        if argv[i] not in opts or i + 1 >= len(argv):
            opts["--build"] = None
            break
        opts[argv[i]] = argv[i + 1]
        i += 2
    if None in (opts["--build"], opts["--port"], opts["--node"], opts["--cluster"]):
        print("usage: vboard.py " + flash.__doc__)
        return 2
    with open(os.path.join(opts["--build"], "board.json")) as f:
        board = json.load(f)
    try:
        cfg, why = node_config(opts["--cluster"], int(opts["--node"]), board, opts["--ssid"],
                               opts["--password"], force)
    except Exception as e:  # ConfigError, a bad --node, a missing file
        print("flash: %s" % e)
        return 2
    if why:
        c = cfg["capacity"]
        print("flash: --force: %s; the node holds %d keys/%d sessions and stops applying past"
              " them (status state)" % (why, c["max_keys"], c["max_sessions"]))
    import tempfile
    fd, path = tempfile.mkstemp(prefix="node%d-" % cfg["node_id"], suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)
    romfs_dir = tempfile.mkdtemp(prefix="mpraft-romfs-") if romfs else None
    cmd = flash_command(opts["--build"], opts["--port"], path, romfs_dir=romfs_dir)
    print("flash: %s node %d -> %s (%d files%s)" % (
        board["name"], cfg["node_id"], opts["--port"], cmd.count("cp") - 1,
        "; firmware to the ROMFS partition" if romfs else ""))
    try:
        r = subprocess.run(cmd, timeout=600)
    except subprocess.TimeoutExpired:
        print("flash: mpremote timed out")
        return 1
    finally:
        os.remove(path)
        if romfs_dir:
            shutil.rmtree(romfs_dir, ignore_errors=True)
    # A founder flashed for the first time adopts the incarnation the
    # cluster file binds it to ("inc" in its node.json); flashed again it
    # keeps what its flash holds, and a blank flash makes a new one.
    if r.returncode == 0 and "inc" in cfg:
        _provisioned(opts["--cluster"], cfg["node_id"])
    return r.returncode


def _provisioned(cluster_path, nid):
    import fcntl
    import json
    # Boards are flashed in parallel: one read-modify-write at a time.
    with open(cluster_path + ".lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        with open(cluster_path) as f:
            cl = json.load(f)
        cl.setdefault("provisioned", []).append(nid)
        with open(cluster_path + ".tmp", "w") as f:
            json.dump(cl, f, indent=1)
        os.replace(cluster_path + ".tmp", cluster_path)


def heap_bytes(text):
    """'100K' / '2M' / '65536' -> bytes; None if malformed."""
    t = str(text).strip().upper()
    mult = 1
    if t.endswith("K"):
        mult, t = 1024, t[:-1]
    elif t.endswith("M"):
        mult, t = 1024 * 1024, t[:-1]
    return int(t) * mult if t.isdigit() and int(t) > 0 else None


def main(argv):
    if argv[:1] == ["flash"]:
        return flash(argv[1:])
    opts = {"--flash": None, "--link": None, "--heap": "100K", "--seconds": "-1",
            "--console": None, "--romfs": "0", "--max-resets": "10"}
    i = 0
    while i < len(argv):
        if argv[i] not in opts or i + 1 >= len(argv):
            print(__doc__.split("\n\n")[1])
            return 2
        opts[argv[i]] = argv[i + 1]
        i += 2
    romfs = heap_bytes(opts["--romfs"]) if opts["--romfs"] != "0" else 0
    if (opts["--flash"] is None or heap_bytes(opts["--heap"]) is None or romfs is None
            or not opts["--max-resets"].isdigit()):
        print(__doc__.split("\n\n")[1])
        return 2
    vb = VBoard(opts["--flash"], opts["--heap"], console=opts["--console"], romfs=romfs,
                max_resets=int(opts["--max-resets"]))
    if opts["--link"]:
        try:
            os.remove(opts["--link"])
        except OSError:
            pass
        os.symlink(vb.path, opts["--link"])
    print("vboard: %s" % vb.path, flush=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        vb.serve(float(opts["--seconds"]))
    except KeyboardInterrupt:
        pass
    return 3 if vb.looping else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
