#!/usr/bin/env bash
# Run a cargo subcommand for the wasm32-wasip1 target with whichever toolchain can do it here.
#
#   scripts/cargo-wasm.sh build --release -p bedrock-guard-plugin
#   scripts/cargo-wasm.sh clippy -p bedrock-guard-plugin -- -D warnings
#
# Preference: a rustup toolchain that already has the wasm32-wasip1 standard library. Otherwise
# Debian's rustc-web toolchain, which builds std from source (-Zbuild-std), installed on demand.
# Never `rustup target add`: these machines cannot download a target (it hangs).
set -euo pipefail
cd "$(dirname "$0")/.."

sub=${1:?usage: cargo-wasm.sh SUBCOMMAND [ARGS...] | cargo-wasm.sh target-dir}
shift
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/wasm}

# Where the wasm build writes: `make build` copies the module from here, so a CARGO_TARGET_DIR
# set by the user is honoured by both.
if [ "$sub" = target-dir ]; then
  echo "$CARGO_TARGET_DIR"
  exit 0
fi

# Reproducible module: the same sources and toolchain give the same bytes whatever the checkout
# path, the target dir or the cargo home. Paths compiled into the module (panic locations of
# the workspace, of registry crates, of generated files in the target dir and of the standard
# library's source) are rewritten to fixed prefixes. tests/test_reproducible_build.py checks it.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$PWD=/bedrock-guard \
--remap-path-prefix=$cargo_home/registry/src=/cargo/registry/src \
--remap-path-prefix=$CARGO_TARGET_DIR=/target \
--remap-path-prefix=/usr/lib/rustlib/src/rust=/rustc/src"

if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  exec cargo "$sub" --target wasm32-wasip1 "$@"
fi

need=()
[ -x /usr/bin/cargo ] || need+=(cargo-web rustc-web)
[ -d /usr/lib/rustlib/src/rust/library ] || need+=(rust-web-src)
command -v wasm-ld-19 >/dev/null 2>&1 || need+=(lld-19)
[ -f /usr/lib/wasm32-wasi/libc.a ] || need+=(wasi-libc)
if [ "$sub" = clippy ] && ! [ -x /usr/bin/cargo-clippy ]; then need+=(rust-web-clippy); fi
if [ ${#need[@]} -gt 0 ]; then
  echo "cargo-wasm: installing Debian's wasm toolchain: ${need[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "cargo-wasm: need root to apt-get install ${need[*]} (or install a rustup toolchain with wasm32-wasip1)" >&2
    exit 1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

# Debian's compiler: scoped bootstrap flag for -Zbuild-std, lld-19 as the linker, wasi-libc.
export PATH=/usr/bin:$PATH
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_WASIP1_LINKER=wasm-ld-19
export RUSTFLAGS="${RUSTFLAGS:-} -L native=/usr/lib/wasm32-wasi"
exec /usr/bin/cargo "$sub" --target wasm32-wasip1 -Zbuild-std=std,panic_abort "$@"
