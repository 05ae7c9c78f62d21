"""mpraft key-value state machine: codec, exactly-once sessions, snapshots.

Interface the runtime and the client rely on
--------------------------------------------
Commands are bytes inside Raft log entries (``raftkv.codec``):

* ``encode_register()``, ``encode_put(cid, seq, key, value)``,
  ``encode_get(cid, seq, key)``, ``encode_delete(cid, seq, key)``,
  ``encode_cas(cid, seq, key, old, new)`` return bytes; each has an
  ``encode_*_into(buf, ..., off=0)`` twin that writes into a preallocated
  bytearray and returns the length (``max_command_len(max_key, max_value)``
  sizes it). ``old=None`` in CAS means "the key must be absent".
* ``decode_command(buf, off=0, n=None)`` -> ``(op, cid, seq, key, value, old)``.
* Results: ``encode_result(status, value=None)``, ``encode_result_into``,
  ``decode_result(buf, off=0, n=None)`` -> ``(status, value or None)``.
  Statuses: OK, NOT_FOUND, CAS_FAILED, SESSION_EXPIRED, STALE_SEQ, TOO_LARGE,
  MALFORMED, FULL (max_keys reached). ``decode_client_id(result)`` reads a
  REGISTER result.
* Decoding bad bytes raises ``raft.errors.DecodeError`` and nothing else.

``KVStateMachine(max_key=64, max_value=256, max_keys=256, max_sessions=64)``
(``raftkv.kv``):

* ``apply(index, data) -> result bytes``: deterministic across replicas and
  interpreters. Malformed or oversize commands give an error result, never an
  exception, and change no state. An index <= ``applied_index`` is ignored
  (returns None, counted). ``skip(index)`` marks a non-KV entry applied.
* ``get_local(key) -> value or None``: for reads served after ReadIndex.
* ``snapshot() -> bytes`` / ``snapshot_into(buf) -> n`` / ``snapshot_size()`` /
  ``snapshot_write(stream) -> n`` (part by part): the session table and the
  store, byte-for-byte deterministic (the session layer's framing,
  raftapp/session.py).
  ``restore(data)`` raises DecodeError on corrupt input, OverLimit past this
  node's capacity (``cap_sessions``, ``app.cap_keys``), and keeps the old
  state; it adopts the snapshot's limits (``limits()``: max_sessions,
  max_key, max_value, max_keys, the cluster's; raftkv/limits.py).
* ``applied_index``; ``digest()``: 16 hex digits of sha256 over the snapshot.
* ``stats()``: counters for the status API.

Exactly-once sessions (Raft dissertation 6.3, the generic layer in
raftapp.session; a client id of 0 means no session): REGISTER returns a client id
equal to the log index of its entry. A client numbers its commands 1, 2, 3...
with at most one in flight; a retry with the last seq gets the cached result,
an older seq gets STALE_SEQ, a newer one is applied and cached. An unknown or
evicted client id gets SESSION_EXPIRED (the client must REGISTER again). When
``max_sessions`` are open, REGISTER evicts the session with the oldest
last-activity index (ties: lowest id). Sessions travel in the snapshot.
"""
from raftkv.kv import KVStateMachine
