#!/usr/bin/env bash
# Rootful Podman serving its Docker-compatible API on /run/podman/podman.sock (Debian's podman 4.3,
# `podman system service`; catatonit for `init: true`). Installs what is missing, starts the service
# when the socket does not answer, waits until it does, and prints `DOCKER_HOST=unix:///…` on stdout.
# Idempotent; run as root. With CI=true a service that does not come up is an error with its log.
set -euo pipefail
log() { printf '=== podman: %s\n' "$*" >&2; }
SOCK=${CODEX_BOX_PODMAN_SOCK:-/run/podman/podman.sock}
LOG=/var/tmp/codex-box-podman-service.log

need=()
command -v podman >/dev/null || need+=(podman)
command -v catatonit >/dev/null || need+=(catatonit)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

answers() { curl -sf --max-time 5 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }
if ! answers; then
    log "starting podman system service on $SOCK"
    mkdir -p "$(dirname "$SOCK")"
    rm -f "$SOCK"
    # setsid: the service outlives this script and the CI step that ran it.
    setsid podman system service --time=0 "unix://$SOCK" >"$LOG" 2>&1 </dev/null &
    for _ in $(seq 1 60); do answers && break; sleep 0.5; done
    answers || { tail -30 "$LOG" >&2; log "the podman service did not start"; exit 1; }
fi
log "ready: $(curl -s --unix-socket "$SOCK" http://d/version | tr -d '\n' | grep -o '"Name":"Podman Engine","Version":"[^"]*"' || echo '?')"
echo "DOCKER_HOST=unix://$SOCK"
