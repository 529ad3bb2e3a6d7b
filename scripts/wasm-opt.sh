#!/usr/bin/env bash
# The post-link pass of the shipped module: binaryen's wasm-opt over what the compiler linked.
#
#   scripts/wasm-opt.sh IN.wasm OUT.wasm
#
# The passes are binaryen 108's `-O2`, spelled out, less one: `memory-packing`, which drops runs
# of zeros from the data segments. The module's trust-anchor slot (plugin/src/trust.rs) is such a
# run, and `bedrock-guard anchor` stamps it in place in the file, so the data section must stay
# as the linker wrote it; the script checks that it did, byte for byte, and fails otherwise.
# The code section is the same as `-O2`'s (tests/test_wasm_opt.py).
#
# Inlining is limited to trivial functions (`-fimfs 0 -ocimfs 0`; the default `-aimfs 2` still
# inlines functions of two instructions or fewer). binaryen's inlining merges functions into a
# few very large ones (92 KB with `-Oz`), and Envoy's V8 compiles every function with its
# optimising tier when the module loads: that build used 10 MiB more of every Envoy's memory
# (bench/README.md, "Memory when idle, by build"). tests/test_module_shape.py bounds every
# function's size, so a change here that brings inlining back fails there.
#
# The features are exactly those rustc enables for wasm32-wasip1 (`rustc --print cfg --target
# wasm32-wasip1`): wasm-opt may use what it is allowed, so it is allowed nothing more.
#
# The output depends on binaryen's version as the module depends on rustc's: Debian 12's
# binaryen 108 is installed when wasm-opt is missing (root), and tests/test_reproducible_build.py
# rebuilds the module elsewhere and runs this pass again to check the digest.
set -euo pipefail

in=${1:?usage: wasm-opt.sh IN.wasm OUT.wasm}
out=${2:?usage: wasm-opt.sh IN.wasm OUT.wasm}

if ! command -v wasm-opt >/dev/null 2>&1; then
  echo "wasm-opt.sh: installing Debian's binaryen (wasm-opt)" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "wasm-opt.sh: need root to apt-get install binaryen" >&2
    exit 1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen >&2
fi

features=(--enable-bulk-memory --enable-multivalue --enable-mutable-globals
          --enable-nontrapping-float-to-int --enable-reference-types --enable-sign-ext)

# `-O2`'s function passes (run once here, and again by the two `-optimizing` passes on what they
# change, at `--optimize-level 2`).
function_passes=(dce remove-unused-names remove-unused-brs remove-unused-names
  optimize-instructions pick-load-signs precompute code-pushing simplify-locals-nostructure
  vacuum reorder-locals remove-unused-brs coalesce-locals simplify-locals vacuum reorder-locals
  coalesce-locals reorder-locals vacuum merge-blocks remove-unused-brs remove-unused-names
  merge-blocks precompute optimize-instructions rse vacuum)
passes=(duplicate-function-elimination once-reduction "${function_passes[@]}" dae-optimizing
  inlining-optimizing duplicate-function-elimination duplicate-import-elimination
  simplify-globals-optimizing remove-unused-module-elements directize generate-stack-ir
  optimize-stack-ir)

# Written next to OUT and renamed, so OUT is never a half-written module.
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
wasm-opt "${features[@]}" --optimize-level 2 --shrink-level 0 \
  --flexible-inline-max-function-size 0 --one-caller-inline-max-function-size 0 \
  "${passes[@]/#/--}" "$in" -o "$tmp"

# The data section as linked, byte for byte (read with the project's module reader,
# tests/harness/wasm_module.py; this script's real directory, so a symlinked scripts/ works).
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
PYTHONPATH="$root" python3 - "$in" "$tmp" <<'PY'
import sys

from tests.harness.wasm_module import DATA_SECTION, section

linked, optimised = (open(path, "rb").read() for path in sys.argv[1:3])
if section(linked, DATA_SECTION) != section(optimised, DATA_SECTION):
    sys.exit("wasm-opt.sh: the data section changed (the anchor slot must stay as linked): "
             "not written")
PY
mv -f "$tmp" "$out"
trap - EXIT
