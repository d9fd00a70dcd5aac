#!/usr/bin/env bash
# Makes the session images of the reference engine (rootful Docker, built there by scripts/setup.sh
# through the Engine API) available to another engine, through both engines' APIs:
# `GET /images/{name}/get` from the first, `POST /images/load` into the second (what `docker save |
# podman load` does, without either CLI). An image the target has with the same id is not copied again.
#
#   images.sh TARGET_SOCKET [IMAGE...]     (default: codex-sandbox, its src- tag, codex-box-base:bookworm)
#
# SOURCE_SOCKET (default /var/run/docker.sock) names the reference engine.
set -euo pipefail
target=$1; shift
src=${SOURCE_SOCKET:-/var/run/docker.sock}
log() { printf '=== images: %s\n' "$*" >&2; }
api() { curl -sf --unix-socket "$1" "http://d/v1.41$2"; }
id_of() { api "$1" "/images/$2/json" 2>/dev/null | grep -o '"Id":"[^"]*"' | head -1 | cut -d'"' -f4 | sed 's/^sha256://'; }
images=("$@")
if ((${#images[@]} == 0)); then
    images=(codex-sandbox codex-box-base:bookworm)
    tag=$(api "$src" /images/codex-sandbox/json | grep -o '"codex-sandbox:src-[^"]*"' | head -1 | tr -d '"' || true)
    [ -n "$tag" ] && images+=("$tag")
fi
for img in "${images[@]}"; do
    want=$(id_of "$src" "$img")
    [ -n "$want" ] || { log "$img is not in the reference engine ($src)"; exit 1; }
    have=$(id_of "$target" "$img" || true)
    if [ "$have" = "$want" ]; then log "$img: already there"; continue; fi
    log "$img: copying ($src -> $target)"
    curl -sf --unix-socket "$src" "http://d/v1.41/images/$img/get" |
        curl -sf --unix-socket "$target" -X POST -H 'Content-Type: application/x-tar' -T - \
            "http://d/v1.41/images/load?quiet=1" >/dev/null
    have=$(id_of "$target" "$img" || true)
    [ "$have" = "$want" ] || { log "$img: not found in the target after loading (got '${have:-nothing}')"; exit 1; }
done
