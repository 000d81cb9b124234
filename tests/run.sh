#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs the system packages the
# end-to-end tests drive (ffmpeg, srt-tools, Chromium, Node.js), the browser
# test's npm packages and wasmtime's CLI, then runs formatting, lints, docs, the fuzz-target
# build, and every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."

# The toolchain pinned by rust-toolchain.toml, with its wasm32-wasip2 target
# and components: rustup does not install it by itself when
# RUSTUP_AUTO_INSTALL=0 (many CI images, rustup >= 1.28 defaults).
rustup toolchain install

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
packages=(ffmpeg srt-tools chromium curl nodejs npm python3 python3-venv ca-certificates redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere than Debian (nodesource, nvm): keep it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python packages used as independent checkers (LL-HLS playlist parsing),
# in a virtual environment (Debian's python refuses system-wide pip).
python3 -m venv target/pyenv
target/pyenv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export PATH="$PWD/target/pyenv/bin:$PATH"

(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
# npm ci refuses jco's lock file (npm 11 records its per-platform optional
# packages without versions); npm install keeps to the lock file's versions.
(cd tests/jco && npm install --no-audit --no-fund --loglevel=error)

# wasmtime serve, the gateway's second standard host
# (tests/tests/gateway_on_standard_hosts.rs): the pinned version, built from
# crates.io into target/tools unless it is there already, with only the
# features `serve` needs (about 8 minutes on 2 cores, once).
wasmtime_version=48.0.8
export PATH="$PWD/target/tools/bin:$PATH"
if [ "$(wasmtime --version 2>/dev/null | cut -d' ' -f2)" != "$wasmtime_version" ]; then
  cargo install wasmtime-cli --version "$wasmtime_version" --locked --root target/tools \
    --no-default-features \
    --features serve,run,cranelift,parallel-compilation,pooling-allocator,component-model,component-model-async
fi

# The suite builds every crate and ~60 test binaries once: an incremental
# cache would only double the target directory (13 GB here), and full debug
# info in our own crates makes each end-to-end binary ~190 MB. Line tables
# keep file:line in panics and backtraces; a clean suite build then needs
# about 20 GB of disk instead of 35 GB.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"

# moq-dev's own MoQ CLI (`moq`), the independent publisher of
# tests/tests/moq_publish_plays_over_llhls.rs: the pinned version, built from
# crates.io into target/tools unless it is there already, QUIC only (about
# 8 minutes on 2 cores, once). Not --locked: its packaged lock file names a
# webpki-roots release some registry mirrors do not carry; the version of
# moq-cli itself is pinned.
moq_cli_version=0.14.10
if [ "$(moq --version 2>/dev/null | cut -d' ' -f2)" != "$moq_cli_version" ]; then
  cargo install moq-cli --version "$moq_cli_version" --root target/tools \
    --no-default-features --features noq
fi

cargo fmt --all --check
cargo fmt --manifest-path edge-modules/components/Cargo.toml --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
cargo clippy --manifest-path edge-modules/components/Cargo.toml --workspace --target wasm32-wasip2 --locked -- -D warnings
cargo build --manifest-path fuzz/Cargo.toml --locked
cargo test --workspace --locked
