#!/usr/bin/env bash
# Rootless engines for the test user `codexbox` (created with /etc/subuid and /etc/subgid ranges):
# Debian's rootless Docker (`dockerd-rootless.sh` under rootlesskit + slirp4netns) on
# /run/user/<uid>/docker.sock and rootless Podman's Docker-compatible service on
# /run/user/<uid>/podman/podman.sock. No systemd, no linger: the runtime directory is made by hand
# and the daemons are started with runuser. Idempotent; run as root.
#
#   rootless.sh [docker|podman]...   (default: both)
#
# Prints `DOCKER_HOST=unix:///…` for each engine on stdout (docker first). With CI=true an engine that
# does not come up is an error with its log.
set -euo pipefail
log() { printf '=== rootless: %s\n' "$*" >&2; }
USER_NAME=${CODEX_BOX_ROOTLESS_USER:-codexbox}
engines=("$@"); ((${#engines[@]})) || engines=(docker podman)

need=()
for e in "${engines[@]}"; do
    case $e in
        docker) command -v dockerd >/dev/null || need+=(docker.io)
                command -v rootlesskit >/dev/null || need+=(rootlesskit) ;;
        podman) command -v podman >/dev/null || need+=(podman)
                command -v catatonit >/dev/null || need+=(catatonit) ;;
        *) log "unknown engine $e (docker or podman)"; exit 2 ;;
    esac
done
command -v slirp4netns >/dev/null || need+=(slirp4netns)
command -v newuidmap >/dev/null || need+=(uidmap)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! id -u "$USER_NAME" >/dev/null 2>&1; then
    log "creating user $USER_NAME"
    useradd --create-home --shell /bin/bash "$USER_NAME"
fi
uid=$(id -u "$USER_NAME"); gid=$(id -g "$USER_NAME")
# Sub-id ranges for the user namespace (65536 ids above 100000 + a slot per user).
for f in /etc/subuid /etc/subgid; do
    grep -q "^$USER_NAME:" "$f" 2>/dev/null || echo "$USER_NAME:$((100000 + uid * 65536)):65536" >>"$f"
done
# slirp4netns opens /dev/net/tun in the user's namespace.
[ -c /dev/net/tun ] || { mkdir -p /dev/net; mknod /dev/net/tun c 10 200; }
chmod 666 /dev/net/tun
# The runtime directory systemd-logind would make.
RUN=/run/user/$uid
install -d -m 0700 -o "$uid" -g "$gid" "$RUN"
HOME_DIR=$(getent passwd "$USER_NAME" | cut -d: -f6)
as_user() {
    runuser -u "$USER_NAME" -- env -i HOME="$HOME_DIR" USER="$USER_NAME" LOGNAME="$USER_NAME" \
        XDG_RUNTIME_DIR="$RUN" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@"
}
answers() { curl -sf --max-time 5 --unix-socket "$1" http://d/_ping >/dev/null 2>&1; }
wait_for() { # socket log name
    for _ in $(seq 1 90); do answers "$1" && return 0; sleep 0.5; done
    tail -40 "$2" >&2; log "$3 did not start"; exit 1
}

for e in "${engines[@]}"; do
    case $e in
    docker)
        SOCK=$RUN/docker.sock LOG=/var/tmp/codex-box-rootless-docker.log
        if ! answers "$SOCK"; then
            log "starting rootless dockerd for $USER_NAME on $SOCK"
            # A killed daemon leaves its pid file and socket behind.
            rm -f "$RUN/docker.pid" "$SOCK"; rm -rf "$RUN/dockerd-rootless"
            as_user setsid /usr/share/docker.io/contrib/dockerd-rootless.sh >"$LOG" 2>&1 </dev/null &
            wait_for "$SOCK" "$LOG" "rootless dockerd"
        fi
        echo "DOCKER_HOST=unix://$SOCK" ;;
    podman)
        SOCK=$RUN/podman/podman.sock LOG=/var/tmp/codex-box-rootless-podman.log
        # Native overlay (kernel >= 5.13 in a user namespace); Podman 4.3 would otherwise fall back
        # to vfs, which copies the whole image for every container.
        conf=$HOME_DIR/.config/containers/storage.conf
        if [ ! -f "$conf" ]; then
            as_user mkdir -p "$(dirname "$conf")"
            printf '[storage]\ndriver = "overlay"\n' | as_user tee "$conf" >/dev/null
        fi
        if ! answers "$SOCK"; then
            log "starting rootless podman service for $USER_NAME on $SOCK"
            as_user mkdir -p "$RUN/podman"; rm -f "$SOCK"
            # A killed service leaves the pause process's pid file behind, and every podman command
            # then fails with "invalid internal status … podman system migrate"; migrate resets it
            # (and stops containers of the dead service, which nothing could reach anyway).
            as_user podman system migrate >>"$LOG" 2>&1 || true
            as_user setsid podman system service --time=0 "unix://$SOCK" >"$LOG" 2>&1 </dev/null &
            wait_for "$SOCK" "$LOG" "rootless podman service"
        fi
        echo "DOCKER_HOST=unix://$SOCK" ;;
    esac
done
