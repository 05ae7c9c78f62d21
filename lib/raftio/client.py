# mpraft: optional
"""The raftkv client: one session, one request at a time, over authenticated UDP.

Portable (CPython host tools and MicroPython boards alike). A request is a
raftkv command (client id + sequence number inside) wrapped in a wire
REQUEST with a request id. The client sends it to the node it believes is
the leader and waits; on NOT_LEADER it follows the hint at once, on silence
it tries the next node, on BUSY or RETRY it backs off and sends again, and
past its deadline it raises ClusterUnavailable.

Exactly-once (thesis 6.3): writes register a session first (the client id is
the REGISTER entry's index) and number their commands 1, 2, 3, ...; every
resend of a command carries the same seq, so the state machine applies it at
most once and answers duplicates from its cache. A request abandoned at its
deadline may still be applied later, or never: the caller must treat it as
unknown. Its seq is not reused (the next command takes seq + 1, and the
abandoned one, if it ever arrives, is refused as STALE_SEQ).

GETs do not go through the log: the leader answers after a ReadIndex round,
so they need no session and use no seq.

put_many writes many pairs with several sessions at once: their next puts
travel as one batch (raftio/batch.py), one datagram, one log entry and one
reply, each put still exactly-once on its own session.
"""
from raft.errors import DecodeError, RaftError
from raftio import batch, clock, wire
from raftio.frame import MAX_PAYLOAD
from raftio.udp import UdpEndpoint, resolve
from raftkv import codec

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_MAX_BACKOFF_MS = const(100)
_ELECTION_POLL_MS = const(5)
_CMD_OVERHEAD = const(15)  # the largest raftkv command header (CAS)


class ClientError(RaftError):
    pass


class ClusterUnavailable(ClientError):
    """No leader answered before the deadline. A write may or may not have happened."""


class RequestRejected(ClientError):
    """The cluster refused the request; retrying won't help. reason: the
    admin refusal code (raftio.wire.R_*), 0 if none was given."""

    def __init__(self, text, reason=0):
        ClientError.__init__(self, text)
        self.reason = reason


class ChangePending(ClusterUnavailable):
    """An admin change was refused BUSY until the deadline: another
    membership change is still pending. Nothing was changed."""


class SessionExpired(ClientError):
    """The session was evicted; the client registers again on its next write.
    The write that got this answer was not applied."""


def _b(x):
    if isinstance(x, str):
        return x.encode()
    return bytes(x)


class Client:
    """nodes: [(node id, host, port)]; key: the cluster key as bytes or hex."""

    def __init__(self, cluster_id, key, nodes, timeout_ms=5000, try_ms=100, seed=0):
        if isinstance(key, str):
            key = bytes(int(key[i:i + 2], 16) for i in range(0, len(key), 2))
        # Any local address: a cluster may be on loopback, a LAN or a test bridge
        # (a socket bound to 127.0.0.1 cannot send out of a real interface).
        self.ep = UdpEndpoint(cluster_id, key, bind_host="0.0.0.0")
        self._addrs = {}
        for nid, host, port in nodes:
            self._addrs[nid] = resolve(host, port)
        self._ids = sorted(self._addrs)
        if not self._ids:
            raise ValueError("client: no nodes given")
        self.timeout_ms = timeout_ms
        self.try_ms = try_ms
        self.leader = 0
        self._rr = seed % len(self._ids)
        self.cid = 0
        self.seq = 0
        self._admin_node = 0
        # put_many's sessions: [client id, last seq] each.
        self._pool = []
        # Request ids start at a per-client offset so two clients sharing a
        # node never confuse each other's answers if addresses get reused.
        self._rid = (clock.ticks_ms() * 7919 + seed * 104729) & 0x7FFFFFFF
        self._cmd = bytearray(MAX_PAYLOAD)
        self._req = bytearray(MAX_PAYLOAD)
        # Counters for callers and benchmarks.
        self.sends = 0
        self.redirects = 0
        self.timeouts = 0

    def close(self):
        self.ep.close()

    def _next_rid(self):
        self._rid = (self._rid + 1) & 0x7FFFFFFF
        return self._rid

    def _rotate(self, current, silent=()):
        """The next node after current, skipping silent ones while others remain."""
        ids = self._ids
        for _ in range(len(ids)):
            self._rr = (self._rr + 1) % len(ids)
            nid = ids[self._rr]
            if nid != current and nid not in silent:
                return nid
        self._rr = (self._rr + 1) % len(ids)
        return ids[self._rr]

    def _wait(self, rid, ms):
        """(code, leader, body) of the reply to rid within ms, or None."""
        ep = self.ep
        start = clock.ticks_ms()
        left = ms
        while left >= 0:
            if ep.poll(left):
                for _ in range(64):
                    got = ep.recv()
                    if got is None:
                        break
                    buf, off, n, _ = got
                    try:
                        t, r, code, leader, body = wire.decode_reply(buf, off, n)
                    except DecodeError:
                        continue
                    if r == rid:
                        return code, leader, body
            left = ms - clock.ticks_diff(clock.ticks_ms(), start)
            if left <= 0:
                return None
        return None

    def call(self, cmd, n, timeout_ms=None):
        """Send the command cmd[:n] until a node answers OK; return the raftkv result bytes."""
        rid = self._next_rid()
        return self._until_ok(rid, wire.encode_request_into(self._req, 0, rid, cmd, n),
                              timeout_ms)

    def admin(self, op, node, ctx=b"", timeout_ms=None):
        """Send an ADMIN op (raftio.wire.A_*) to the leader until it answers OK.

        A membership change is answered once applied; BUSY (another change
        pending) is retried with back-off until timeout_ms.
        """
        rid = self._next_rid()
        self._admin_node = node
        return self._until_ok(rid, wire.encode_admin_into(self._req, 0, rid, op, node, ctx),
                              timeout_ms)

    def _until_ok(self, rid, ln, timeout_ms):
        if timeout_ms is None:
            timeout_ms = self.timeout_ms
        start = clock.ticks_ms()
        target = self.leader or self._ids[self._rr]
        wait = self.try_ms
        backoff = 5
        # node id -> when it last failed to answer during this call. A
        # follower's hint may still name a leader that just died: a hint to a
        # silent node is followed only once `wait` ms passed since its silence
        # (it may just have been slow), else the next node is tried.
        silent = {}
        busy = False  # the last answer was BUSY
        while True:
            elapsed = clock.ticks_diff(clock.ticks_ms(), start)
            if elapsed >= timeout_ms:
                self.leader = 0
                if busy and self._req[0] == wire.ADMIN:
                    raise ChangePending("another membership change is still pending after %d ms"
                                        % timeout_ms)
                raise ClusterUnavailable("cluster unavailable: no leader answered within %d ms"
                                         % timeout_ms)
            self.ep.send_payload_to(self._addrs[target], self._req, ln)
            self.sends += 1
            got = self._wait(rid, min(wait, timeout_ms - elapsed))
            if got is None:
                self.timeouts += 1
                self.leader = 0
                silent[target] = clock.ticks_ms()
                target = self._rotate(target, silent)
                wait = min(wait * 2, 4 * self.try_ms)
                continue
            if target in silent:
                del silent[target]
            code, hint, body = got
            busy = code == wire.BUSY
            if code == wire.OK:
                self.leader = target
                return body
            if code == wire.BAD_REQUEST:
                if len(body) == 1 and 0 < body[0] < len(wire.REASONS):
                    raise RequestRejected("refused by node %d: node %d is %s" % (
                        target, self._admin_node, wire.REASONS[body[0]]), body[0])
                raise RequestRejected("request rejected by node %d (malformed or too large)"
                                      % target)
            if code == wire.NOT_LEADER:
                self.redirects += 1
                self.leader = 0
                if hint and hint != target and hint in self._addrs and (
                        hint not in silent
                        or clock.ticks_diff(clock.ticks_ms(), silent[hint]) >= wait):
                    target = hint
                    continue
                # An election is running: ask around often, so the new leader
                # is found within a few ms of winning (one datagram per
                # _ELECTION_POLL_MS is cheap).
                target = self._rotate(target, silent)
                clock.sleep_ms(_ELECTION_POLL_MS)
                continue
            # RETRY or BUSY: back off.
            clock.sleep_ms(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_MS)

    def status(self, nid, timeout_ms=300):
        """The status dict of node nid, or None if it does not answer."""
        import json
        rid = self._next_rid()
        ln = wire.encode_status_query_into(self._req, 0, rid)
        self.ep.send_payload_to(self._addrs[nid], self._req, ln)
        got = self._wait(rid, timeout_ms)
        if got is None:
            return None
        try:
            return json.loads(got[2])
        except ValueError:
            return None

    # -- sessions and commands --------------------------------------------------
    def register(self):
        n = codec.encode_register_into(self._cmd)
        res = self.call(self._cmd, n)
        try:
            self.cid = codec.decode_client_id(res)
        except DecodeError:
            raise ClientError("register: unexpected result %r" % (res,))
        self.seq = 0
        return self.cid

    def _fits(self, args):
        """ValueError unless a command carrying args fits in one datagram."""
        n = _CMD_OVERHEAD
        for a in args:
            if a is not None:
                n += len(a)
        if n > MAX_PAYLOAD - wire.REQ_HDR:
            raise ValueError("client: a command of %d bytes does not fit in a datagram (%d)"
                             % (n, MAX_PAYLOAD - wire.REQ_HDR))

    def _write(self, encode, *args):
        self._fits(args)
        if not self.cid:
            self.register()
        self.seq += 1
        n = encode(self._cmd, self.cid, self.seq, *args)
        res = self.call(self._cmd, n)
        status, value = codec.decode_result(res)
        if status == codec.SESSION_EXPIRED:
            cid = self.cid
            self.cid = 0
            raise SessionExpired("session %d expired; not applied" % cid)
        if status in (codec.TOO_LARGE, codec.MALFORMED, codec.FULL, codec.STALE_SEQ):
            raise RequestRejected("rejected: %s" % codec.status_name(status))
        return status, value

    def put(self, key, value):
        self._write(codec.encode_put_into, _b(key), _b(value))

    def delete(self, key):
        """True if the key existed."""
        return self._write(codec.encode_delete_into, _b(key))[0] == codec.OK

    def cas(self, key, old, new):
        """(swapped, current value). old None means the key must be absent."""
        status, value = self._write(codec.encode_cas_into, _b(key),
                                    None if old is None else _b(old), _b(new))
        if status == codec.OK:
            return True, None
        return False, value

    def put_many(self, pairs, sessions=16, max_bytes=560):
        """Write every (key, value) of pairs; returns how many. Up to `sessions`
        puts per batch (one session each, registered on first use and kept
        by this client: a board keeps 32 sessions, the least active go
        first), at most max_bytes per batch command: keep it under the
        boards' max_entry_bytes (640 on esp32). Exactly-once per pair;
        raises like put()."""
        pool = self._pool
        while len(pool) < sessions:
            n = codec.encode_register_into(self._cmd)
            pool.append([codec.decode_client_id(self.call(self._cmd, n)), 0])
        done = 0
        i = 0
        while i < len(pairs):
            cmds = []
            size = 4
            while i < len(pairs) and len(cmds) < sessions:
                s = pool[len(cmds)]
                k, v = _b(pairs[i][0]), _b(pairs[i][1])
                n = codec.encode_put_into(self._cmd, s[0], s[1] + 1, k, v)
                if cmds and size + 2 + n > max_bytes:
                    break
                s[1] += 1
                cmds.append([bytes(self._cmd[:n]), s, k, v])
                size += 2 + n
                i += 1
            self._put_batch(cmds)
            done += len(cmds)
        return done

    def _put_batch(self, cmds):
        buf = bytearray(4 + sum(2 + len(c[0]) for c in cmds))
        while cmds:
            n = batch.encode_into(buf, [c[0] for c in cmds])
            res = batch.decode_result(self.call(buf, n))
            if len(res) != len(cmds):
                raise ClientError("put_many: %d results for %d puts" % (len(res), len(cmds)))
            left = []
            for c, r in zip(cmds, res):
                if r == batch.UNSENT:
                    # Applied; the result did not fit the reply. Its session
                    # answers the same command again from its cache.
                    r = self.call(c[0], len(c[0]))
                elif r == batch.REFUSED:
                    raise RequestRejected("put_many: a put was refused in a batch")
                status = codec.decode_result(r)[0]
                if status == codec.SESSION_EXPIRED:
                    # Not applied: a new session, and the put again.
                    s = c[1]
                    m = codec.encode_register_into(self._cmd)
                    s[0] = codec.decode_client_id(self.call(self._cmd, m))
                    s[1] = 1
                    m = codec.encode_put_into(self._cmd, s[0], 1, c[2], c[3])
                    c[0] = bytes(self._cmd[:m])
                    left.append(c)
                elif status != codec.OK:
                    raise RequestRejected("put_many: %s" % codec.status_name(status))
            cmds = left

    def get(self, key):
        """The value (bytes) or None; linearizable (ReadIndex on the leader)."""
        key = _b(key)
        self._fits((key,))
        n = codec.encode_get_into(self._cmd, self.cid, 0, key)
        status, value = codec.decode_result(self.call(self._cmd, n))
        if status == codec.NOT_FOUND:
            return None
        if status != codec.OK:
            raise RequestRejected("get: %s" % codec.status_name(status))
        return value if value is not None else b""
