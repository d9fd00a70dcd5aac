#!/usr/bin/env bash
# Cross-target checks for codex-box, run from .ci/run:
#   * `cargo check` and `cargo clippy -D warnings` of every target (lib, bin, tests, benches) for
#     macOS (x86_64, aarch64) and Windows (x86_64-pc-windows-gnu) — nothing is linked or run there,
#     so this proves the code compiles, not that the macOS/Windows sandboxes work;
#   * a static x86_64-unknown-linux-musl release binary of codex-box, checked to be static and to run.
# Adds missing rustup targets, and musl-gcc (Debian's musl-tools) when missing: ring, the crypto of
# DNS-over-TLS (Linux only), is built from C for the musl target. CROSS_CLIPPY=0 skips clippy.
# Prints the time of each step.
set -euo pipefail
cd "$(dirname "$0")/.."

checked=(x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-gnu)
musl=x86_64-unknown-linux-musl
step() { printf '\n--- %s (%(%H:%M:%S)T)\n' "$*" -1; }
start=$SECONDS

installed=$(rustup target list --installed)
for t in "${checked[@]}" "$musl"; do
    grep -qx "$t" <<<"$installed" || { step "rustup target add $t"; rustup target add "$t"; }
done

if ! command -v musl-gcc >/dev/null; then
    step "apt-get install musl-tools (musl-gcc builds ring's C code for $musl)"
    command -v apt-get >/dev/null || {
        echo "cross-check: musl-gcc is missing and there is no apt-get; install musl-gcc (musl-tools) and rerun" >&2
        exit 1
    }
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq musl-tools >/dev/null
fi

for t in "${checked[@]}"; do
    step "cargo check --all-targets --target $t"
    cargo check --locked --all-targets --target "$t"
    if [ "${CROSS_CLIPPY:-1}" != 0 ]; then
        step "cargo clippy --all-targets --target $t"
        cargo clippy --locked --all-targets --target "$t" -- -D warnings
    fi
done

step "cargo build --release --target $musl --bin codex-box"
cargo build --locked --release --target "$musl" --bin codex-box
bin="${CARGO_TARGET_DIR:-target}/$musl/release/codex-box"
if ! ldd "$bin" 2>&1 | grep -qE 'not a dynamic executable|statically linked'; then
    echo "cross-check: $bin is dynamically linked; expected a static binary" >&2
    exit 1
fi
"$bin" --version
echo "cross-check: static binary $bin ($(du -h "$bin" | cut -f1))"

step "cross-check done in $((SECONDS - start)) s"
