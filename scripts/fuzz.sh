#!/usr/bin/env bash
# Fuzzes message decoding (both services and the envelope under them) and ticket verification,
# each target for a bounded time. Usage: scripts/fuzz.sh [seconds per target] [target...]
#   FUZZ_SECONDS   seconds per target when not given as the first argument (default 60)
#   FUZZ_JOBS      parallel fuzzing processes per target (default 1)
#   FUZZ_TARGET_DIR  where to build (default fuzz/target)
# cargo-fuzz needs nightly features; on the stable toolchain RUSTC_BOOTSTRAP=1 unlocks them.
# A crash stops the run; its input lands in fuzz/artifacts/<target>/. Keep it as a regression
# test by copying it to fuzz/regressions/<target>/ (tests/fuzz_regressions.rs runs those in
# `cargo test`), then fix the code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-${FUZZ_SECONDS:-60}}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(matchmaker_decode signaler_decode envelope ticket_verify ticket_parts ticket_tamper)
fi
jobs=${FUZZ_JOBS:-1}
parallel=()
if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi
target_dir=$(realpath -m "${FUZZ_TARGET_DIR:-fuzz/target}")
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

cd fuzz
echo "==> building the fuzz targets"
cargo fuzz build -O --target-dir "$target_dir"

status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target" "regressions/$target"
  echo "==> $target for ${seconds}s"
  log="$(mktemp)"
  # Seeds and kept regressions start the corpus; new finds go to corpus/$target.
  if cargo fuzz run -O --target-dir "$target_dir" "$target" "corpus/$target" "seeds/$target" "regressions/$target" -- \
      -max_total_time="$seconds" "${parallel[@]}" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{s+=$2} END {print s+0}')
    echo "    ok: $runs executions, corpus $(ls "corpus/$target" | wc -l) inputs"
  else
    status=1
    grep -E -A4 "panicked|ERROR: AddressSanitizer|ERROR: libFuzzer" "$log" | head -30 || true
    grep -E -A2 "^Failing input" "$log" || true
    echo "    FAILED: $target found a crash; see fuzz/artifacts/$target/"
  fi
  rm -f "$log"
done
exit $status
