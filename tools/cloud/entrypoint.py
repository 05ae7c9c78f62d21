"""A container's node: its configuration from the environment or a mounted
file, its key from a mounted secret; then it runs tools/ops/node_main.py.

    MPRAFT_CONFIG=/etc/mpraft/node.json        a node file (raftio/board.py), or:
    MPRAFT_NODE_ID=3 | POD_NAME=mpraft-2       this node's id (a StatefulSet pod's
                                               ordinal + 1)
    MPRAFT_PEERS="1=mpraft-1:7000,2=..."       or MPRAFT_REPLICAS=5 with
    MPRAFT_SERVICE=mpraft [MPRAFT_PORT=7000]   (StatefulSet: peer i is
                                               mpraft-(i-1).mpraft)
    MPRAFT_CLUSTER_ID=1234
    MPRAFT_VOTERS=5                            optional: the first membership is
                                               nodes 1..5 (default: every peer)
    MPRAFT_KEY_FILE=/run/secrets/mpraft-key    64 hex digits (32-byte key)
    MPRAFT_DATA=/data  MPRAFT_BOARD=/etc/mpraft/board.json (default: the unix board)
    MPRAFT_METRICS_PORT=9101 (0: none)  MPRAFT_LOG_JSON=1
    MPRAFT_RUNTIME=cpython | micropython       (micropython: no /metrics; use the exporter)

Peers are listed by name: a container restarted by podman or Kubernetes
may come back at another address; the CPython runtime re-resolves the
names now and then (tools/cloud/noderuntime.py). Before the node starts,
every peer's name must resolve (the node binds its own and resolves the
others once at start): the entrypoint waits up to MPRAFT_RESOLVE_WAIT
seconds (default 120), then exits 2 and the container restarts.
A missing or bad setting is one line on stderr and exit 2.
"""
import json
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Bad(Exception):
    pass


def env(e, name, default=None):
    v = e.get(name, default)
    if v is None:
        raise Bad("%s is not set" % name)
    return v


def node_id(e):
    if "MPRAFT_NODE_ID" in e:
        return int(e["MPRAFT_NODE_ID"])
    pod = e.get("POD_NAME") or socket.gethostname()
    try:
        return int(pod.rsplit("-", 1)[1]) + 1
    except (IndexError, ValueError):
        raise Bad("MPRAFT_NODE_ID is not set and %r has no StatefulSet ordinal" % pod)


def peers(e):
    port = int(e.get("MPRAFT_PORT", "7000"))
    if e.get("MPRAFT_PEERS"):
        out = []
        for item in e["MPRAFT_PEERS"].split(","):
            nid, addr = item.strip().split("=", 1)
            host, p = addr.rsplit(":", 1)
            out.append({"id": int(nid), "host": host, "port": int(p)})
        return out
    n = int(env(e, "MPRAFT_REPLICAS"))
    svc = env(e, "MPRAFT_SERVICE")
    sts = e.get("MPRAFT_STATEFULSET", svc)
    return [{"id": i + 1, "host": "%s-%d.%s" % (sts, i, svc), "port": port} for i in range(n)]


def config(e):
    """The node file's dict, from MPRAFT_CONFIG or the variables above."""
    if e.get("MPRAFT_CONFIG"):
        with open(e["MPRAFT_CONFIG"]) as f:
            cfg = json.load(f)
    else:
        cfg = {"node_id": node_id(e), "cluster_id": int(env(e, "MPRAFT_CLUSTER_ID")),
               "peers": peers(e)}
    if e.get("MPRAFT_VOTERS"):
        # The first membership only (a node's storage keeps the current one):
        # nodes added later by scaling up start outside it.
        cfg["voters"] = list(range(1, int(e["MPRAFT_VOTERS"]) + 1))
    if e.get("MPRAFT_KEY_FILE"):
        with open(e["MPRAFT_KEY_FILE"]) as f:
            cfg["key"] = f.read().strip()
    if "key" not in cfg:
        raise Bad("no key: mount the secret and set MPRAFT_KEY_FILE")
    k = cfg["key"]
    if len(k) != 64 or any(c not in "0123456789abcdefABCDEF" for c in k):
        raise Bad("the key must be 64 hex digits (got %d characters)" % len(k))
    if k.strip("0") == "":
        raise Bad("the key is the placeholder of deploy/k8s/base/secret.yaml: replace it "
                  "(openssl rand -hex 32)")
    if cfg["node_id"] not in [p["id"] for p in cfg["peers"]]:
        raise Bad("node %d not in peers %s" % (cfg["node_id"], [p["id"] for p in cfg["peers"]]))
    return cfg


def wait_resolves(host, seconds):
    end = time.monotonic() + seconds
    while True:
        try:
            return socket.getaddrinfo(host, None, socket.AF_INET)[0][-1][0]
        except OSError:
            if time.monotonic() > end:
                raise Bad("%s does not resolve after %d s" % (host, seconds))
            time.sleep(0.5)


def argv(e, cfg_path):
    data = e.get("MPRAFT_DATA", "/data")
    board = e.get("MPRAFT_BOARD") or os.path.join(ROOT, "boards", "unix", "board.json")
    node_main = os.path.join(ROOT, "tools", "ops", "node_main.py")
    args = ["--config", cfg_path, "--data", os.path.join(data, "flash"), "--board", board]
    if e.get("MPRAFT_RUNTIME", "cpython") == "micropython":
        return [sys.executable, "-m", "micropython_unix", "-X", "heapsize=16M",
                node_main] + args
    mport = e.get("MPRAFT_METRICS_PORT", "9101")
    if mport != "0":
        args += ["--metrics-host", "0.0.0.0", "--metrics-port", mport]
    if e.get("MPRAFT_LOG_JSON", "1") == "1":
        args.append("--log-json")
    return [sys.executable, "-u", node_main] + args


def main():
    e = os.environ
    try:
        cfg = config(e)
        end = time.monotonic() + int(e.get("MPRAFT_RESOLVE_WAIT", "120"))
        for p in cfg["peers"]:
            wait_resolves(p["host"], max(0, end - time.monotonic()))
        data = e.get("MPRAFT_DATA", "/data")
        os.makedirs(data, exist_ok=True)
        path = os.path.join(data, "node.json")
        with open(path + ".tmp", "w") as f:
            json.dump(cfg, f)
        os.replace(path + ".tmp", path)
        cmd = argv(e, path)
    except (Bad, OSError, ValueError, KeyError, TypeError) as x:
        print("entrypoint: %s" % x, file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main())
