#!/usr/bin/env bash
# Session start on every local engine, in one run: `cargo bench --bench session_start` against each
# engine that answers here — rootful Docker and rootful Podman from this shell, rootless Docker and
# rootless Podman as their user (a rootless engine's socket is its user's) — then one table of the
# ratios codex-box / bare API run (target <= 1.30x on each). Run as root after scripts/setup.sh and
# scripts/engines/ (what .ci/run starts); ITERATIONS=N sets the sample count.
#
#   scripts/bench-engines.sh [ROOTLESS_USER]      (default: codexbox)
set -euo pipefail
cd "$(dirname "$0")/.."
user=${1:-codexbox}
answers() { curl -sf --max-time 5 --unix-socket "$1" http://d/_ping >/dev/null 2>&1; }

bench=$(cargo bench --bench session_start --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*\)).*/\1/p' | tail -1)
[ -x "$bench" ] || { echo "bench-engines: no session_start bench binary" >&2; exit 1; }
bench=$(realpath "$bench")
out=$(mktemp); trap 'rm -f "$out"' EXIT

# An engine that does not answer is named in the table, not left out of it unseen.
silent=()
rootful=()
for s in /var/run/docker.sock /run/podman/podman.sock; do
    if answers "$s"; then rootful+=("unix://$s"); else silent+=("$s"); fi
done
if ((${#rootful[@]})); then
    CODEX_BOX_BENCH_ENGINES="${rootful[*]}" "$bench" | tee -a "$out"
fi

if id -u "$user" >/dev/null 2>&1; then
    uid=$(id -u "$user") home=$(getent passwd "$user" | cut -d: -f6)
    rootless=()
    for s in "/run/user/$uid/docker.sock" "/run/user/$uid/podman/podman.sock"; do
        if answers "$s"; then rootless+=("unix://$s"); else silent+=("$s"); fi
    done
    if ((${#rootless[@]})); then
        # The user runs the bench binary and codex-box (and finds the static companion build beside it).
        d=$PWD; while [ "$d" != / ]; do chmod o+x "$d"; d=$(dirname "$d"); done
        chmod o+rx "$bench" target/release/codex-box target/x86_64-unknown-linux-musl/release/codex-box
        (cd "$home" && runuser -u "$user" -- env -i HOME="$home" USER="$user" XDG_RUNTIME_DIR="/run/user/$uid" \
            PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin ITERATIONS="${ITERATIONS:-10}" \
            CODEX_BOX_BENCH_ENGINES="${rootless[*]}" "$bench") | tee -a "$out"
    fi
fi

echo
echo "session start per engine: codex-box / bare API run (target <= 1.30x on each)"
awk '/^session start on /{e=$4; sub(/,$/, "", e)} /ratio codex-box \/ bare API/{printf "  %s  %s\n", $6, e}' "$out"
for s in "${silent[@]}"; do echo "  -      unix://$s (not answering: start it with scripts/setup.sh or scripts/engines/)"; done
