#!/bin/sh
# codex-box session entrypoint: the only code that runs as root in a session container.
#
# codex-box writes this file into a read-only per-session directory mounted at /run/codex-box and
# makes it the container's entrypoint (behind Docker's init). In a fixed order it
#   1. applies the egress firewall, if codex-box generated one (one restore call per table: atomic,
#      no moment with egress open, and before any process of the agent exists);
#   2. verifies it, if asked: a connection to a blocked address must fail;
#   3. adds the session's extra CA certificates to a bundle the agent's tools trust;
#   4. execs the agent through setpriv as the agent uid/gid with an empty bounding and inheritable
#      capability set and no_new_privs, so neither sudo, su nor a setuid file can regain NET_ADMIN.
set -eu
R=/run/codex-box

fail() {
    echo "codex-box: $*" >&2
    exit 125
}

if [ -s "$R/firewall.v4" ]; then
    ipset restore -exist <"$R/firewall.ipset" || fail "could not load the egress address sets (ipset restore)"
    iptables-restore <"$R/firewall.v4" || fail "could not install the IPv4 egress rules (iptables-restore)"
    ip6tables-restore <"$R/firewall.v6" || fail "could not install the IPv6 egress rules (ip6tables-restore)"
fi

if [ -n "${CODEX_BOX_VERIFY_BLOCKED:-}" ]; then
    # host:port that must NOT be reachable once the rules are in place.
    vhost=${CODEX_BOX_VERIFY_BLOCKED%:*}
    vport=${CODEX_BOX_VERIFY_BLOCKED##*:}
    if timeout 3 bash -c "exec 3<>/dev/tcp/$vhost/$vport" 2>/dev/null; then
        fail "firewall verification failed: $CODEX_BOX_VERIFY_BLOCKED is reachable although it is not allowlisted; the agent was not started"
    fi
fi
if [ -n "${CODEX_BOX_VERIFY_ALLOWED:-}" ]; then
    ahost=${CODEX_BOX_VERIFY_ALLOWED%:*}
    aport=${CODEX_BOX_VERIFY_ALLOWED##*:}
    if ! timeout 5 bash -c "exec 3<>/dev/tcp/$ahost/$aport" 2>/dev/null; then
        fail "firewall verification failed: allowlisted $CODEX_BOX_VERIFY_ALLOWED is not reachable; the agent was not started"
    fi
fi
unset CODEX_BOX_VERIFY_BLOCKED CODEX_BOX_VERIFY_ALLOWED

if [ -s "$R/ca.pem" ]; then
    bundle=/tmp/.codex-box-ca-bundle.pem
    cat /etc/ssl/certs/ca-certificates.crt "$R/ca.pem" >"$bundle" 2>/dev/null || cat "$R/ca.pem" >"$bundle"
    chmod 0444 "$bundle"
    export SSL_CERT_FILE="$bundle" NODE_EXTRA_CA_CERTS="$bundle" REQUESTS_CA_BUNDLE="$bundle" \
        GIT_SSL_CAINFO="$bundle" CURL_CA_BUNDLE="$bundle"
fi

if [ -n "${CODEX_BOX_TTY_SIZE:-}" ]; then
    # The terminal's size before the first resize event can arrive.
    stty rows "${CODEX_BOX_TTY_SIZE% *}" cols "${CODEX_BOX_TTY_SIZE#* }" 2>/dev/null || true
fi
unset CODEX_BOX_TTY_SIZE

exec setpriv --reuid="$CODEX_BOX_UID" --regid="$CODEX_BOX_GID" --clear-groups \
    --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs \
    -- /bin/sh "$R/agent.sh" "$@"
