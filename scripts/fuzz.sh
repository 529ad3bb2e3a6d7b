#!/usr/bin/env bash
# Fuzz the policy engine with cargo-fuzz (libFuzzer): every target, or the ones named.
#
#   scripts/fuzz.sh                      # all targets, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=600 scripts/fuzz.sh decide path
#   FUZZ_ARGS='-jobs=4 -workers=4' scripts/fuzz.sh jwt   # extra libFuzzer flags
#   FUZZ_SANITIZER=none scripts/fuzz.sh  # no AddressSanitizer: ~5x the exec/s, but no
#                                        # -malloc_limit_mb (single huge allocations) check
#
# Needs the rustup nightly toolchain; installs cargo-fuzz with it when missing. The committed
# seeds (fuzz/seeds/<target>/, one file per attack class) are copied into the scratch corpus
# fuzz/corpus/<target>/ (gitignored), which keeps what the fuzzer finds between runs. A crash
# leaves its input in fuzz/artifacts/<target>/ and makes the script exit non-zero; reproduce
# with `cargo +nightly fuzz run <target> <file>` and minimise with `cargo +nightly fuzz tmin`.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(path body jwt jwks eventstream usage audit bundle decide)
SECONDS_EACH=${FUZZ_SECONDS:-60}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
SANITIZER=${FUZZ_SANITIZER:-address}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

if ! cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz with the $TOOLCHAIN toolchain (a few minutes)" >&2
  cargo "+$TOOLCHAIN" install cargo-fuzz --locked
fi

# The libFuzzer dictionary of a target (tokens worth splicing in), when it has one.
dict_for() {
  case $1 in
    audit) ;;
    *) [ -f "fuzz/dict/$1.dict" ] && echo "-dict=$PWD/fuzz/dict/$1.dict" ;;
  esac
}

echo "fuzz: building ${targets[*]} (sanitizer: $SANITIZER)" >&2
for t in "${targets[@]}"; do
  cargo "+$TOOLCHAIN" fuzz build -s "$SANITIZER" "$t"
done

mkdir -p fuzz/corpus fuzz/artifacts target/fuzz-logs
summary=()
failed=0
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  log=target/fuzz-logs/$t.log
  echo "fuzz: $t for ${SECONDS_EACH}s (log: $log)" >&2
  # -timeout: one input taking longer than 10 s is a failure (bounded time);
  # -rss_limit_mb / -malloc_limit_mb: bounded memory.
  # shellcheck disable=SC2046,SC2086
  if cargo "+$TOOLCHAIN" fuzz run -s "$SANITIZER" "$t" "$PWD/$corpus" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -print_final_stats=1 $(dict_for "$t") ${FUZZ_ARGS:-} >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed=1
    tail -n 60 "$log" >&2
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo '?')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo '?')
  units=$(ls "$corpus" | wc -l)
  summary+=("$(printf '%-12s %-7s %12s execs %9s exec/s  cov %6s  corpus %6s' "$t" "$status" "$runs" "$rate" "$cov" "$units")")
done

echo
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: a target failed: see fuzz/artifacts/<target>/ and target/fuzz-logs/<target>.log" >&2
  exit 1
fi
