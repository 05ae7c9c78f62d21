"""Offline checks of what deploys the node: the Kustomize base
(deploy/k8s/base), the container entrypoint's configuration from the
environment (tools/cloud/entrypoint.py) and the Grafana dashboard
(deploy/grafana).

The base is rendered by a small Python renderer (resources, with the
kustomization's labels) and, where `kubectl` is installed, also by
`kubectl kustomize`, which must give the same objects. Then: the peer list
the pods compute, the probes, the PDB and the headless Service agree with
the replica count."""
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

import entrypoint
import metrics
from raftio.board import load_board, validate_node_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = os.path.join(ROOT, "deploy", "k8s", "base")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "mpraft-overview.json")

API = {"ConfigMap": "v1", "Secret": "v1", "Service": "v1", "StatefulSet": "apps/v1",
       "PodDisruptionBudget": "policy/v1"}


def render(base=BASE):
    """Kustomize's resources + labels, the subset this base uses."""
    with open(os.path.join(base, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    assert set(k) <= {"apiVersion", "kind", "labels", "resources"}, \
        "the Python renderer knows only resources and labels: %s" % sorted(k)
    objs = []
    for r in k["resources"]:
        with open(os.path.join(base, r)) as f:
            objs += [o for o in yaml.safe_load_all(f) if o]
    for lab in k.get("labels", []):
        for o in objs:
            o["metadata"].setdefault("labels", {}).update(lab["pairs"])
    return objs


def by_kind(objs):
    out = {}
    for o in objs:
        out.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    return out


@pytest.fixture(scope="module")
def objs():
    return by_kind(render())


def test_every_object_is_well_formed():
    for o in render():
        assert o.get("apiVersion") == API.get(o.get("kind")), o.get("kind")
        assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", o["metadata"]["name"])
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mpraft"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_renders_the_same_objects():
    r = subprocess.run(["kubectl", "kustomize", BASE], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    theirs = [o for o in yaml.safe_load_all(r.stdout) if o]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, theirs)) == sorted(map(key, render()))
    mine = {key(o): o for o in render()}
    for o in theirs:
        assert o == mine[key(o)], key(o)


def pod_env(objs, pod):
    env = dict(objs["ConfigMap"]["mpraft-config"]["data"])
    env["POD_NAME"] = pod
    return env


def test_replicas_peers_pdb_and_service_agree(objs):
    sts = objs["StatefulSet"]["mpraft"]
    n = sts["spec"]["replicas"]
    cm = objs["ConfigMap"]["mpraft-config"]["data"]
    assert int(cm["MPRAFT_REPLICAS"]) == n
    # The first membership is every pod of the base (scaling up keeps it).
    assert int(cm["MPRAFT_VOTERS"]) == n
    # A majority stays through voluntary disruptions, and no more is demanded
    # (or a drain could never proceed).
    pdb = objs["PodDisruptionBudget"]["mpraft"]
    assert pdb["spec"]["minAvailable"] == n // 2 + 1
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # The headless service names the pods; their names are the peers.
    svc = objs["Service"][sts["spec"]["serviceName"]]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"].items() <= labels.items()
    assert cm["MPRAFT_SERVICE"] == svc["metadata"]["name"]
    assert cm["MPRAFT_STATEFULSET"] == sts["metadata"]["name"]
    raft = [p for p in svc["spec"]["ports"] if p["name"] == "raft"][0]
    assert raft["protocol"] == "UDP" and raft["port"] == int(cm["MPRAFT_PORT"])
    want = ["%s-%d.%s" % (sts["metadata"]["name"], i, svc["metadata"]["name"]) for i in range(n)]
    board = load_board(json.loads(objs["ConfigMap"]["mpraft-board"]["data"]["board.json"]))
    for i in range(n):
        env = pod_env(objs, "%s-%d" % (sts["metadata"]["name"], i))
        assert entrypoint.node_id(env) == i + 1
        peers = entrypoint.peers(env)
        assert [p["host"] for p in peers] == want
        assert [p["id"] for p in peers] == list(range(1, n + 1))
        assert all(p["port"] == raft["port"] for p in peers)
        cfg = {"node_id": i + 1, "cluster_id": int(cm["MPRAFT_CLUSTER_ID"]), "peers": peers,
               "key": "ab" * 32}
        validate_node_config(cfg, board)


def test_probes_volumes_secret_and_config_line_up(objs):
    sts = objs["StatefulSet"]["mpraft"]
    pod = sts["spec"]["template"]["spec"]
    c = pod["containers"][0]
    cm = objs["ConfigMap"]["mpraft-config"]["data"]
    ports = {p["name"]: p for p in c["ports"]}
    assert ports["metrics"]["containerPort"] == int(cm["MPRAFT_METRICS_PORT"])
    assert ports["raft"]["containerPort"] == int(cm["MPRAFT_PORT"])
    assert ports["raft"]["protocol"] == "UDP"
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    # The node runs as the image's non-root user.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    claims = [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]]
    assert mounts["data"] == "/data" and "data" in claims
    vols = {v["name"]: v for v in pod["volumes"]}
    secret = vols["key"]["secret"]["secretName"]
    assert secret in objs["Secret"] and "key" in objs["Secret"][secret]["stringData"]
    assert cm["MPRAFT_KEY_FILE"] == mounts["key"] + "/key"
    board_cm = vols["config"]["configMap"]["name"]
    assert board_cm in objs["ConfigMap"]
    assert cm["MPRAFT_BOARD"] == mounts["config"] + "/board.json"
    assert [i["key"] for i in vols["config"]["configMap"]["items"]] == ["board.json"]
    env_from = [e["configMapRef"]["name"] for e in c["envFrom"]]
    assert env_from == ["mpraft-config"]
    # Every key of an envFrom ConfigMap is a valid variable name (kubelet
    # skips the others with only an event).
    assert all(re.match(r"^[A-Z_][A-Z0-9_]*$", k) for k in cm)
    # The readiness probe needs a leader, so the pods must start together.
    assert sts["spec"]["podManagementPolicy"] == "Parallel"


def test_the_placeholder_key_is_refused(objs, tmp_path):
    key = tmp_path / "key"
    key.write_text(objs["Secret"]["mpraft-key"]["stringData"]["key"])
    env = pod_env(objs, "mpraft-0")
    env["MPRAFT_KEY_FILE"] = str(key)
    with pytest.raises(entrypoint.Bad) as e:
        entrypoint.config(env)
    assert "placeholder" in str(e.value)
    key.write_text("12" * 32)
    cfg = entrypoint.config(env)
    assert cfg["node_id"] == 1 and cfg["key"] == "12" * 32
    assert cfg["voters"] == [1, 2, 3, 4, 5]


def test_entrypoint_settings_errors_are_one_line(tmp_path):
    cases = [({}, "MPRAFT_NODE_ID is not set"),
             ({"MPRAFT_NODE_ID": "1", "MPRAFT_CLUSTER_ID": "5",
               "MPRAFT_PEERS": "1=a:7000,2=b:7000"}, "no key"),
             ({"MPRAFT_NODE_ID": "3", "MPRAFT_CLUSTER_ID": "5", "MPRAFT_PEERS": "1=a:7000",
               "MPRAFT_KEY_FILE": str(tmp_path / "k")}, "node 3 not in peers")]
    (tmp_path / "k").write_text("ab" * 32)
    for env, msg in cases:
        env = dict(env, POD_NAME="nohyphen", MPRAFT_DATA=str(tmp_path / "d"))
        r = subprocess.run(["python3", os.path.join(ROOT, "tools", "cloud", "entrypoint.py")],
                           env=dict(env, PATH=os.environ.get("PATH", "")), capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2, r
        assert r.stderr.count("\n") == 1 and msg in r.stderr, r.stderr


def emitted_names():
    """Every metric name the runtime and the exporter emit (samples included)."""
    st = {"role": "leader", "leader": 1, "term": 1, "commit": 1, "applied": 1, "drops": {"x": 0},
          "heap_used": 1, "heap_free": 1, "keys": 1, "voters": [1], "pending": 0}
    c = metrics.Counting()
    c.round_trip(2, 0.001)
    fams = metrics.from_status(st, {"node": "1"}) + c.families({"node": "1"})
    fams += [metrics.Family(n).add({}, 0) for n in ("mpraft_up", "mpraft_status_seconds",
                                                     "process_resident_memory_bytes")]
    names = set()
    for line in metrics.exposition(fams).splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def test_the_dashboard_uses_only_metrics_that_exist():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    names = emitted_names()
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    used = set()
    for e in exprs:
        # Identifiers that are metrics: ours, and the process ones.
        used |= set(re.findall(r"\b((?:mpraft|process)_[a-zA-Z0-9_]+)", e))
    missing = sorted(used - names)
    assert not missing, "dashboard queries metrics nothing emits: %s" % missing
    # Each of the overview topics has a panel.
    for want in ("mpraft_is_leader", "mpraft_term", "mpraft_proposals_committed_total",
                 "mpraft_flash_write_seconds_bucket", "mpraft_datagrams_dropped_total"):
        assert want in used, want


def test_a_mounted_node_file_with_the_key_from_a_secret(tmp_path):
    node = {"node_id": 2, "cluster_id": 77, "peers": [{"id": 1, "host": "a", "port": 7000},
                                                      {"id": 2, "host": "b", "port": 7000}]}
    (tmp_path / "node.json").write_text(json.dumps(node))
    (tmp_path / "key").write_text("cd" * 32 + "\n")
    cfg = entrypoint.config({"MPRAFT_CONFIG": str(tmp_path / "node.json"),
                             "MPRAFT_KEY_FILE": str(tmp_path / "key")})
    assert cfg == dict(node, key="cd" * 32)
    # The command the container runs: CPython with the endpoints and JSON logs,
    # or the MicroPython port without them.
    cmd = entrypoint.argv({"MPRAFT_DATA": "/data"}, "/data/node.json")
    assert cmd[-5:] == ["--metrics-host", "0.0.0.0", "--metrics-port", "9101", "--log-json"]
    assert "--metrics-port" in cmd and "--log-json" in cmd
    mp = entrypoint.argv({"MPRAFT_RUNTIME": "micropython"}, "/data/node.json")
    assert mp[1:3] == ["-m", "micropython_unix"] and "--metrics-port" not in mp
