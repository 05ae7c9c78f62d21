"""The replicated key-value store: an application machine (docs/apps.md)
under the generic exactly-once session layer (raftapp.session).

``KVStore`` executes get, put, delete and compare-and-swap; sessions,
duplicates, eviction and the snapshot framing are the session layer's.
``KVStateMachine`` is the two composed, with the constructor and attributes
the node, the simulator and the tests use.

``apply`` is a pure function of (state, command): nothing here reads a
clock, a random source or dict iteration order (MicroPython dicts are
unordered: every walk that affects output is over sorted keys).

Order (after the session layer's checks, raftapp/session.py): ``check``
refuses a key or value longer than max_key/max_value with TOO_LARGE (not
cached, so the client may reuse the seq); ``apply`` executes. FULL (max_keys
reached) is an execution outcome, so it is cached like any result.

Limits (max_key, max_value, max_keys) are replicated: the session layer
writes ``limits()`` into the snapshot header and ``restore`` adopts the
snapshot's. ``cap_keys`` is this node's capacity (raftapp/session.py):
a new key past it raises OverLimit from ``check``, before any change.

Image in the session snapshot (little-endian)::

    nkeys:I
    nkeys x klen:B vlen:H key value       (ascending key)
"""
import struct

from raft.errors import ConfigError, DecodeError, OverLimit
from raftapp.session import SessionMachine, encode_result
from raftkv import codec
from raftkv.codec import CAS, DELETE, GET, PUT, OK, CAS_FAILED

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_KEY_REC = "<BH"
_KEY_REC_LEN = const(3)
_MAX_VALUE_LIMIT = const(65000)  # keeps a cached result (3 + value) in a u16

# Constant results: bytes literals cost no heap at run time.
_R_OK = b"\x00"
_R_NOT_FOUND = b"\x01"
_R_TOO_LARGE = b"\x05"
_R_FULL = b"\x07"


class KVStore:
    """The application machine of the key-value store."""

    def __init__(self, max_key, max_value, max_keys):  # mpraft: boot
        self.max_key = max_key
        self.max_value = max_value
        self.max_keys = max_keys
        # This node's capacity (<= max_keys unless forced: see the module doc).
        self.cap_keys = max_keys
        # Invariant: every key <= max_key bytes, every value <= max_value,
        # len(store) <= min(max_keys, cap_keys).
        self.store = {}
        # (command, decoded) from the last check: apply decodes once.
        self._cmd = None
        self._dec = None

    def check(self, data):
        dec = codec.decode_command(data)
        self._cmd = data
        self._dec = dec
        _, _, _, key, value, old = dec
        mv = self.max_value
        if (len(key) > self.max_key or (value is not None and len(value) > mv)
                or (old is not None and len(old) > mv)):
            return _R_TOO_LARGE
        n = len(self.store)
        if value is not None and self.cap_keys <= n < self.max_keys and key not in self.store:
            raise OverLimit("log", n + 1, "keys", self.cap_keys)
        return None

    def limits(self):
        return (self.max_key, self.max_value, self.max_keys)

    def apply(self, data):
        if self._cmd is data:
            dec = self._dec
        else:
            dec = codec.decode_command(data)
        self._cmd = self._dec = None
        op, _, _, key, value, old = dec
        store = self.store
        if op == PUT:
            if key not in store and len(store) >= self.max_keys:
                return _R_FULL
            store[key] = value
            return _R_OK
        if op == GET:
            cur = store.get(key)
            if cur is None:
                return _R_NOT_FOUND
            return encode_result(OK, cur)
        if op == DELETE:
            if key not in store:
                return _R_NOT_FOUND
            del store[key]
            return _R_OK
        # CAS (decode_command admits no other op)
        cur = store.get(key)
        if cur != old:
            return encode_result(CAS_FAILED, cur)
        if cur is None and len(store) >= self.max_keys:
            return _R_FULL
        store[key] = value
        return _R_OK

    def is_read(self, data):
        return codec.decode_command(data)[0] == GET

    def query(self, data):
        op, _, _, key, _, _ = codec.decode_command(data)
        if op != GET:
            raise DecodeError("raftkv: query of op %d, only GET reads" % op)
        v = self.store.get(bytes(key))
        if v is None:
            return _R_NOT_FOUND
        return encode_result(OK, v)

    def snapshot_size(self):
        n = 4
        store = self.store
        for k in store:
            n += _KEY_REC_LEN + len(k) + len(store[k])
        return n

    def snapshot_into(self, buf):
        store = self.store
        struct.pack_into("<I", buf, 0, len(store))
        p = 4
        for k in sorted(store):
            v = store[k]
            kl = len(k)
            vl = len(v)
            struct.pack_into(_KEY_REC, buf, p, kl, vl)
            p += _KEY_REC_LEN
            buf[p:p + kl] = k
            p += kl
            buf[p:p + vl] = v
            p += vl
        return p

    def restore(self, data, lims=None):
        """Replace the store with an image; lims: the snapshot's limits
        (adopted), else ours. DecodeError or OverLimit keep the old state."""
        end = len(data)
        if end < 4:
            raise DecodeError("raftkv: snapshot image truncated")
        nkeys = struct.unpack_from("<I", data, 0)[0]
        mk, mv, mn = lims or self.limits()
        if not 0 < mk <= codec.WIRE_MAX_KEY or mv > _MAX_VALUE_LIMIT or lims and nkeys > mn:
            raise DecodeError("raftkv: snapshot limits")
        cap = min(self.cap_keys, mn)
        if nkeys > cap:
            raise OverLimit("snapshot", nkeys, "keys", cap)
        p = 4
        store = {}
        prev = None
        for _ in range(nkeys):
            if p + _KEY_REC_LEN > end:
                raise DecodeError("raftkv: snapshot truncated in key record")
            kl, vl = struct.unpack_from(_KEY_REC, data, p)
            p += _KEY_REC_LEN
            if kl > mk or vl > mv or p + kl + vl > end:
                raise DecodeError("raftkv: snapshot key record too large or truncated")
            k = bytes(data[p:p + kl])
            p += kl
            if prev is not None and k <= prev:
                raise DecodeError("raftkv: snapshot keys not strictly ascending")
            store[k] = bytes(data[p:p + vl])
            p += vl
            prev = k
        if p != end:
            raise DecodeError("raftkv: snapshot has %d trailing bytes" % (end - p))
        self.store = store
        self.max_key = mk
        self.max_value = mv
        self.max_keys = mn


class KVStateMachine(SessionMachine):
    """The key-value store under exactly-once sessions: the engine's state machine."""

    def __init__(self, max_key=64, max_value=256, max_keys=256, max_sessions=64):  # mpraft: boot
        if not 0 < max_key <= codec.WIRE_MAX_KEY:
            raise ConfigError("raftkv: max_key %r must be 1..%d"
                              % (max_key, codec.WIRE_MAX_KEY))
        if not 0 <= max_value <= _MAX_VALUE_LIMIT:
            raise ConfigError("raftkv: max_value %r must be 0..%d"
                              % (max_value, _MAX_VALUE_LIMIT))
        if max_keys < 1 or max_sessions < 1:
            raise ConfigError("raftkv: max_keys and max_sessions must be >= 1")
        SessionMachine.__init__(self, KVStore(max_key, max_value, max_keys), max_sessions)

    @property
    def too_large(self):
        # The store's only refusal is TOO_LARGE.
        return self.refused

    def get_local(self, key):
        """Value at key or None. Linearizable only after ReadIndex has caught up."""
        if not isinstance(key, bytes):
            key = bytes(key)
        return self.app.store.get(key)

    def __len__(self):
        return len(self.app.store)

    def stats(self):
        st = SessionMachine.stats(self)
        st["keys"] = len(self.app.store)
        st["too_large"] = self.refused
        return st
