#!/usr/bin/env bash
# Runs every test of the project: unit, property and contract tests (cargo test), then the
# browser end-to-end tests in headless Chromium. Installs what the tests need when missing
# (Chromium from Debian's packages, the Node test packages). Ends with one summary line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() { printf '\n==> %s\n' "$*"; }

step "cargo test (unit, property and contract tests over real sockets)"
cargo test --workspace --all-targets 2>&1 | tee -a "$log"
cargo test --workspace --doc 2>&1 | tee -a "$log"

step "release build for the browser tests"
cargo build --release --bin strangers
export STRANGERS_BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/release/strangers"

step "browser tests (headless Chromium, real WebRTC)"
tests/browser/run.sh 2>&1 | tee -a "$log"

# One closing line over every runner: cargo's "test result" lines and node's TAP summary.
count() { grep -E '^test result:' "$log" | sed -E "s/.* ([0-9]+) $1.*/\\1/" | awk '{s+=$1} END {print s+0}'; }
passed=$(count passed)
failed=$(count failed)
node_pass=$(grep -E '^# pass [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
node_fail=$(grep -E '^# fail [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
echo
echo "total: $((passed + node_pass)) passed, $((failed + node_fail)) failed"
