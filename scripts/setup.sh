#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine for codex-box: installs and starts a Docker engine when none
# answers (and debootstrap, iptables, ipset, bubblewrap, npm and the Codex CLI), builds codex-box (and its static
# Linux build for companion containers), and builds the codex-sandbox
# session image through codex-box itself when it is missing (or, for the default image, when its
# Dockerfile changed). Idempotent; run as root (or with sudo).
# Without a container registry the base is made with debootstrap and imported through the Engine API.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '=== %s\n' "$*" >&2; }
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v iptables >/dev/null || need+=(iptables)
command -v ipset >/dev/null || need+=(ipset)
command -v ip >/dev/null || need+=(iproute2)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v npm >/dev/null || need+=(npm)
command -v openssl >/dev/null || need+=(openssl)
command -v musl-gcc >/dev/null || need+=(musl-tools)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker version >/dev/null 2>&1 && ! $SUDO docker version >/dev/null 2>&1; then
    log "starting dockerd"
    # A dockerd that was killed leaves its pid files behind, and a new one refuses to start.
    for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
        if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
            $SUDO rm -f "$pidfile"
        fi
    done
    if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
        $SUDO systemctl start docker
    else
        ($SUDO dockerd >/var/tmp/codex-box-dockerd.log 2>&1 &)
    fi
    for _ in $(seq 1 60); do $SUDO docker version >/dev/null 2>&1 && break; sleep 1; done
    $SUDO docker version >/dev/null 2>&1 || { tail -30 /var/tmp/codex-box-dockerd.log >&2; log "dockerd did not start"; exit 1; }
fi

# The Codex CLI on the host: `codex-box sandbox --codex` runs it natively (and its tests drive it).
if ! command -v codex >/dev/null; then
    log "installing the Codex CLI (npm)"
    $SUDO npm install -g --no-audit --no-fund "@openai/codex@${CODEX_VERSION:-latest}" >/dev/null
fi

log "building codex-box"
cargo build --release --locked
BIN=target/release/codex-box

# The companion container of every firewalled session (the verification's beacon, the --egress proxy
# proxy) runs a static Linux build of codex-box, imported into the engine through its API.
MUSL="$(uname -m)-unknown-linux-musl"
rustup target list --installed 2>/dev/null | grep -qx "$MUSL" || rustup target add "$MUSL"
log "building the static codex-box for companion containers ($MUSL)"
cargo build --release --locked --target "$MUSL" --bin codex-box

IMAGE=${CODEX_DOCKER_IMAGE:-codex-sandbox}
# The default image is rebuilt when its Dockerfile changed since it was built: a second tag carries
# the Dockerfile's hash (an image named by CODEX_DOCKER_IMAGE is only built when missing).
stale=
if [ -z "${CODEX_DOCKER_IMAGE:-}" ]; then
    SRC_TAG="codex-sandbox:src-$(sha256sum images/Dockerfile.codex-sandbox | cut -c1-12)"
    $SUDO docker image inspect "$SRC_TAG" >/dev/null 2>&1 || stale=1
fi
if [ -n "$stale" ] || ! $SUDO docker image inspect "$IMAGE" >/dev/null 2>&1; then
    BASE=${CODEX_BOX_BASE:-}
    if [ -z "$BASE" ]; then
        BASE=codex-box-base:bookworm
        if ! $SUDO docker image inspect "$BASE" >/dev/null 2>&1; then
            log "making a Debian base image with debootstrap (no registry needed)"
            $SUDO "$BIN" image bootstrap --suite bookworm --tag "$BASE"
        fi
    fi
    ca=()
    # The host's bundle holds any corporate / TLS-intercepting proxy CA the host trusts.
    [ -f /etc/ssl/certs/ca-certificates.crt ] && ca=(--ca-cert /etc/ssl/certs/ca-certificates.crt)
    log "building $IMAGE from $BASE"
    $SUDO "$BIN" image build --base "$BASE" --tag "$IMAGE" "${ca[@]}"
    if [ -n "${SRC_TAG:-}" ]; then $SUDO docker tag "$IMAGE" "$SRC_TAG"; fi
fi
log "ready: $("$BIN" --version)"
