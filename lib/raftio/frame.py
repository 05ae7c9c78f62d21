"""Authenticated datagram framing: one Raft message per UDP datagram.

Layout (big-endian), at most MAX_DATAGRAM bytes:

    offset 0  magic      u16   MAGIC
    offset 2  version    u8    VERSION
    offset 3  cluster id u32
    offset 7  payload    the message codec's bytes, opaque here (HEADER == 7)
    ...       tag        TAG_LEN bytes: HMAC-SHA256(cluster key, header + payload)[:16]

Checks on receipt, cheapest first, each failure counted once in `Counters`:
1. length within [HEADER + TAG_LEN, MAX_DATAGRAM], magic and version -> else malformed;
2. cluster id equals ours -> else wrong_cluster, with no MAC work: a datagram
   from another cluster on the same network is routine misconfiguration, not an
   attack, and computing a MAC for it would only waste time;
3. the tag -> else bad_mac.
The cluster id is covered by the MAC, so a forged one is still caught by (3)
when it happens to equal ours. A bad datagram is dropped and counted; the
caller never sees more than DecodeError.
"""
import struct

from raft.errors import DecodeError
from raftio.auth import Hmac, TAG_LEN

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MAGIC = const(0x6D52)  # b"mR"
VERSION = const(1)
HEADER = const(7)
MAX_DATAGRAM = const(1400)  # fits one Wi-Fi / Ethernet MTU with IP and UDP headers
MAX_PAYLOAD = const(1377)  # MAX_DATAGRAM - HEADER - TAG_LEN
_HDR_FMT = ">HBI"

# Reason codes: DecodeError.reason and indexes into Counters.slots.
DROP_MALFORMED = const(0)
DROP_BAD_MAC = const(1)
DROP_WRONG_CLUSTER = const(2)
DROP_UNKNOWN_PEER = const(3)
DROP_STALE_TERM = const(4)
SEND_ERROR = const(5)
RECV_ERROR = const(6)
# A datagram discarded because the heap had no block to receive it into.
DROP_NO_MEMORY = const(7)
# A send to a peer skipped because its last sends failed with ENOMEM (raftio/udp.py).
SEND_BACKOFF = const(8)
REASON_NAMES = ("malformed", "bad_mac", "wrong_cluster", "unknown_peer",
                "stale_term", "send_errors", "recv_errors", "no_memory", "send_backoff")
_NSLOTS = const(9)


class Counters:
    """Drop and error counts by reason, in a fixed list so counting never allocates.

    Shared by a Framer and the transport that owns it; the node loop counts
    stale_term itself with `drop(DROP_STALE_TERM)`.
    """

    def __init__(self):
        # Invariant: len(slots) == len(REASON_NAMES); slots[r] counts reason r.
        self.slots = [0] * _NSLOTS

    def drop(self, reason):  # mpraft: host-only
        self.slots[reason] += 1

    def get(self, name):
        return self.slots[REASON_NAMES.index(name)]

    def total(self):
        return sum(self.slots)

    def as_dict(self):
        d = {}
        for i in range(_NSLOTS):
            d[REASON_NAMES[i]] = self.slots[i]
        return d

    @property
    def malformed(self):
        return self.slots[DROP_MALFORMED]

    @property
    def bad_mac(self):  # mpraft: host-only
        return self.slots[DROP_BAD_MAC]

    @property
    def wrong_cluster(self):  # mpraft: host-only
        return self.slots[DROP_WRONG_CLUSTER]

    @property
    def unknown_peer(self):  # mpraft: host-only
        return self.slots[DROP_UNKNOWN_PEER]

    @property
    def stale_term(self):  # mpraft: host-only
        return self.slots[DROP_STALE_TERM]

    @property
    def send_errors(self):  # mpraft: host-only
        return self.slots[SEND_ERROR]

    @property
    def recv_errors(self):  # mpraft: host-only
        return self.slots[RECV_ERROR]


def _decode_error(reason, what):
    e = DecodeError("frame: " + what)
    e.reason = reason
    return e


class Framer:
    """Seals and opens datagrams for one cluster id and key."""

    def __init__(self, cluster_id, key, counters=None):  # mpraft: boot
        if not 0 <= cluster_id <= 0xFFFFFFFF:
            raise ValueError("frame: cluster id %r must fit in 32 bits" % (cluster_id,))
        if not key:
            raise ValueError("frame: empty cluster key; set a shared secret in the cluster config")
        self.cluster_id = cluster_id
        # Our header bytes, precomputed so sealing and checking compare and copy
        # bytes instead of packing ints (a u32 id above 2**30 is a heap int on a board).
        self._hdr = struct.pack(_HDR_FMT, MAGIC, VERSION, cluster_id)
        self._hmac = Hmac(key)
        self.counters = counters if counters is not None else Counters()
        # MACs computed (sealed plus checked), for the cost per put in status.
        self.macs = 0

    def seal(self, buf, payload_len):
        """Write header and tag around buf[HEADER:HEADER + payload_len]; return the datagram length."""
        if not 0 <= payload_len <= MAX_PAYLOAD:
            raise ValueError("frame: payload of %d bytes outside 0..%d" % (payload_len, MAX_PAYLOAD))
        end = HEADER + payload_len
        if end + TAG_LEN > len(buf):
            raise ValueError("frame: buffer of %d bytes too small for %d" % (len(buf), end + TAG_LEN))
        buf[0:HEADER] = self._hdr
        self.macs += 1
        self._hmac.mac_into(buf, end, buf, end)
        return end + TAG_LEN

    def check(self, buf, n):
        """payload length (>= 0) if buf[:n] is a good datagram, else -1 - reason; counts drops.

        The non-raising form for the receive loop, so a flood of junk costs no
        exception objects.
        """
        if n < HEADER + TAG_LEN or n > MAX_DATAGRAM or n > len(buf):
            self.counters.slots[DROP_MALFORMED] += 1
            return -1 - DROP_MALFORMED
        hdr = self._hdr
        if buf[0] != hdr[0] or buf[1] != hdr[1] or buf[2] != hdr[2]:
            self.counters.slots[DROP_MALFORMED] += 1
            return -1 - DROP_MALFORMED
        if buf[3] != hdr[3] or buf[4] != hdr[4] or buf[5] != hdr[5] or buf[6] != hdr[6]:
            self.counters.slots[DROP_WRONG_CLUSTER] += 1
            return -1 - DROP_WRONG_CLUSTER
        end = n - TAG_LEN
        self.macs += 1
        if not self._hmac.verify(buf, end, end):
            self.counters.slots[DROP_BAD_MAC] += 1
            return -1 - DROP_BAD_MAC
        return end - HEADER

    def open(self, buf, n):
        """Payload length of the datagram buf[:n] (payload at buf[HEADER:]).

        Raises DecodeError with .reason in (DROP_MALFORMED, DROP_BAD_MAC,
        DROP_WRONG_CLUSTER) after counting it.
        """
        r = self.check(buf, n)
        if r >= 0:
            return r
        r = -1 - r
        raise _decode_error(r, "%s datagram of %d bytes" % (REASON_NAMES[r], n))
