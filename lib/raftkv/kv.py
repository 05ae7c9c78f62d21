"""The replicated key-value state machine with exactly-once client sessions.

``apply`` is a pure function of (state, index, data): every replica applying
the same committed log reaches the same state and returns the same result
bytes, on CPython and MicroPython alike. Nothing here reads a clock, a random
source or dict iteration order (MicroPython dicts are unordered: every walk
that affects output is over sorted keys).

Order of checks in ``apply`` (each step that rejects leaves state untouched
apart from ``applied_index`` and counters):

1. index <= applied_index: already applied (replay after restore): counted
   in ``stale_applies``, returns None.
2. bytes that do not decode: MALFORMED.
3. REGISTER: open a session whose id is this entry's index.
4. key/value longer than max_key/max_value: TOO_LARGE (not cached, so the
   client may reuse the seq).
5. no session for the client id: SESSION_EXPIRED.
6. seq == last seq: the cached result, without applying again
   (Raft dissertation 6.3). seq < last (or 0): STALE_SEQ.
7. otherwise execute, cache the result as the session's last, return it.
   FULL (max_keys reached) is an execution outcome, so it is cached too.

Each client must keep at most one command in flight per session: only the
latest result is remembered.

Snapshot format (little-endian, deterministic byte for byte)::

    "RKV\\x01" applied:I nkeys:I nsessions:I
    nkeys    x  klen:B vlen:H key value                (ascending key)
    nsessions x cid:I last_seq:I activity:I rlen:H result   (ascending cid;
                                                       rlen 0 = no result yet)
    crc32:I over everything before it
"""
import binascii
import hashlib
import struct

from raft.errors import ConfigError, DecodeError
from raftkv import codec
from raftkv.codec import (CAS, DELETE, GET, PUT, REGISTER, OK, NOT_FOUND,
                          CAS_FAILED, FULL)

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_MAGIC = b"RKV\x01"
_SNAP_HDR = "<4sIII"
_SNAP_HDR_LEN = const(16)
_KEY_REC = "<BH"
_KEY_REC_LEN = const(3)
_SES_REC = "<IIIH"
_SES_REC_LEN = const(14)
_MAX_VALUE_LIMIT = const(65000)  # keeps a cached result (3 + value) in a u16

# Session record fields (a list, mutated in place).
_SEQ = const(0)  # last applied seq; 0 = none yet. Invariant: 0 iff _RES is None
_ACT = const(1)  # log index of the last command seen from this client
_RES = const(2)  # encoded result of the command at _SEQ

# Constant results: bytes literals cost no heap at run time.
_R_NOT_FOUND = b"\x01"
_R_SESSION_EXPIRED = b"\x03"
_R_STALE_SEQ = b"\x04"
_R_TOO_LARGE = b"\x05"
_R_MALFORMED = b"\x06"
_R_OK = b"\x00"
_R_FULL = b"\x07"


class KVStateMachine:
    def __init__(self, max_key=64, max_value=256, max_keys=256, max_sessions=64):
        if not 0 < max_key <= codec.WIRE_MAX_KEY:
            raise ConfigError("raftkv: max_key %r must be 1..%d"
                              % (max_key, codec.WIRE_MAX_KEY))
        if not 0 <= max_value <= _MAX_VALUE_LIMIT:
            raise ConfigError("raftkv: max_value %r must be 0..%d"
                              % (max_value, _MAX_VALUE_LIMIT))
        if max_keys < 1 or max_sessions < 1:
            raise ConfigError("raftkv: max_keys and max_sessions must be >= 1")
        self.max_key = max_key
        self.max_value = max_value
        self.max_keys = max_keys
        self.max_sessions = max_sessions
        # Invariant: every key <= max_key bytes, every value <= max_value,
        # len(_store) <= max_keys.
        self._store = {}
        # cid -> [last_seq, activity, result]. Invariant: len <= max_sessions.
        self._sessions = {}
        # Invariant: every entry with index <= applied_index is reflected.
        self.applied_index = 0
        # Largest record the snapshot writer emits at once.
        self._scratch = bytearray(max(_SNAP_HDR_LEN,
                                      _KEY_REC_LEN + max_key + max_value,
                                      _SES_REC_LEN + codec.max_result_len(max_value)))
        # Counters (not part of the replicated state, not in the snapshot).
        self.malformed = 0
        self.too_large = 0
        self.stale_applies = 0
        self.duplicates = 0
        self.evictions = 0

    # -- apply -------------------------------------------------------------
    def apply(self, index, data):
        """Apply the committed entry at ``index``; return the result bytes."""
        if index <= self.applied_index:
            self.stale_applies += 1
            return None
        self.applied_index = index
        try:
            op, cid, seq, key, value, old = codec.decode_command(data)
        except DecodeError:
            self.malformed += 1
            return _R_MALFORMED
        if op == REGISTER:
            return self._register(index)
        mv = self.max_value
        if (len(key) > self.max_key or (value is not None and len(value) > mv)
                or (old is not None and len(old) > mv)):
            self.too_large += 1
            return _R_TOO_LARGE
        s = self._sessions.get(cid)
        if s is None:
            return _R_SESSION_EXPIRED
        s[_ACT] = index
        last = s[_SEQ]
        if seq == last and last:
            self.duplicates += 1
            return s[_RES]
        if seq <= last:
            return _R_STALE_SEQ
        res = self._execute(op, key, value, old)
        s[_SEQ] = seq
        s[_RES] = res
        return res

    def skip(self, index):
        """Mark a non-KV entry (leader no-op, config change) as applied."""
        if index > self.applied_index:
            self.applied_index = index

    def _register(self, index):
        sessions = self._sessions
        if len(sessions) >= self.max_sessions:
            # Least recently active, ties by lowest id: depends only on the log.
            victim = None
            vact = 0
            for cid in sessions:
                act = sessions[cid][_ACT]
                if victim is None or act < vact or (act == vact and cid < victim):
                    victim = cid
                    vact = act
            del sessions[victim]
            self.evictions += 1
        sessions[index] = [0, index, None]
        return codec.encode_result(OK, codec.encode_client_id(index))

    def _execute(self, op, key, value, old):
        store = self._store
        if op == PUT:
            if key not in store and len(store) >= self.max_keys:
                return _R_FULL
            store[key] = value
            return _R_OK
        if op == GET:
            cur = store.get(key)
            if cur is None:
                return _R_NOT_FOUND
            return codec.encode_result(OK, cur)
        if op == DELETE:
            if key not in store:
                return _R_NOT_FOUND
            del store[key]
            return _R_OK
        # CAS (decode_command admits no other op)
        cur = store.get(key)
        if cur != old:
            return codec.encode_result(CAS_FAILED, cur)
        if cur is None and len(store) >= self.max_keys:
            return _R_FULL
        store[key] = value
        return _R_OK

    # -- reads (the engine's state machine interface, docs/engine.md) --------
    def is_read(self, data):
        """True for a GET (served by ReadIndex, never logged); raises
        DecodeError for bytes that are no command."""
        return codec.decode_command(data)[0] == GET

    def query(self, data):
        """The result of a GET command against the local state. Linearizable
        only once the engine's ReadIndex round is applied."""
        op, _, _, key, _, _ = codec.decode_command(data)
        if op != GET:
            raise DecodeError("raftkv: query of op %d, only GET reads" % op)
        v = self._store.get(bytes(key))
        if v is None:
            return _R_NOT_FOUND
        return codec.encode_result(OK, v)

    def get_local(self, key):
        """Value at key or None. Linearizable only after ReadIndex has caught up."""
        if not isinstance(key, bytes):
            key = bytes(key)
        return self._store.get(key)

    def __len__(self):
        return len(self._store)

    def session_count(self):  # mpraft: host-only
        return len(self._sessions)

    def stats(self):
        return {"applied": self.applied_index, "keys": len(self._store),
                "sessions": len(self._sessions), "malformed": self.malformed,
                "too_large": self.too_large, "stale_applies": self.stale_applies,
                "duplicates": self.duplicates, "evictions": self.evictions}

    # -- snapshot ----------------------------------------------------------
    def snapshot_size(self):
        n = _SNAP_HDR_LEN + 4
        store = self._store
        for k in store:
            n += _KEY_REC_LEN + len(k) + len(store[k])
        sessions = self._sessions
        for cid in sessions:
            r = sessions[cid][_RES]
            n += _SES_REC_LEN + (0 if r is None else len(r))
        return n

    def _dump(self, sink):
        """Feed the snapshot, record by record, to sink(buf, n); return crc32."""
        s = self._scratch
        store = self._store
        sessions = self._sessions
        struct.pack_into(_SNAP_HDR, s, 0, _MAGIC, self.applied_index,
                         len(store), len(sessions))
        crc = sink(s, _SNAP_HDR_LEN, 0)
        for k in sorted(store):
            v = store[k]
            kl = len(k)
            vl = len(v)
            struct.pack_into(_KEY_REC, s, 0, kl, vl)
            p = _KEY_REC_LEN
            s[p:p + kl] = k
            p += kl
            s[p:p + vl] = v
            crc = sink(s, p + vl, crc)
        for cid in sorted(sessions):
            rec = sessions[cid]
            r = rec[_RES]
            rl = 0 if r is None else len(r)
            struct.pack_into(_SES_REC, s, 0, cid, rec[_SEQ], rec[_ACT], rl)
            if rl:
                s[_SES_REC_LEN:_SES_REC_LEN + rl] = r
            crc = sink(s, _SES_REC_LEN + rl, crc)
        return crc

    def snapshot_into(self, buf):
        """Write the snapshot into buf (at least snapshot_size() bytes); return its length."""
        need = self.snapshot_size()
        if len(buf) < need:
            raise ValueError("raftkv: snapshot needs %d bytes, buffer has %d"
                             % (need, len(buf)))
        out = memoryview(buf)
        pos = [0]

        def sink(src, n, crc):
            p = pos[0]
            out[p:p + n] = memoryview(src)[:n]
            pos[0] = p + n
            return binascii.crc32(out[p:p + n], crc)

        crc = self._dump(sink)
        struct.pack_into("<I", buf, pos[0], crc & 0xFFFFFFFF)
        return pos[0] + 4

    def snapshot_write(self, stream):  # mpraft: host-only
        """Stream the snapshot to stream.write (e.g. a flash file) record by
        record, so a board never holds it whole; return its length."""
        total = [0]

        def sink(src, n, crc):
            chunk = memoryview(src)[:n]
            stream.write(chunk)
            total[0] += n
            return binascii.crc32(chunk, crc)

        crc = self._dump(sink)
        stream.write(struct.pack("<I", crc & 0xFFFFFFFF))
        return total[0] + 4

    def snapshot(self):
        """The whole store and session table as bytes (deterministic)."""
        buf = bytearray(self.snapshot_size())
        self.snapshot_into(buf)
        return bytes(buf)

    def digest(self):
        """16 hex digits of sha256 over the snapshot, without materialising it."""
        h = hashlib.sha256()

        def sink(src, n, crc):
            chunk = memoryview(src)[:n]
            h.update(chunk)
            return binascii.crc32(chunk, crc)

        crc = self._dump(sink)
        h.update(struct.pack("<I", crc & 0xFFFFFFFF))
        return binascii.hexlify(h.digest()[:8]).decode()

    def restore(self, data):
        """Replace the state with a snapshot. DecodeError leaves the old state."""
        n = len(data)
        if n < _SNAP_HDR_LEN + 4:
            raise DecodeError("raftkv: snapshot of %d bytes is truncated" % n)
        mv = memoryview(data)
        want = struct.unpack_from("<I", data, n - 4)[0]
        if binascii.crc32(mv[:n - 4]) & 0xFFFFFFFF != want:
            raise DecodeError("raftkv: snapshot checksum mismatch")
        magic, applied, nkeys, nses = struct.unpack_from(_SNAP_HDR, data, 0)
        if magic != _MAGIC:
            raise DecodeError("raftkv: snapshot has bad magic/version %r" % (magic,))
        if nkeys > self.max_keys or nses > self.max_sessions:
            raise DecodeError("raftkv: snapshot has %d keys/%d sessions, limits are %d/%d"
                              % (nkeys, nses, self.max_keys, self.max_sessions))
        end = n - 4
        p = _SNAP_HDR_LEN
        store = {}
        prev = None
        for _ in range(nkeys):
            if p + _KEY_REC_LEN > end:
                raise DecodeError("raftkv: snapshot truncated in key record")
            kl, vl = struct.unpack_from(_KEY_REC, data, p)
            p += _KEY_REC_LEN
            if kl > self.max_key or vl > self.max_value or p + kl + vl > end:
                raise DecodeError("raftkv: snapshot key record too large or truncated")
            k = bytes(mv[p:p + kl])
            p += kl
            if prev is not None and k <= prev:
                raise DecodeError("raftkv: snapshot keys not strictly ascending")
            store[k] = bytes(mv[p:p + vl])
            p += vl
            prev = k
        sessions = {}
        prev = 0
        for _ in range(nses):
            if p + _SES_REC_LEN > end:
                raise DecodeError("raftkv: snapshot truncated in session record")
            cid, seq, act, rl = struct.unpack_from(_SES_REC, data, p)
            p += _SES_REC_LEN
            if cid <= prev or act < cid or act > applied or p + rl > end:
                raise DecodeError("raftkv: snapshot session %d is inconsistent" % cid)
            if (seq == 0) != (rl == 0) or rl > codec.max_result_len(self.max_value):
                raise DecodeError("raftkv: snapshot session %d result is inconsistent" % cid)
            res = None
            if rl:
                res = bytes(mv[p:p + rl])
                codec.decode_result(res)  # raises DecodeError if not a result
                p += rl
            sessions[cid] = [seq, act, res]
            prev = cid
        if p != end:
            raise DecodeError("raftkv: snapshot has %d trailing bytes" % (end - p))
        self._store = store
        self._sessions = sessions
        self.applied_index = applied
