#!/bin/sh
# codex-box firewall sidecar (sidecar mode). This container owns the session's network namespace: it
# applies and verifies the egress firewall, says so on stdout, and then only holds the namespace while
# codex-box starts the agent's container in it (`--network container:<this>`). The agent's container
# has no NET_ADMIN at all, so not even `docker exec -u 0` into it can change the rules; codex-box
# refreshes the sets and reads the record of blocked destinations through this container.
set -eu
R=/run/codex-box
. "$R/apply.sh"
apply_firewall
verify_firewall
echo "codex-box-firewall-ready"
exec sleep infinity
