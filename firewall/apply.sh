#!/bin/sh
# codex-box: applies the egress firewall in the current network namespace, then verifies it. Sourced
# by the session entrypoint (entrypoint mode: the agent's own container, as root, before the agent
# exists) or by the firewall sidecar (sidecar mode: a container that owns the network namespace the
# agent's container joins, so the agent's container never holds NET_ADMIN). Needs NET_ADMIN+NET_RAW.

fail() {
    echo "codex-box: $*" >&2
    exit 125
}

apply_firewall() {
    for tool in ipset iptables-restore ip6tables-restore; do
        command -v "$tool" >/dev/null 2>&1 ||
            fail "the image has no $tool, which the egress firewall needs; use the codex-sandbox image (codex-box image build) or add iptables and ipset to yours; the agent was not started"
    done
    # One restore call per table: atomic, no moment with egress open.
    ipset restore -exist <"$R/firewall.ipset" ||
        fail "could not load the egress address sets (ipset restore): the kernel needs the ip_set and xt_set modules (modprobe ip_set xt_set), and a sandboxing runtime such as gVisor needs --firewall-applier sidecar; the agent was not started"
    iptables-restore <"$R/firewall.v4" || fail "could not install the IPv4 egress rules (iptables-restore); the agent was not started"
    ip6tables-restore <"$R/firewall.v6" ||
        fail "could not install the IPv6 egress rules (ip6tables-restore); the host kernel needs ip6tables support; the agent was not started"
}

# A connection to CODEX_BOX_VERIFY_BLOCKED (host:port) must fail and one to CODEX_BOX_VERIFY_ALLOWED,
# when set, must succeed; then the record of blocked destinations is emptied, since what the check
# tried is not the agent's doing.
verify_firewall() {
    if [ -n "${CODEX_BOX_VERIFY_BLOCKED:-}" ]; then
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
    ipset flush codex_blocked4 2>/dev/null || true
    ipset flush codex_blocked6 2>/dev/null || true
}
