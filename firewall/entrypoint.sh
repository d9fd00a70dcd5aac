#!/bin/sh
# codex-box session entrypoint: the only code that runs as root in a session container.
#
# codex-box writes this file into a read-only per-session directory mounted at /run/codex-box and
# makes it the container's entrypoint (behind Docker's init). In a fixed order it
#   1. applies the egress firewall, if codex-box generated one (one restore call per table: atomic,
#      no moment with egress open, and before any process of the agent exists);
#   2. verifies it, if asked: a connection to a blocked address must fail;
#   3. adds the session's extra CA certificates to a bundle the agent's tools trust;
#   4. starts the agent through setpriv as the agent uid/gid with an empty bounding, inheritable and
#      ambient capability set and no_new_privs, so neither sudo, su nor a setuid file can regain
#      NET_ADMIN; with a firewall it stays the agent's parent and, when the agent ends, prints what
#      the firewall blocked (from the kernel's per-destination sets), then exits with the agent's code.
set -eu
R=/run/codex-box

# The firewall: applied here (entrypoint mode) unless a sidecar container already applied it in the
# network namespace this container joined (CODEX_BOX_FIREWALL=sidecar; this container then has no
# NET_ADMIN, and codex-box reads the record of blocked destinations through the sidecar).
. "$R/apply.sh"
own_firewall=false
if [ -s "$R/firewall.v4" ] && [ "${CODEX_BOX_FIREWALL:-entrypoint}" = entrypoint ]; then
    apply_firewall
    verify_firewall
    own_firewall=true
fi
unset CODEX_BOX_FIREWALL

if [ -s "$R/ca.pem" ]; then
    bundle=/tmp/.codex-box-ca-bundle.pem
    cat /etc/ssl/certs/ca-certificates.crt "$R/ca.pem" >"$bundle" 2>/dev/null || cat "$R/ca.pem" >"$bundle"
    chmod 0444 "$bundle"
    export SSL_CERT_FILE="$bundle" NODE_EXTRA_CA_CERTS="$bundle" REQUESTS_CA_BUNDLE="$bundle" \
        GIT_SSL_CAINFO="$bundle" CURL_CA_BUNDLE="$bundle"
fi

# An engine that cannot give the tmpfs home to the agent (Podman): root owns it, so may open it.
if [ -n "${CODEX_BOX_HOME_MODE:-}" ]; then
    chmod "$CODEX_BOX_HOME_MODE" "$HOME"
fi
unset CODEX_BOX_HOME_MODE

if [ -n "${CODEX_BOX_TTY_SIZE:-}" ]; then
    # The terminal's size before the first resize event can arrive.
    stty rows "${CODEX_BOX_TTY_SIZE% *}" cols "${CODEX_BOX_TTY_SIZE#* }" 2>/dev/null || true
fi
unset CODEX_BOX_TTY_SIZE

if [ "$own_firewall" = false ]; then
    exec setpriv --reuid="$CODEX_BOX_UID" --regid="$CODEX_BOX_GID" --clear-groups \
        --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs \
        -- /bin/sh "$R/agent.sh" "$@"
fi

# With a firewall, stay as the agent's parent so that, when it ends, what the firewall blocked can be
# read from the kernel's sets (codex_blocked4/6, per destination, with counters) and summarised.
# The agent cannot signal or trace this root process (other uid, no capabilities).
set +e
exec 3<&0
env --default-signal=INT,QUIT,TERM,HUP setpriv --reuid="$CODEX_BOX_UID" --regid="$CODEX_BOX_GID" --clear-groups \
    --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs \
    -- /bin/sh "$R/agent.sh" "$@" 0<&3 3<&- &
child=$!
exec 3<&-
# Signals from Docker's init reach this shell: pass them on. With a terminal, the terminal itself
# delivers INT/QUIT to the agent, so they are not passed twice.
for sig in TERM HUP USR1 USR2; do trap "kill -$sig $child 2>/dev/null" "$sig"; done
if [ -t 0 ]; then trap '' INT QUIT; else for sig in INT QUIT; do trap "kill -$sig $child 2>/dev/null" "$sig"; done; fi
while :; do
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break
done

blocked=$({ ipset list codex_blocked4 2>/dev/null; ipset list codex_blocked6 2>/dev/null; } | awk '
    /^Name:/ { m = 0 } /^Members:/ { m = 1; next }
    m && NF >= 3 {
        p = 0; for (i = 2; i < NF; i++) if ($i == "packets") p = $(i + 1)
        split($1, a, ","); n++; total += p; d[n] = a[1] " " a[2] " (" p ")"
    }
    END {
        if (n) {
            printf "%d packet(s) to %d destination(s): ", total, n
            for (i = 1; i <= n && i <= 10; i++) printf "%s%s", (i > 1 ? ", " : ""), d[i]
            if (n > 10) printf ", ..."
            print ""
        }
    }')
[ -n "$blocked" ] && echo "codex-box: egress blocked $blocked" >&2
exit "$rc"
