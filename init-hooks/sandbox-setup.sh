#!/bin/sh
# codex-box init hook: general session setup. Runs as the agent user in the workdir before the agent,
# with SANDBOX_ENV_DIR=/codex_home. Use it with `codex-box --init_script init-hooks/sandbox-setup.sh`.
#
# - git: trusts the mounted workdir (it belongs to the host uid) and sets a session identity if none;
# - npm / pip: user-level install prefixes in the writable home (the root filesystem is read-only);
# - exports the settings for the agent through $SANDBOX_ENV_DIR/sandbox.env, which codex-box's wrapper
#   sources after this hook (the file is made fresh in every session).
set -eu
: "${SANDBOX_ENV_DIR:?run by codex-box, which sets SANDBOX_ENV_DIR}"
env_file="$SANDBOX_ENV_DIR/sandbox.env"

git config --global --add safe.directory "$PWD"
git config --global user.name >/dev/null 2>&1 || git config --global user.name "codex (sandbox)"
git config --global user.email >/dev/null 2>&1 || git config --global user.email "codex@sandbox.invalid"

mkdir -p "$HOME/.npm-global" "$HOME/.local/bin"
{
    echo "export NPM_CONFIG_PREFIX=\"$HOME/.npm-global\""
    echo "export PIP_USER=1 PIP_BREAK_SYSTEM_PACKAGES=1"
    echo "export PATH=\"$HOME/.npm-global/bin:$HOME/.local/bin:\$PATH\""
} >>"$env_file"
echo "sandbox-setup: git, npm and pip configured for $(id -un 2>/dev/null || id -u) in $PWD"
