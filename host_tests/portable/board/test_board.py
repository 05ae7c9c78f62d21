"""Board definitions and node files validate, and every bad field is named.

Runs under pytest and `micropython tools/mptest.py`.
"""
from paths import ROOT
from raft.errors import ConfigError
from raftio.board import FIELDS, load_board, validate_node_config

BOARDS = ("esp32", "esp32s3", "rp2_pico_w", "stm32", "unix")
_DELETE = "<delete>"


def _good():
    return load_board(ROOT + "/boards/esp32/board.json")


def _changed(base, changes):
    d = {}
    for k in base:
        d[k] = base[k]
    for k in changes:
        if changes[k] == _DELETE:
            del d[k]
        else:
            d[k] = changes[k]
    return d


def _error(fn, *args):
    try:
        fn(*args)
    except ConfigError as e:
        return str(e)
    raise AssertionError("no ConfigError for %r" % (args,))


def test_every_board_file_validates():
    for name in BOARDS:
        b = load_board(ROOT + "/boards/" + name + "/board.json")
        assert b["name"] == name
        for k in FIELDS:
            assert k in b, k


def test_board_arch_and_network():
    want = {"esp32": ("xtensawin", "wifi_sta"), "esp32s3": ("xtensawin", "wifi_sta"),
            "rp2_pico_w": ("armv6m", "wifi_sta"), "unix": (None, "none")}
    for name in sorted(want):
        b = load_board(ROOT + "/boards/" + name + "/board.json")
        assert (b["arch"], b["network"]) == want[name], name
    s = load_board(ROOT + "/boards/stm32/board.json")
    assert s["arch"] == "armv7emsp" and s["network"] in ("ethernet", "none")


def test_board_timeouts_suit_the_link():
    for name in BOARDS:
        b = load_board(ROOT + "/boards/" + name + "/board.json")
        election_ms = b["tick_ms"] * b["election_ticks"]
        heartbeat_ms = b["tick_ms"] * b["heartbeat_ticks"]
        # Several heartbeats fit in the shortest election timeout.
        assert heartbeat_ms * 3 <= election_ms, name
        if b["network"] == "wifi_sta":
            assert election_ms >= 500, name


def test_fields_cover_the_schema():
    from raftio import board
    ints = [f[0] for f in board._INT_FIELDS]
    assert sorted(FIELDS) == sorted(["name", "arch", "network"] + ints)
    assert len(FIELDS) == len(ints) + 3


def test_load_board_returns_a_copy():
    src = _good()
    b = load_board(src)
    b["tick_ms"] = 1
    assert src["tick_ms"] != 1


# (changes to the good esp32 board, expected message). Table-driven so each
# field's range and each relationship has one line.
BAD_BOARDS = (
    ({"heartbeat_ticks": 30},
     "board esp32: heartbeat_ticks (30) must be less than election_ticks (20)"),
    ({"heartbeat_ticks": 20},
     "board esp32: heartbeat_ticks (20) must be less than election_ticks (20)"),
    ({"ring_capacity": 4},
     "board esp32: ring_capacity (4) must be an integer in 8..65536"),
    ({"ring_capacity": "64"},
     "board esp32: ring_capacity ('64') must be an integer in 8..65536"),
    ({"tick_ms": True},
     "board esp32: tick_ms (True) must be an integer in 1..1000"),
    ({"tick_ms": 0},
     "board esp32: tick_ms (0) must be an integer in 1..1000"),
    ({"max_entry_bytes": 1400},
     "board esp32: max_entry_bytes (1400) must be an integer in 16..1334"),
    ({"heartbeat_tick": 4},
     "board esp32: unknown field 'heartbeat_tick'; known fields: arch, election_ticks,"
     " flash_log_slots, heap_budget_bytes, heartbeat_ticks, log_partition, log_segment_bytes,"
     " max_entry_bytes, max_key, max_sessions, max_value, name, network, ring_capacity,"
     " snapshot_entries, tick_ms"),
    ({"tick_ms": _DELETE}, "board esp32: missing field 'tick_ms'"),
    ({"network": "wifi"},
     "board esp32: network ('wifi') must be one of ethernet, none, wifi_sta"),
    ({"arch": "xtensa-win"},
     "board esp32: arch ('xtensa-win') must be null (host bytecode) or one of armv6,"
     " armv6m, armv7em, armv7emdp, armv7emsp, armv7m, host, rv32imc, rv64imc, x64,"
     " x86, xtensa, xtensawin"),
    ({"name": "ESP 32"},
     "board ?: name ('ESP 32') must be 1-32 characters of a-z, 0-9, _"),
    ({"max_value": 300},
     "board esp32: the largest command, a CAS of max_key (64) and two max_value (300),"
     " takes 679 bytes and must fit in max_entry_bytes (640)"),
    ({"ring_capacity": 128, "max_entry_bytes": 1024},
     "board esp32: ring_capacity (128) * max_entry_bytes (1024) = 131072 must be"
     " at most half of heap_budget_bytes (51200)"),
    ({"flash_log_slots": 16},
     "board esp32: ring_capacity (32) must be at most flash_log_slots (16):"
     " the ring is the tail of the flash log"),
    ({"snapshot_entries": 1000},
     "board esp32: snapshot_entries (1000) must be at most flash_log_slots (512):"
     " the flash log holds every entry since the last snapshot"),
)


def test_bad_board_fields_are_named():
    good = _good()
    for changes, want in BAD_BOARDS:
        got = _error(load_board, _changed(good, changes))
        assert got == want, "%r\n got: %s\nwant: %s" % (changes, got, want)


def test_board_not_an_object_or_missing_file():
    assert _error(load_board, [1]) == "board ?: must be a JSON object, got list"
    msg = _error(load_board, ROOT + "/boards/nope/board.json")
    assert msg.startswith("board file ") and "nope/board.json: cannot read" in msg, msg


def _node(**changes):
    cfg = {
        "node_id": 1,
        "cluster_id": 7,
        "key": "00112233445566778899aabbccddeeff",
        "peers": [
            {"id": 3, "host": "10.0.0.3", "port": 7000},
            {"id": 1, "host": "10.0.0.1", "port": 7000},
            {"id": 2, "host": "10.0.0.2", "port": 7000},
        ],
    }
    return _changed(cfg, changes)


def test_node_config_validates_and_sorts_peers():
    out = validate_node_config(_node(), _good())
    assert [p["id"] for p in out["peers"]] == [1, 2, 3]
    assert out["node_id"] == 1 and out["cluster_id"] == 7
    wifi = {"ssid": "lab", "password": "secret123"}
    out = validate_node_config(_node(wifi=wifi), _good())
    assert out["wifi"] == wifi


BAD_NODES = (
    ({"node_id": 4}, "config: node 4 not in peers [1, 2, 3]"),
    ({"node_id": 0}, "config: node_id (0) must be an integer in 1..65535"),
    ({"node_id": _DELETE}, "config: missing field 'node_id'"),
    ({"nodeid": 1}, "config: unknown field 'nodeid'; known fields:"
                    " capacity, cluster_id, inc, incs, key, limits, node_id, peers, voters, wifi"),
    ({"voters": [1, 9]}, "config: voters ([1, 9]) must be a non-empty list of distinct peer"
                         " ids from [1, 2, 3]"),
    ({"voters": []}, "config: voters ([]) must be a non-empty list of distinct peer"
                     " ids from [1, 2, 3]"),
    ({"voters": [2, 2]}, "config: voters ([2, 2]) must be a non-empty list of distinct peer"
                         " ids from [1, 2, 3]"),
    ({"cluster_id": -1}, "config: cluster_id (-1) must be an integer in 0..2147483647"),
    ({"key": "abc"}, "config: key (3 characters) must be an even number of hex digits,"
                     " 32..128 (16..64 bytes)"),
    ({"key": "zz112233445566778899aabbccddeeff"}, "config: key has non-hex character 'z'"),
    ({"peers": []}, "config: peers must be a list of 1..64 {id, host, port} objects"),
    ({"peers": [{"id": 1, "host": "a", "port": 1}, {"id": 1, "host": "b", "port": 1}]},
     "config: peers[1]: id 1 appears twice in peers"),
    ({"peers": [{"id": 1, "host": "a", "port": 1}, {"id": 2, "host": "a", "port": 1}]},
     "config: peers[1]: address a:1 appears twice in peers"),
    ({"peers": [{"id": 1, "host": "a", "port": 70000}]},
     "config: peers[0]: port (70000) must be an integer in 1..65535"),
    ({"peers": [{"id": 1, "host": "a"}]}, "config: peers[0]: missing field 'port'"),
    ({"peers": [{"id": 1, "host": "a", "port": 1, "pot": 2}]},
     "config: peers[0]: unknown field 'pot'; known fields: host, id, port"),
    ({"wifi": {"ssid": "lab"}}, "config: wifi: missing field 'password'"),
    ({"wifi": {"ssid": "lab", "password": "short"}},
     "config: wifi password must be empty (open network) or 8..63 characters,"
     " got 5 characters"),
    ({"wifi": {"ssid": "", "password": ""}},
     "config: wifi ssid ('') must be a string of 1..32 characters"),
    ({"limits": {"max_key": 0, "max_value": 8, "max_keys": 8, "max_sessions": 8}},
     "config: limits: max_key (0) must be an integer in 1..255"),
    ({"capacity": {"max_key": 8, "max_value": 8, "max_keys": 8}},
     "config: capacity: max_sessions (None) must be an integer in 1..65535"),
    ({"limits": [1, 2]},
     "config: limits: must be an object {max_key, max_value, max_keys, max_sessions}"),
)


def test_bad_node_fields_are_named():
    board = _good()
    for changes, want in BAD_NODES:
        got = _error(validate_node_config, _node(**changes), board)
        assert got == want, "%r\n got: %s\nwant: %s" % (changes, got, want)


def test_wifi_on_a_board_without_wifi():
    unix = load_board(ROOT + "/boards/unix/board.json")
    got = _error(validate_node_config, _node(wifi={"ssid": "x", "password": ""}), unix)
    assert got == "config: wifi given but board unix has network 'none'; remove wifi", got


def test_overheads_match_the_codecs():
    # board.py keeps its own numbers so it imports nothing heavy; if the wire
    # or command codecs change size, this fails and the limits are updated.
    from raft import msg
    from raftio import board, frame, auth
    from raftkv import codec
    wire = frame.HEADER + auth.TAG_LEN + msg.HEADER_SIZE + msg.ENTRY_OVERHEAD
    assert board.WIRE_OVERHEAD == wire, wire
    assert board.DATAGRAM_BYTES == frame.MAX_DATAGRAM
    assert board.CAS_OVERHEAD + 64 + 2 * 256 == codec.max_command_len(64, 256)


def test_board_limits_fit_the_codecs():
    from raftkv import codec
    for name in BOARDS:
        b = load_board(ROOT + "/boards/" + name + "/board.json")
        assert codec.max_command_len(b["max_key"], b["max_value"]) <= b["max_entry_bytes"]
        assert b["max_key"] <= codec.WIRE_MAX_KEY and b["max_value"] <= codec.WIRE_MAX_VALUE


def test_log_partition_is_optional_and_checked():
    b = _good()
    assert "log_partition" not in b                # absent: segment files
    raw = _changed(b, {"log_partition": "raftlog"})
    assert load_board(raw)["log_partition"] == "raftlog"
    for bad in (5, "", "Raft-Log", "a" * 17, True):
        msg = _error(load_board, _changed(b, {"log_partition": bad}))
        assert "log_partition" in msg and "\n" not in msg, msg
