# mpraft: host-only
"""Board definitions (boards/<name>/board.json) and the node file (/node.json).

A board file says what the hardware can afford: heap, ring size, entry and
key/value limits, timing in ticks, flash log size and the network kind. The
node file says who this node is: node id, cluster id, HMAC key and peers.
Both are validated once at boot, so a bad value stops the node with one line
naming the field, the value and what is allowed, instead of failing later
deep inside the core. The schema is documented in boards/README.md.

Portable: runs on MicroPython and CPython. Nothing happens at import time.
"""
import json

from raft.errors import ConfigError

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# One UDP datagram carries at most this many bytes (fits a Wi-Fi MTU).
DATAGRAM_BYTES = const(1400)
# Bytes around one entry in an append datagram: frame header (7) + message
# header (36) + entry header (7) + HMAC tag (16), from raftio/frame.py and
# raft/msg.py (test_board cross-checks them). An entry of max_entry_bytes must
# travel alone in one datagram or it could never be replicated.
WIRE_OVERHEAD = const(66)
# The largest raftkv command is a CAS: 15 header bytes + key + old + new
# (raftkv.codec.max_command_len); any command within the limits must fit in
# one entry, so a client never hits EntryTooLarge for a legal request.
CAS_OVERHEAD = const(15)

NETWORKS = ("ethernet", "none", "wifi_sta")
# mpy-cross -march values; null means portable bytecode for the host port.
ARCHES = ("armv6", "armv6m", "armv7em", "armv7emdp", "armv7emsp", "armv7m",
          "host", "rv32imc", "rv64imc", "x64", "x86", "xtensa", "xtensawin")

# (field, low, high) for the integer fields, in the order they are checked.
_INT_FIELDS = (
    ("heap_budget_bytes", 16384, 1 << 26),
    ("ring_capacity", 8, 65536),
    ("max_entry_bytes", 16, DATAGRAM_BYTES - WIRE_OVERHEAD),
    ("max_key", 1, 255),
    ("max_value", 0, DATAGRAM_BYTES),
    ("max_sessions", 1, 4096),
    ("tick_ms", 1, 1000),
    ("election_ticks", 2, 1000),
    ("heartbeat_ticks", 1, 999),
    ("snapshot_entries", 1, 1000000),
    ("flash_log_slots", 8, 1000000),
    ("log_segment_bytes", 0, 65536),
)
# Every field of a board file, in the order of boards/*/board.json.
FIELDS = ("name", "arch", "heap_budget_bytes", "ring_capacity", "max_entry_bytes",
          "max_key", "max_value", "max_sessions", "tick_ms", "election_ticks",
          "heartbeat_ticks", "snapshot_entries", "flash_log_slots", "log_segment_bytes",
          "network")

# Optional fields and their defaults. log_partition: null keeps the log in
# segment files; a partition label puts it on that raw flash partition
# (raftio/rawlog.py: a block erase per ~50 entries instead of one per entry).
OPTIONAL = (("log_partition", None),)

_NODE_FIELDS = ("capacity", "cluster_id", "inc", "incs", "key", "limits", "node_id", "peers",
                "voters", "wifi")
_NODE_REQUIRED = ("node_id", "cluster_id", "key", "peers")
_PEER_FIELDS = ("host", "id", "port")
_WIFI_FIELDS = ("password", "ssid")
_MAX_NODE_ID = const(65535)
_MAX_CLUSTER_ID = const(0x7FFFFFFF)
_MAX_PEERS = const(64)
# HMAC-SHA256 key: at least 16 bytes to be worth having, at most one block.
_KEY_MIN_BYTES = const(16)
_KEY_MAX_BYTES = const(64)
_HEX = "0123456789abcdefABCDEF"


def _is_int(v):
    # bool is an int subclass on CPython; true/false in JSON is a typo here.
    return type(v) is int


def _is_name(v):
    if type(v) is not str or not 1 <= len(v) <= 32:
        return False
    for c in v:
        if not ("a" <= c <= "z" or "0" <= c <= "9" or c == "_"):
            return False
    return True


def _read_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise ConfigError("%s %s: cannot read (%s)" % (what, path, e))
    except ValueError as e:
        raise ConfigError("%s %s: not valid JSON (%s)" % (what, path, e))


def _check_keys(d, allowed, where):
    # Sorted so the first complaint is the same on both interpreters.
    for k in sorted(d):
        if k not in allowed:
            raise ConfigError("%s: unknown field %r; known fields: %s"
                              % (where, k, ", ".join(sorted(allowed))))


def load_board(path_or_dict):
    """Return a validated copy of a board definition (a dict or a JSON path).

    Raises ConfigError naming the field, the bad value and what is allowed.
    """
    if type(path_or_dict) is str:
        b = _read_json(path_or_dict, "board file")
        label = path_or_dict
    else:
        b = path_or_dict
        label = "?"
    if type(b) is not dict:
        raise ConfigError("board %s: must be a JSON object, got %s"
                          % (label, type(b).__name__))
    name = b.get("name")
    if _is_name(name):
        label = name
    where = "board " + label
    _check_keys(b, FIELDS + tuple(k for k, _ in OPTIONAL), where)
    for k in FIELDS:
        if k not in b:
            raise ConfigError("%s: missing field %r" % (where, k))
    if not _is_name(name):
        raise ConfigError("%s: name (%r) must be 1-32 characters of a-z, 0-9, _"
                          % (where, name))
    arch = b["arch"]
    if arch is not None and arch not in ARCHES:
        raise ConfigError("%s: arch (%r) must be null (host bytecode) or one of %s"
                          % (where, arch, ", ".join(ARCHES)))
    if b["network"] not in NETWORKS:
        raise ConfigError("%s: network (%r) must be one of %s"
                          % (where, b["network"], ", ".join(NETWORKS)))
    for k, lo, hi in _INT_FIELDS:
        v = b[k]
        if not _is_int(v) or not lo <= v <= hi:
            raise ConfigError("%s: %s (%r) must be an integer in %d..%d"
                              % (where, k, v, lo, hi))
    _check_board_relations(b, where)
    out = {}
    for k in FIELDS:
        out[k] = b[k]
    # Copied only when given, so a board file written back stays readable
    # by a checkout that predates the field (read them with .get).
    for k, _ in OPTIONAL:
        if k in b:
            out[k] = b[k]
    lp = b.get("log_partition")
    if lp is not None and not (_is_name(lp) and len(lp) <= 16):
        raise ConfigError("%s: log_partition (%r) must be null or a partition label of 1-16"
                          " characters of a-z, 0-9, _" % (where, lp))
    return out


def _check_board_relations(b, where):
    hb = b["heartbeat_ticks"]
    el = b["election_ticks"]
    if hb >= el:
        raise ConfigError("%s: heartbeat_ticks (%d) must be less than election_ticks (%d)"
                          % (where, hb, el))
    need = CAS_OVERHEAD + b["max_key"] + 2 * b["max_value"]
    if need > b["max_entry_bytes"]:
        raise ConfigError("%s: the largest command, a CAS of max_key (%d) and two"
                          " max_value (%d), takes %d bytes and must fit in"
                          " max_entry_bytes (%d)"
                          % (where, b["max_key"], b["max_value"], need,
                             b["max_entry_bytes"]))
    # Worst case the ring holds ring_capacity maximal entries; leave the other
    # half of the heap for code, buffers, sessions and the state machine.
    ring = b["ring_capacity"] * b["max_entry_bytes"]
    half = b["heap_budget_bytes"] // 2
    if ring > half:
        raise ConfigError("%s: ring_capacity (%d) * max_entry_bytes (%d) = %d must be"
                          " at most half of heap_budget_bytes (%d)"
                          % (where, b["ring_capacity"], b["max_entry_bytes"], ring, half))
    slots = b["flash_log_slots"]
    if b["ring_capacity"] > slots:
        raise ConfigError("%s: ring_capacity (%d) must be at most flash_log_slots (%d):"
                          " the ring is the tail of the flash log"
                          % (where, b["ring_capacity"], slots))
    if b["snapshot_entries"] > slots:
        raise ConfigError("%s: snapshot_entries (%d) must be at most flash_log_slots (%d):"
                          " the flash log holds every entry since the last snapshot"
                          % (where, b["snapshot_entries"], slots))


def load_node_config(path, board):
    """Read /node.json (or any path) and return validate_node_config's result."""
    return validate_node_config(_read_json(path, "config file"), board)


def validate_node_config(cfg, board):
    """Return a validated copy of a node file for a validated board.

    Fields: node_id, cluster_id, key (HMAC key in hex), peers (list of
    {id, host, port}, this node included) and optional wifi {ssid, password}.
    The copy has peers sorted by id.
    """
    if type(cfg) is not dict:
        raise ConfigError("config: must be a JSON object, got %s" % type(cfg).__name__)
    _check_keys(cfg, _NODE_FIELDS, "config")
    for k in _NODE_REQUIRED:
        if k not in cfg:
            raise ConfigError("config: missing field %r" % k)
    node_id = cfg["node_id"]
    if not _is_int(node_id) or not 1 <= node_id <= _MAX_NODE_ID:
        raise ConfigError("config: node_id (%r) must be an integer in 1..%d"
                          % (node_id, _MAX_NODE_ID))
    cid = cfg["cluster_id"]
    if not _is_int(cid) or not 0 <= cid <= _MAX_CLUSTER_ID:
        raise ConfigError("config: cluster_id (%r) must be an integer in 0..%d"
                          % (cid, _MAX_CLUSTER_ID))
    _check_key(cfg["key"])
    peers = _check_peers(cfg["peers"])
    ids = [p["id"] for p in peers]
    if node_id not in ids:
        raise ConfigError("config: node %d not in peers %s" % (node_id, ids))
    out = {"node_id": node_id, "cluster_id": cid, "key": cfg["key"], "peers": peers}
    if "voters" in cfg:
        # The cluster's first membership; peers may list more nodes, which
        # join later through `raftctl add-learner/add-voter`.
        v = cfg["voters"]
        if (type(v) is not list or not v or any(not _is_int(x) or x not in ids for x in v)
                or len(set(v)) != len(v)):
            raise ConfigError("config: voters (%r) must be a non-empty list of distinct peer"
                              " ids from %s" % (v, ids))
        out["voters"] = sorted(v)
    # The cluster's state-machine limits, and what this board holds when it
    # was flashed with --force although it cannot hold them (raftkv/limits.py).
    for k in ("limits", "capacity"):
        if k in cfg:
            from raftkv.limits import validate
            out[k] = validate(cfg[k], "config: " + k)
    if "incs" in cfg:
        # The founders' incarnations {"id": inc} (docs/incarnation.md).
        v = cfg["incs"]
        if type(v) is not dict or any(type(k) is not str or not k.isdigit() or int(k) not in ids
                                      or not _is_int(v[k]) or not 0 < v[k] < 0x40000000
                                      for k in v):
            raise ConfigError("config: incs (%r) must map peer ids (as strings) to"
                              " incarnations in 1..%d" % (v, 0x3FFFFFFF))
        out["incs"] = v
        if "inc" in cfg:
            # First boot only: the incarnation to adopt on a flash without one.
            if cfg["inc"] != v.get(str(node_id)):
                raise ConfigError("config: inc (%r) must be incs[\"%d\"]" % (cfg["inc"], node_id))
            out["inc"] = cfg["inc"]
    if "wifi" in cfg:
        if board["network"] != "wifi_sta":
            raise ConfigError("config: wifi given but board %s has network %r;"
                              " remove wifi" % (board["name"], board["network"]))
        out["wifi"] = _check_wifi(cfg["wifi"])
    return out


def _check_key(key):
    lo = 2 * _KEY_MIN_BYTES
    hi = 2 * _KEY_MAX_BYTES
    if type(key) is not str or len(key) % 2 or not lo <= len(key) <= hi:
        shown = repr(key) if type(key) is not str else "%d characters" % len(key)
        raise ConfigError("config: key (%s) must be an even number of hex digits,"
                          " %d..%d (%d..%d bytes)" % (shown, lo, hi, _KEY_MIN_BYTES,
                                                      _KEY_MAX_BYTES))
    for c in key:
        if c not in _HEX:
            # Never echo the key itself: it is the cluster secret.
            raise ConfigError("config: key has non-hex character %r" % c)


def _check_peers(peers):
    if type(peers) is not list or not 1 <= len(peers) <= _MAX_PEERS:
        raise ConfigError("config: peers must be a list of 1..%d {id, host, port} objects"
                          % _MAX_PEERS)
    seen_ids = []
    seen_addrs = []
    out = []
    for i in range(len(peers)):
        p = peers[i]
        where = "config: peers[%d]" % i
        if type(p) is not dict:
            raise ConfigError("%s (%r) must be an object {id, host, port}" % (where, p))
        _check_keys(p, _PEER_FIELDS, where)
        for k in _PEER_FIELDS:
            if k not in p:
                raise ConfigError("%s: missing field %r" % (where, k))
        pid = p["id"]
        if not _is_int(pid) or not 1 <= pid <= _MAX_NODE_ID:
            raise ConfigError("%s: id (%r) must be an integer in 1..%d"
                              % (where, pid, _MAX_NODE_ID))
        host = p["host"]
        if type(host) is not str or not 1 <= len(host) <= 253:
            raise ConfigError("%s: host (%r) must be a hostname or IP address string"
                              % (where, host))
        port = p["port"]
        if not _is_int(port) or not 1 <= port <= 65535:
            raise ConfigError("%s: port (%r) must be an integer in 1..65535"
                              % (where, port))
        if pid in seen_ids:
            raise ConfigError("%s: id %d appears twice in peers" % (where, pid))
        addr = "%s:%d" % (host, port)
        if addr in seen_addrs:
            raise ConfigError("%s: address %s appears twice in peers" % (where, addr))
        seen_ids.append(pid)
        seen_addrs.append(addr)
        out.append({"id": pid, "host": host, "port": port})
    out.sort(key=lambda q: q["id"])
    return out


def _check_wifi(w):
    if type(w) is not dict:
        raise ConfigError("config: wifi (%r) must be an object {ssid, password}" % (w,))
    _check_keys(w, _WIFI_FIELDS, "config: wifi")
    for k in _WIFI_FIELDS:
        if k not in w:
            raise ConfigError("config: wifi: missing field %r" % k)
    ssid = w["ssid"]
    if type(ssid) is not str or not 1 <= len(ssid) <= 32:
        raise ConfigError("config: wifi ssid (%r) must be a string of 1..32 characters"
                          % (ssid,))
    pw = w["password"]
    # WPA2-PSK passphrases are 8..63 characters; empty means an open network.
    if type(pw) is not str or not (len(pw) == 0 or 8 <= len(pw) <= 63):
        raise ConfigError("config: wifi password must be empty (open network) or"
                          " 8..63 characters, got %s"
                          % ("%d characters" % len(pw) if type(pw) is str
                             else type(pw).__name__))
    return {"ssid": ssid, "password": pw}
