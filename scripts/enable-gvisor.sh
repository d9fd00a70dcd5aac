#!/usr/bin/env bash
# Makes gVisor (runsc) available to the Docker engine as the runtime `runsc`, for
# `codex-box --runtime runsc`: installs Debian's runsc package when missing, adds the runtime to
# /etc/docker/daemon.json (merging with what is there; a backup is kept) and tells dockerd to reload.
# Run as root. `--platform=ptrace` works without KVM; `--network=host` makes the sandbox use the
# container's network namespace, where codex-box's firewall sidecar installs the rules.
set -euo pipefail
if ! command -v runsc >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null
fi
if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
    echo "runsc is already a Docker runtime" >&2
    exit 0
fi
conf=/etc/docker/daemon.json
mkdir -p /etc/docker
[ -f "$conf" ] && cp "$conf" "$conf.codex-box.bak"
python3 - "$conf" <<'PY'
import json, os, sys
path = sys.argv[1]
conf = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
conf.setdefault("runtimes", {})["runsc"] = {
    "path": "/usr/bin/runsc",
    "runtimeArgs": ["--platform=ptrace", "--network=host"],
}
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(conf, f, indent=2)
os.replace(tmp, path)
PY
# dockerd reloads its runtimes on SIGHUP.
pkill -HUP -x dockerd
for _ in $(seq 1 20); do
    docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && { echo "runsc enabled" >&2; exit 0; }
    sleep 0.5
done
echo "dockerd did not pick up the runsc runtime; restart it (systemctl restart docker)" >&2
exit 1
