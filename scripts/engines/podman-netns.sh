#!/usr/bin/env bash
# Rootless Podman keeps its bridge networks in a "rootless-netns" of its own, made when the first
# container joins one and removed with the last. For the tests to reach their hosts there (as they do
# from the host on a rootful engine), this keeps it up with an idle anchor container on a network of
# its own, and writes the pid of a process kept inside it (`podman unshare --rootless-netns`) to $XDG_RUNTIME_DIR/podman/rootless-netns.pid, which it prints. Run as root, after the
# session image is in the user's engine (images.sh). Idempotent.
#
#   podman-netns.sh [USER]   (default codexbox)
set -euo pipefail
USER_NAME=${1:-codexbox}
uid=$(id -u "$USER_NAME"); RUN=/run/user/$uid
HOME_DIR=$(getent passwd "$USER_NAME" | cut -d: -f6)
as_user() {
    (cd "$HOME_DIR" && runuser -u "$USER_NAME" -- env -i HOME="$HOME_DIR" XDG_RUNTIME_DIR="$RUN" \
        PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@")
}
as_user podman network exists codex-box-anchor || as_user podman network create codex-box-anchor >/dev/null
if [ "$(as_user podman inspect -f '{{.State.Running}}' codex-box-anchor 2>/dev/null)" != true ]; then
    as_user podman rm -f codex-box-anchor >/dev/null 2>&1 || true
    as_user podman run -d --name codex-box-anchor --network codex-box-anchor --read-only \
        --entrypoint sleep codex-sandbox infinity >/dev/null
fi
# A process of our own in that namespace (aardvark-dns, used before, comes and goes with the
# networks' activity): `podman unshare --rootless-netns`, kept running.
# Always a new one: an old one may hold a namespace a restarted service no longer uses.
pkill -u "$uid" -f '^sleep 31536000$' 2>/dev/null || true
as_user setsid podman unshare --rootless-netns sleep 31536000 >/dev/null 2>&1 </dev/null &
pid=
for _ in $(seq 1 20); do
    sleep 0.5
    pid=$(pgrep -u "$uid" -n -f '^sleep 31536000$' || true)
    [ -n "$pid" ] && [ -e "/proc/$pid/ns/net" ] && break
done
[ -n "${pid:-}" ] || { echo "=== podman-netns: no process in rootless Podman's network namespace" >&2; exit 1; }
echo "$pid" >"$RUN/podman/rootless-netns.pid"
echo "$RUN/podman/rootless-netns.pid"
