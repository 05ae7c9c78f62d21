"""UDP transport: one authenticated frame (raftio.frame) per datagram, non-blocking.

`UdpEndpoint` is a bound socket that seals and opens frames for any address
(clients bind port 0). `UdpTransport` adds a peer table: it sends by node id
and drops, as unknown_peer, datagrams whose source address is not a peer
(before any MAC work), unless built with allow_unknown=True so the same socket
also serves clients.

Portability notes (MicroPython unix port 1.29, checked by host_tests/node/test_udp_mp.py):
- `bind`/`sendto` take `getaddrinfo(...)[0][-1]`: a 16-byte sockaddr bytearray
  there, a (host, port) tuple on CPython. Neither is used as given for lookups:
  `_addr_key` turns both into something hashable and comparable with what
  `recvfrom` reports (bytes there, a tuple here).
- The unix port's socket has no `recvfrom_into` and no `getsockname`. There the
  receive path uses `recvfrom(n)`, which first allocates n bytes, then copies
  the datagram into bytes of its own size; the frame is checked and returned
  in place rather than copied into the rx buffer. Asking for n = 1401 every
  time needs a 1.4 KB contiguous block per datagram, which a long-running
  node's fragmented heap may not have even with most of it free (measured:
  a leader died with 100 KB free). So where recv takes flags, a short peek
  (MSG_PEEK, 128 then 512 bytes) learns a short datagram's exact size first:
  heartbeats, acks and client requests never need a big block. If even the
  exact size cannot be allocated, the datagram is discarded (a 1-byte read)
  and counted as no_memory: Raft retransmits, the node lives. `ipoll(0)` is
  asked first, because `recvfrom` on an empty socket costs ~1.5 KB of heap
  (buffer plus the EAGAIN exception) and `ipoll` costs none. Not usable instead: `readinto` on a UDP socket there is a
  stream read that concatenates queued datagrams until the buffer is full.
- A non-blocking receive with nothing waiting raises OSError(EAGAIN): not an error.
- `sendto` raises OSError when a link is down or the kernel refuses: counted
  (send_errors), never raised, because Raft retries by itself.
- On esp32, `sendto` to an address that does not answer ARP (a peer that is
  down) raises OSError(12), ENOMEM, once lwIP's ARP queue is full, until it
  drains. Retrying at once only refills it, so UdpTransport backs off per
  peer: after an ENOMEM it skips that peer's next 1, 2, 4 ... 32 sends
  (counted as send_backoff), and a datagram from the peer ends the back-off.
- Only `select.poll` exists (no `select.select`).

A returned payload buffer is valid until the next recv() on the same endpoint.
"""
import gc
import select
import socket

from raftio.frame import (DROP_NO_MEMORY, DROP_UNKNOWN_PEER, HEADER, MAX_DATAGRAM, RECV_ERROR,
                          SEND_BACKOFF, SEND_ERROR, Framer)

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_RX_SIZE = const(1401)  # MAX_DATAGRAM + 1, so an oversized datagram reads as oversized, not truncated
_PEEK_SMALL = const(128)
_PEEK_MID = const(512)
_MAX_DRAIN = const(16)  # datagrams examined per recv(): bounds the time junk can steal from a tick
_EAGAIN = const(11)
_EWOULDBLOCK_BSD = const(35)
_ENOMEM = const(12)
_HOLD_MAX = const(32)  # most sends skipped after repeated ENOMEM (~6 s of heartbeats)


def resolve(host, port):
    """The address bind/sendto want on this interpreter (IPv4 only, as on the boards)."""
    return socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][-1]


def _addr_key(addr):
    # A MicroPython sockaddr is a bytearray (unhashable) from getaddrinfo and
    # bytes from recvfrom; both compare equal once made bytes.
    if isinstance(addr, bytearray):
        return bytes(addr)
    return addr


class UdpEndpoint:
    """A non-blocking UDP socket that speaks authenticated frames to any address."""

    def __init__(self, cluster_id, key, bind_host="127.0.0.1", bind_port=0, framer=None):  # mpraft: boot
        self.framer = framer if framer is not None else Framer(cluster_id, key)
        self.counters = self.framer.counters
        # Invariant: tx[HEADER:HEADER + n] holds the payload between a writer
        # call and the seal in _send_sealed; nothing else writes it.
        self.tx = bytearray(MAX_DATAGRAM)
        self._txmv = memoryview(self.tx)
        self.sent = 0
        self.received = 0
        self.errno = 0  # of the last failed sendto
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(resolve(bind_host, bind_port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        # recvfrom_into where it exists (CPython), else recvfrom (MicroPython ports).
        self._rfi = getattr(sock, "recvfrom_into", None)
        # Only recvfrom_into fills a buffer of ours; recvfrom brings its own.
        self._rx = bytearray(_RX_SIZE) if self._rfi is not None else None
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._ipoll = getattr(self._poll, "ipoll", None)
        self._peek = self._rfi is None and _can_peek(sock)

    def local_port(self):  # mpraft: host-only
        """The bound port, or None where getsockname is missing (MicroPython unix)."""
        gsn = getattr(self._sock, "getsockname", None)
        return gsn()[1] if gsn is not None else None

    def socket(self):
        """The socket, for an event loop to wait on (raftio/aio.py); read it only through recv()."""
        return self._sock

    def close(self):
        if self._sock is not None:
            try:
                self._poll.unregister(self._sock)
            except (OSError, KeyError, ValueError):
                pass
            self._sock.close()
            self._sock = None

    def poll(self, timeout_ms):
        """True if a datagram is waiting, after at most timeout_ms (0: don't wait)."""
        if self._ipoll is not None:
            # ipoll reuses its result tuple: no heap per call, unlike poll's list.
            for _ in self._ipoll(timeout_ms):
                return True
            return False
        return bool(self._poll.poll(timeout_ms))

    def _send_sealed(self, addr, payload_len):
        n = self.framer.seal(self.tx, payload_len)
        try:
            self._sock.sendto(self._txmv[:n], addr)
        except OSError as e:
            self.errno = e.args[0] if e.args else 0
            self.counters.slots[SEND_ERROR] += 1
            return False
        self.sent += 1
        return True

    def send_to(self, addr, writer):
        """writer(tx, HEADER) writes the payload at tx[HEADER:] and returns its length."""
        return self._send_sealed(addr, writer(self.tx, HEADER))

    def send_payload_to(self, addr, data, n):
        """Frame and send data[:n] to addr (from resolve()). False if the kernel refused."""
        if n > len(data):
            raise ValueError("udp: length %d beyond payload of %d bytes" % (n, len(data)))
        if n == len(data):
            self.tx[HEADER:HEADER + n] = data
        else:
            self.tx[HEADER:HEADER + n] = memoryview(data)[:n]
        return self._send_sealed(addr, n)

    def _accept(self, key):
        """Hook for UdpTransport's sender filter; an endpoint accepts anyone."""
        return True

    def recv(self):
        """(buffer, HEADER, payload_len, sender address) of the next good frame, or None.

        None means nothing good is waiting now (or _MAX_DRAIN bad datagrams were
        dropped in a row: poll again). Every dropped datagram is counted.
        """
        rfi = self._rfi
        for _ in range(_MAX_DRAIN):
            try:
                if rfi is not None:
                    n, addr = rfi(self._rx)
                    buf = self._rx
                else:
                    if not self.poll(0):
                        return None
                    buf, addr = self._recvfrom()
                    if buf is None:
                        continue
                    n = len(buf)
            except OSError as e:
                code = e.args[0] if e.args else 0
                if code != _EAGAIN and code != _EWOULDBLOCK_BSD:
                    self.counters.slots[RECV_ERROR] += 1
                return None
            if not self._accept(_addr_key(addr)):
                self.counters.slots[DROP_UNKNOWN_PEER] += 1
                continue
            plen = self.framer.check(buf, n)
            if plen >= 0:
                self.received += 1
                return buf, HEADER, plen, addr
        return None


    def _recvfrom(self):
        """MicroPython: the next datagram as (bytes, addr), allocating about its own size."""
        sock = self._sock
        size = _RX_SIZE
        try:
            if self._peek:
                n = len(sock.recv(_PEEK_SMALL, socket.MSG_PEEK))
                if n == _PEEK_SMALL:
                    n = len(sock.recv(_PEEK_MID, socket.MSG_PEEK))
                if n < _PEEK_MID:
                    size = n if n > 0 else 1
            return sock.recvfrom(size)
        except MemoryError:
            pass
        gc.collect()
        try:
            sock.recvfrom(1)  # discard it: the kernel drops the unread rest
        except (OSError, MemoryError):
            pass
        self.counters.slots[DROP_NO_MEMORY] += 1
        return None, None


def _can_peek(sock):
    # recv(n, MSG_PEEK) on an empty non-blocking socket: EAGAIN when flags are
    # understood; TypeError (or no MSG_PEEK at all) on ports without them.
    flag = getattr(socket, "MSG_PEEK", None)
    if flag is None:
        return False
    try:
        sock.recv(1, flag)
    except OSError:
        return True
    except (TypeError, ValueError):
        return False
    return True


class UdpTransport(UdpEndpoint):
    """The node's socket: peers maps node id -> (host, port), resolved once here.

    Datagrams from an address that is not a peer are dropped as unknown_peer
    before any MAC work, so a peer must send from the address it is listed
    under (bind each node to its listed host, not 0.0.0.0, on multi-homed hosts).
    With allow_unknown=True they are authenticated and delivered with
    last_peer == 0 instead (a node that also serves clients).
    """

    def __init__(self, node_id, peers, cluster_id, key, bind_host=None, bind_port=None,  # mpraft: boot
                 allow_unknown=False):
        if bind_host is None or bind_port is None:
            if node_id not in peers:
                raise ValueError("udp: node %d not in peers %s and no bind address given"
                                 % (node_id, sorted(peers)))
            host, port = peers[node_id]
            bind_host = host if bind_host is None else bind_host
            bind_port = port if bind_port is None else bind_port
        UdpEndpoint.__init__(self, cluster_id, key, bind_host, bind_port)
        self.node_id = node_id
        self.allow_unknown = allow_unknown
        # Invariant: _addr_of and _peer_of are inverse maps over the same peers.
        self._addr_of = {}
        self._peer_of = {}
        # Node id of the sender of the frame last returned by recv(); 0 = not a peer.
        self.last_peer = 0
        # ENOMEM back-off: peer id -> [sends still to skip, skips after the next ENOMEM].
        self._hold = {}
        for pid in sorted(peers):
            host, port = peers[pid]
            self.set_peer(pid, host, port)

    def set_peer(self, peer_id, host, port):
        """Add or move a peer (membership changes); resolves the address once."""
        if peer_id <= 0:
            raise ValueError("udp: peer id %r must be > 0 (0 means no peer)" % (peer_id,))
        self.remove_peer(peer_id)
        addr = resolve(host, port)
        self._addr_of[peer_id] = addr
        self._peer_of[_addr_key(addr)] = peer_id

    def remove_peer(self, peer_id):
        self._hold.pop(peer_id, None)
        addr = self._addr_of.pop(peer_id, None)
        if addr is not None:
            self._peer_of.pop(_addr_key(addr), None)

    def peers(self):
        return sorted(self._addr_of)

    def _accept(self, key):
        pid = self._peer_of.get(key, 0)
        self.last_peer = pid
        if self._hold and pid in self._hold:
            del self._hold[pid]  # it answers: its address resolves again
        return pid != 0 or self.allow_unknown

    def send(self, peer_id, writer):
        """writer(tx, HEADER) -> payload length; False if peer unknown or the kernel refused."""
        addr = self._addr_of.get(peer_id)
        if addr is None:
            self.counters.slots[SEND_ERROR] += 1
            return False
        hold = self._hold
        if hold:
            h = hold.get(peer_id)
            if h is not None and h[0] > 0:
                h[0] -= 1
                self.counters.slots[SEND_BACKOFF] += 1
                return False
        if self.send_to(addr, writer):
            if hold:
                hold.pop(peer_id, None)
            return True
        if self.errno == _ENOMEM:
            h = hold.get(peer_id)
            if h is None:
                hold[peer_id] = [1, 2]
            else:
                h[0] = h[1]
                h[1] = min(2 * h[1], _HOLD_MAX)
        return False

    def send_payload(self, peer_id, data, n):  # mpraft: host-only
        """Frame and send data[:n] to peer_id; False if peer unknown or the kernel refused."""
        addr = self._addr_of.get(peer_id)
        if addr is None:
            self.counters.slots[SEND_ERROR] += 1
            return False
        return self.send_payload_to(addr, data, n)
