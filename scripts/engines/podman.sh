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
PIDFILE=$(dirname "$SOCK")/codex-box-service.pid
start() {
    log "starting podman system service on $SOCK"
    mkdir -p "$(dirname "$SOCK")"
    rm -f "$SOCK"
    # setsid: the service outlives this script and the CI step that ran it.
    setsid podman system service --time=0 "unix://$SOCK" >"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 60); do answers && break; sleep 0.5; done
    answers || { tail -30 "$LOG" >&2; log "the podman service did not start"; exit 1; }
}
answers || start

# Without CAP_SYS_RESOURCE (nested containers, some CI machines) rootful Podman cannot raise a
# container's RLIMIT_NOFILE/NPROC to its defaults ("error setting rlimit type 7"). codex-box gives its
# sessions the service's own limits; containers made by other clients (the tests' hosts) need them as
# Podman's defaults: written to containers.conf (when it is not someone else's), then the service is
# restarted to read it.
CONF=/etc/containers/containers.conf
pid=$(cat "$PIDFILE" 2>/dev/null || true)
if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
    capeff=$(awk '/^CapEff/ {print $2}' "/proc/$pid/status")
    if (( (16#$capeff >> 24 & 1) == 0 )) && ! grep -q '^default_ulimits' "$CONF" 2>/dev/null; then
        if [ -s "$CONF" ] && ! grep -q '^# codex-box' "$CONF"; then
            log "warning: the service lacks CAP_SYS_RESOURCE and $CONF is not codex-box's: set default_ulimits there yourself"
        else
            lim() { awk -v l="$1" 'index($0, l) == 1 { n = split(substr($0, length(l) + 1), f, " "); print f[1] ":" f[2] }' "/proc/$pid/limits"; }
            nofile=$(lim "Max open files") nproc=$(lim "Max processes")
            log "no CAP_SYS_RESOURCE: default_ulimits nofile=$nofile nproc=$nproc in $CONF"
            mkdir -p /etc/containers
            printf '# codex-box (scripts/engines/podman.sh): the service cannot raise rlimits without CAP_SYS_RESOURCE\n[containers]\ndefault_ulimits = ["nofile=%s", "nproc=%s"]\n' \
                "$nofile" "$nproc" >"$CONF"
            kill "$pid"; for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            start
        fi
    fi
fi
log "ready: $(curl -s --unix-socket "$SOCK" http://d/version | tr -d '\n' | grep -o '"Name":"Podman Engine","Version":"[^"]*"' || echo '?')"
echo "DOCKER_HOST=unix://$SOCK"
