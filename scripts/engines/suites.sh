#!/usr/bin/env bash
# Runs the engine-dependent test suites (engine, container, egress, proxy, hardening, codex session) against
# one engine, from test binaries built once (`cargo test --release --no-run`):
#
#   suites.sh LABEL DOCKER_HOST [--user NAME] [--netns-of PIDFILE] [-- EXTRA TEST ARGS (--skip NAME)...]
#
# BINS: a file listing the test executables (cargo's "Executable … (PATH)" lines, or one path a line).
# With --user the binaries run as that user (a rootless engine's owner: the files the agent makes are
# then that user's), from a directory it owns. With --netns-of they run in the network namespace of
# the process PIDFILE names — rootless Docker's (rootlesskit's) namespace, where its bridge networks
# and the tests' hosts on them are reachable, as from the host on a rootful engine. Prints each
# suite's time; fails when any suite fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
label=$1 host=$2; shift 2
user=
netns=()
while [ $# -gt 0 ]; do
    case $1 in
        --user) user=$2; shift 2 ;;
        --netns-of) netns=(nsenter "--net=/proc/$(cat "$2")/ns/net" --); shift 2 ;;
        *) break ;;
    esac
done
[ "${1:-}" = -- ] && shift
extra=("$@")
SUITES=${SUITES:-"engine container egress_container proxy_container hardening codex_session"}
: "${BINS:?BINS must name the file listing the test executables}"
bin() { sed -n "s/.*(\(.*\/$1-[0-9a-f]*\))\$/\1/p; /\/$1-[0-9a-f]*\$/p" "$BINS" | head -1; }
failed=()
for s in $SUITES; do
    b=$(bin "$s"); [ -n "$b" ] || { echo "=== $label: no test binary for $s in $BINS" >&2; exit 1; }
    b=$(realpath "$b")
    start=$(date +%s)
    printf '=== %s: %s (%(%H:%M:%S)T)\n' "$label" "$s" -1
    if [ -n "$user" ]; then
        home=$(getent passwd "$user" | cut -d: -f6) uid=$(id -u "$user")
        (cd "$home" && "${netns[@]}" runuser -u "$user" -- env -i HOME="$home" USER="$user" XDG_RUNTIME_DIR="/run/user/$uid" \
            PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin CI="${CI:-true}" DOCKER_HOST="$host" \
            "$b" --test-threads=2 "${extra[@]}") || failed+=("$s")
    else
        DOCKER_HOST="$host" "${netns[@]}" "$b" --test-threads=2 "${extra[@]}" || failed+=("$s")
    fi
    echo "=== $label: $s took $(( $(date +%s) - start ))s"
done
if ((${#failed[@]})); then echo "=== $label: FAILED: ${failed[*]}" >&2; exit 1; fi
