"""tools/cloud/metrics.py: families from a status dict, the counting observer,
and the text exposition format, checked with prometheus_client's parser."""
import pytest
from prometheus_client.parser import text_string_to_metric_families

import metrics

STATUS = {"id": 2, "role": "leader", "term": 7, "vote": 2, "leader": 2, "commit": 41,
          "applied": 40, "first": 1, "last": 41, "snapshot": 0,
          "drops": {"malformed": 3, "bad_mac": 1, "wrong_cluster": 0, "unknown_peer": 0,
                    "stale_term": 2, "send_errors": 0, "recv_errors": 0, "no_memory": 0},
          "voters": [1, 2, 3], "learners": [], "uptime_ms": 12500, "keys": 9,
          "n_proposed": 30, "n_applied": 40, "n_reads": 4, "n_snapshots": 1, "n_forced": 0,
          "n_not_leader": 5, "n_busy": 1, "n_retry": 2, "pending": 3,
          "heap_used": 51200, "heap_free": 60000}


def parse(text):
    """{(name, sorted label items): value} over every sample."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_status_families_parse_and_carry_the_values():
    text = metrics.exposition(metrics.from_status(STATUS, {"node": "2"}))
    got = parse(text)
    n = (("node", "2"),)
    assert got[("mpraft_has_leader", n)] == 1
    assert got[("mpraft_is_leader", n)] == 1
    assert got[("mpraft_term", n)] == 7
    assert got[("mpraft_commit_index", n)] == 41
    assert got[("mpraft_applied_index", n)] == 40
    assert got[("mpraft_proposals_committed_total", n)] == 40
    assert got[("mpraft_proposals_pending", n)] == 3
    assert got[("mpraft_proposals_failed_total", (("node", "2"), ("reason", "not_leader")))] == 5
    assert got[("mpraft_proposals_failed_total", (("node", "2"), ("reason", "retry")))] == 2
    assert got[("mpraft_snapshots_total", n)] == 1
    assert got[("mpraft_datagrams_dropped_total", (("node", "2"), ("reason", "malformed")))] == 3
    assert got[("mpraft_datagrams_dropped_total", (("node", "2"), ("reason", "stale_term")))] == 2
    assert got[("mpraft_heap_used_bytes", n)] == 51200
    assert got[("mpraft_uptime_seconds", n)] == 12.5
    assert got[("mpraft_voters", n)] == 3
    # HELP and TYPE once per family, before its samples.
    assert text.count("# TYPE mpraft_term gauge") == 1
    assert "# TYPE mpraft_proposals_failed_total counter" in text


def test_a_follower_without_leader():
    st = dict(STATUS, role="follower", leader=0)
    got = parse(metrics.exposition(metrics.from_status(st, {"node": "1"})))
    assert got[("mpraft_has_leader", (("node", "1"),))] == 0
    assert got[("mpraft_is_leader", (("node", "1"),))] == 0


def test_families_of_several_nodes_merge_under_one_header():
    fams = metrics.from_status(STATUS, {"node": "1"}) + metrics.from_status(STATUS, {"node": "2"})
    text = metrics.exposition(fams)
    assert text.count("# TYPE mpraft_term gauge") == 1
    got = parse(text)
    assert got[("mpraft_term", (("node", "1"),))] == got[("mpraft_term", (("node", "2"),))] == 7


def test_histogram_buckets_are_cumulative_and_parse():
    c = metrics.Counting()
    for v in (0.00005, 0.0003, 0.0003, 0.02, 5.0):
        c.flash.observe(v)
    c.round_trip(3, 0.0002)
    text = metrics.exposition(c.families({"node": "1"}))
    got = parse(text)
    n = "mpraft_flash_write_seconds_bucket"
    assert got[(n, (("le", "0.0001"), ("node", "1")))] == 1
    assert got[(n, (("le", "0.0005"), ("node", "1")))] == 3
    assert got[(n, (("le", "0.025"), ("node", "1")))] == 4
    assert got[(n, (("le", "1.0"), ("node", "1")))] == 4
    assert got[(n, (("le", "+Inf"), ("node", "1")))] == 5
    assert got[("mpraft_flash_write_seconds_count", (("node", "1"),))] == 5
    assert abs(got[("mpraft_flash_write_seconds_sum", (("node", "1"),))] - 5.02065) < 1e-9
    assert got[("mpraft_peer_round_trip_seconds_count", (("node", "1"), ("peer", "3")))] == 1


def test_leader_changes_count_new_leaders_not_losses():
    c = metrics.Counting()
    for d in ({"event": "leader", "term": 1, "lead": 3},
              {"event": "leader", "term": 1, "lead": 3},   # the same leader again
              {"event": "role", "term": 2, "role": "candidate", "lead": 0},  # lost it
              {"event": "election", "term": 2, "pre_vote": False},
              {"event": "leader", "term": 2, "lead": 1},
              {"event": "leader", "term": 3, "lead": 3}):
        c.event(d)
    assert c.leader_changes == 3
    assert c.elections == 1


def test_label_values_are_escaped():
    text = metrics.exposition([metrics.Family("mpraft_term").add({"node": 'a"b\\c\nd'}, 1)])
    got = parse(text)
    assert got[("mpraft_term", (("node", 'a"b\\c\nd'),))] == 1


def test_an_unknown_metric_name_is_refused_in_one_line():
    with pytest.raises(ValueError) as e:
        metrics.Family("mpraft_nonsense")
    assert "NAMES" in str(e.value)
