"""Several client commands in one log entry: BatchMachine around a state machine.

A client with several sessions sends their next commands together as ONE
command, proposed as one entry and answered by one reply. Every node then
pays for one datagram, one MAC, one log slot, one flush share and one
append encoding per batch instead of per command; only the commands'
own execution stays per command (docs/profile.md has the figures).

Format (little-endian), strict: anything else is malformed::

    command  0x00 "B" version:B=1 count:B (1..255)  count x (len:H command)
    result   count:B  count x (len:H result)

A command byte 0x00 is invalid for every machine here (raftkv, raftapp
sessions: op 0 never decodes), so a batch cannot be mistaken for one.
A malformed batch, or one holding a REGISTER (its session id is the entry
index, which one entry cannot give twice), is refused whole by is_read, so
the proposer answers BAD_REQUEST. The commands inside are not decoded
there: a command the machine cannot decode gets its MALFORMED result, and
a read goes through the log like a write (linearizable, just slower than
ReadIndex). Per command in a result, len is the machine's result, or:
  REFUSED (0): a REGISTER, not executed (checked again at apply because the
    in-process API proposes without is_read);
  UNSENT (0xFFFF): executed, but the result did not fit in one reply; the
    client sends that command again alone (same session and seq) and gets
    its cached result (exactly-once is per session, as without batches).
The batch result fits MAX_RESULT bytes, so the reply fits one datagram.

Exactly-once: each command still carries its own session id and sequence
number and is checked against its own session; a resent batch finds its
commands in the session caches. One command per session per batch (a
session keeps one result).

Applying: the wrapped machine sees each command as an entry of the batch's
index. It guards replays with applied_index, which the engine may set
(docs/engine.md); this sets it back to index - 1 before each command.
"""
import struct

from raft.errors import DecodeError

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

VERSION = const(1)
MAX_COUNT = const(255)
# wire: MAX_PAYLOAD (1377) - RESP_HDR (8): a reply's room for a result.
MAX_RESULT = const(1369)
REFUSED = const(0)
UNSENT = const(0xFFFF)
_HDR = const(4)
_REGISTER = const(1)  # op 1 opens a session (raftkv, raftapp.session)


def is_batch(data):
    return len(data) >= 2 and data[0] == 0 and data[1] == 0x42


def check(data):
    """Number of commands in a well-formed batch; raises DecodeError otherwise."""
    n = len(data)
    if n < _HDR or not is_batch(data) or data[2] != VERSION:
        raise DecodeError("batch: bad header or version")
    count = data[3]
    p = _HDR
    k = 0
    while k < count and p + 2 <= n:
        ln = data[p] | data[p + 1] << 8
        if ln == 0:
            break
        p += 2 + ln
        k += 1
    if count == 0 or k != count or p != n:
        raise DecodeError("batch: %d commands do not fill %d bytes" % (count, n))
    return count


def encode_into(buf, cmds):  # mpraft: client-side
    """A batch of cmds (bytes each) into buf; returns its length."""
    if not 0 < len(cmds) <= MAX_COUNT:
        raise ValueError("batch: %d commands, 1..%d allowed" % (len(cmds), MAX_COUNT))
    buf[0] = 0
    buf[1] = 0x42
    buf[2] = VERSION
    buf[3] = len(cmds)
    p = _HDR
    for c in cmds:
        if not 0 < len(c) < UNSENT:
            raise ValueError("batch: command of %d bytes" % len(c))
        struct.pack_into("<H", buf, p, len(c))
        buf[p + 2:p + 2 + len(c)] = c
        p += 2 + len(c)
    return p


def decode_result(res):  # mpraft: client-side
    """[result bytes, REFUSED or UNSENT] per command; raises DecodeError."""
    n = len(res)
    if n < 1:
        raise DecodeError("batch: empty result")
    out = []
    p = 1
    for _ in range(res[0]):
        if p + 2 > n:
            raise DecodeError("batch: result truncated")
        ln = res[p] | res[p + 1] << 8
        p += 2
        if ln == UNSENT or ln == REFUSED:
            out.append(ln)
            continue
        if p + ln > n:
            raise DecodeError("batch: result truncated")
        out.append(bytes(res[p:p + ln]))
        p += ln
    if p != n:
        raise DecodeError("batch: %d trailing result bytes" % (n - p))
    return out


class BatchMachine:
    """The engine's state machine (docs/engine.md): batches here, the rest
    passed to `machine`."""

    def __init__(self, machine):  # mpraft: boot
        self.machine = machine
        # Allocated on the first batch: a board no client batches to keeps
        # the heap (memproof's margin is thin).
        self._out = None
        self.batches = 0
        self.refused = 0

    @property
    def applied_index(self):
        return self.machine.applied_index

    @applied_index.setter
    def applied_index(self, i):
        self.machine.applied_index = i

    def apply(self, index, data):
        if not is_batch(data):
            return self.machine.apply(index, data)
        m = self.machine
        if index <= m.applied_index:
            return m.apply(index, data)  # the machine's replay answer
        try:
            count = check(data)
        except DecodeError:
            # Only a proposer that skipped is_read can log this; all nodes alike.
            m.skip(index)
            return b"\x00"
        self.batches += 1
        mv = memoryview(data)
        out = self._out
        if out is None:
            out = self._out = bytearray(MAX_RESULT)
        out[0] = count
        q = 1
        p = _HDR
        for _ in range(count):
            ln = data[p] | data[p + 1] << 8
            q = self._one(index, mv[p + 2:p + 2 + ln], out, q)
            p += 2 + ln
        if m.applied_index < index:
            m.skip(index)
        return bytes(out[:q])

    def _one(self, index, cmd, out, q):
        m = self.machine
        # Only the op byte here: is_read decoded every command on the leader
        # already, and a second decode per command on every node is what a
        # batch saves elsewhere.
        if cmd[0] == _REGISTER:
            self.refused += 1
            res = None
        else:
            m.applied_index = index - 1
            res = m.apply(index, cmd)
        if res is None:
            out[q] = out[q + 1] = 0
            return q + 2
        ln = len(res)
        if q + 2 + ln > MAX_RESULT:
            struct.pack_into("<H", out, q, UNSENT)
            return q + 2
        struct.pack_into("<H", out, q, ln)
        out[q + 2:q + 2 + ln] = res
        return q + 2 + ln

    def skip(self, index):
        self.machine.skip(index)

    def is_read(self, data):
        """False for a batch; DecodeError for a malformed one or one that holds
        a REGISTER (the client gets BAD_REQUEST)."""
        if not is_batch(data):
            return self.machine.is_read(data)
        count = check(data)
        p = _HDR
        for _ in range(count):
            if data[p + 2] == _REGISTER:
                raise DecodeError("batch: a REGISTER cannot be batched")
            p += 2 + (data[p] | data[p + 1] << 8)
        return False

    def query(self, data):
        return self.machine.query(data)

    def snapshot_size(self):
        return self.machine.snapshot_size()

    def snapshot_into(self, buf):
        return self.machine.snapshot_into(buf)

    def restore(self, data):
        return self.machine.restore(data)

    def __len__(self):
        return len(self.machine)
