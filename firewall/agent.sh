#!/bin/sh
# codex-box: runs as the agent user, with no capabilities and no_new_privs. Runs the project's init
# hook (a copy codex-box made of the approved hook), then replaces itself with the agent.
if [ -n "${CODEX_BOX_INIT:-}" ]; then
    hook=$CODEX_BOX_INIT
    unset CODEX_BOX_INIT
    "$hook"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "codex-box: the init hook failed with exit code $rc; the agent was not started" >&2
        exit "$rc"
    fi
    # Settings the hook exports for the agent (made fresh by the hook in this session).
    if [ -f "${SANDBOX_ENV_DIR:-/codex_home}/sandbox.env" ]; then
        . "${SANDBOX_ENV_DIR:-/codex_home}/sandbox.env"
    fi
fi
unset CODEX_BOX_UID CODEX_BOX_GID
exec "$@"
