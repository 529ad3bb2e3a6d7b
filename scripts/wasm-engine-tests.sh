#!/usr/bin/env bash
# The engine's tests on the architecture it ships on: policies/tests/wasm.rs compiled to
# wasm32-unknown-unknown (32-bit usize, no OS clock, no random source) and run in Node by
# wasm-bindgen-test; then a check that the proxy-wasm module links no wasm-bindgen.
#
#   scripts/wasm-engine-tests.sh [MODULE]      # MODULE: default dist/bedrock_guard.wasm (make build)
#
# Installs what is missing: Node (Debian's nodejs), a wasm toolchain (a rustup toolchain that
# already has wasm32-unknown-unknown, else Debian's rustc-web building std from source, as
# scripts/cargo-wasm.sh does) and wasm-bindgen-cli at exactly the wasm-bindgen version in
# Cargo.lock, built once into .build/tools (WASM_TOOLS_ROOT). Builds go to target/wasm-tests
# (WASM_TESTS_TARGET_DIR), apart from the plugin's target/wasm.
set -euo pipefail
cd "$(dirname "$0")/.."

module=${1:-dist/bedrock_guard.wasm}
tools=${WASM_TOOLS_ROOT:-$PWD/.build/tools}
target_dir=${WASM_TESTS_TARGET_DIR:-$PWD/target/wasm-tests}
host_cargo=$(command -v cargo || true)
say() { echo "wasm-engine-tests: $*" >&2; }

# ---- what is needed ---------------------------------------------------------------------------

[ -f "$module" ] || { say "no $module: run 'make build' first (or pass the module's path)"; exit 1; }

rustup_has_target=false
if command -v rustup >/dev/null 2>&1 &&
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup_has_target=true
fi

need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
if ! $rustup_has_target; then
  [ -x /usr/bin/cargo ] || need+=(cargo-web rustc-web)
  [ -d /usr/lib/rustlib/src/rust/library ] || need+=(rust-web-src)
  command -v wasm-ld-19 >/dev/null 2>&1 || need+=(lld-19)
fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing from Debian: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    say "need root to apt-get install ${need[*]}"
    exit 1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
[ -n "$host_cargo" ] || host_cargo=$(command -v cargo)

# wasm-bindgen-cli must be exactly the wasm-bindgen version the tests link.
version=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$version" ] || { say "no wasm-bindgen in Cargo.lock"; exit 1; }
runner=$tools/bin/wasm-bindgen-test-runner
cargo_install() { env -u CARGO_TARGET_DIR "$host_cargo" install --locked --quiet --force --root "$tools" "$@" 2>&1; }
if [ "$("$runner" --version 2>/dev/null)" != "wasm-bindgen-test-runner $version" ]; then
  say "installing wasm-bindgen-cli $version into $tools (once; a few minutes)"
  if ! log=$(cargo_install wasm-bindgen-cli --version "$version"); then
    # A registry mirror may lack a version the crate's own Cargo.lock pins. Then: the same
    # crate and lock file, with only each missing package moved to the newest compatible
    # version the registry has (cargo prints the `failed to select` error before building).
    grep -q 'failed to select a version' <<<"$log" || { echo "$log" >&2; exit 1; }
    crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"wasm-bindgen-cli-$version.crate" | head -1)
    src=$(mktemp -d)
    trap 'rm -rf "$src"' EXIT
    tar xzf "$crate" -C "$src"
    dir=$src/wasm-bindgen-cli-$version
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      pkg=$(sed -n 's/.*requirement `\([^ ]*\) = .*(locked to \([^)]*\)).*/\1@\2/p' <<<"$log" | head -1)
      [ -n "$pkg" ] || { echo "$log" >&2; exit 1; }
      say "the registry has no $pkg (pinned by wasm-bindgen-cli's Cargo.lock): using the newest compatible one"
      (cd "$dir" && env -u CARGO_TARGET_DIR "$host_cargo" update --quiet -p "$pkg")
      if log=$(cargo_install --path "$dir"); then break; fi
      grep -q 'failed to select a version' <<<"$log" || { echo "$log" >&2; exit 1; }
    done
  fi
  [ "$("$runner" --version)" = "wasm-bindgen-test-runner $version" ] || { say "wasm-bindgen-cli install failed"; exit 1; }
fi

# ---- the tests, in Node -----------------------------------------------------------------------

export CARGO_TARGET_DIR=$target_dir
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$runner
test_args=(test -p bedrock-guard-policies --test wasm --target wasm32-unknown-unknown)
if $rustup_has_target; then
  cargo=(cargo)
else
  # Debian's compiler: scoped bootstrap flag for -Zbuild-std, lld-19 as the linker.
  export PATH=/usr/bin:$PATH
  export RUSTC_BOOTSTRAP=1
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-19
  cargo=(/usr/bin/cargo)
  test_args+=(-Zbuild-std=std,panic_abort)
fi

test_wasm=$("${cargo[@]}" "${test_args[@]}" --no-run --message-format=json-render-diagnostics |
  sed -n 's/.*"executable":"\([^"]*\.wasm\)".*/\1/p' | tail -1)
[ -f "$test_wasm" ] || { say "the test build produced no .wasm"; exit 1; }
"${cargo[@]}" "${test_args[@]}"

# ---- the proxy-wasm module links no wasm-bindgen ----------------------------------------------

# Imports, exports and custom-section names as the engine that loads it sees them, plus the raw
# bytes. The test module itself must be flagged, or the check is not looking at the right things.
wbg_report() {
  node - "$1" <<'EOF'
const fs = require("fs");
const bytes = fs.readFileSync(process.argv[2]);
const mod = new WebAssembly.Module(bytes);
const pattern = /__wbindgen|__wbg|wasm[-_]bindgen/i;
const names = [
  ...WebAssembly.Module.imports(mod).map((i) => `import ${i.module}.${i.name}`),
  ...WebAssembly.Module.exports(mod).map((e) => `export ${e.name}`),
];
const sections = [];
for (let at = 8; at < bytes.length; ) {
  const id = bytes[at++];
  let size = 0, shift = 0, b;
  do { b = bytes[at++]; size += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
  if (id === 0) {
    let len = 0; shift = 0; let p = at;
    do { b = bytes[p++]; len += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
    sections.push(`custom section ${bytes.subarray(p, p + len).toString("latin1")}`);
  }
  at += size;
}
const hits = [...names, ...sections].filter((n) => pattern.test(n));
const raw = ["__wbindgen", "__wbg_", "wasm-bindgen", "wasm_bindgen"].filter((s) => bytes.includes(s));
for (const h of hits) console.log(h);
for (const s of raw) console.log(`bytes contain ${s}`);
EOF
}

control=$(wbg_report "$test_wasm")
[ -n "$control" ] || { say "check broken: wasm-bindgen not found in the test module $test_wasm"; exit 1; }
found=$(wbg_report "$module")
if [ -n "$found" ]; then
  say "$module links wasm-bindgen:"
  echo "$found" >&2
  exit 1
fi
say "ok: $module has no wasm-bindgen imports, exports, sections or strings ($(wc -l <<<"$control") found in the test module)"
