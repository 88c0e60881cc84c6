#!/usr/bin/env bash
# Browser end-to-end tests: real headless Chromium tabs against the release binary.
# The caller builds first (cargo build --release); set STRANGERS_BIN to use another binary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

bin="${STRANGERS_BIN:-../../target/release/strangers}"
case "$bin" in /*) ;; *) bin="$here/$bin" ;; esac
if [[ ! -x "$bin" ]]; then
  echo "run.sh: no strangers binary at $bin" >&2
  echo "run.sh: build it first (cargo build --release) or set STRANGERS_BIN" >&2
  exit 2
fi
export STRANGERS_BIN="$bin"

if [[ ! -x /usr/bin/chromium ]]; then
  echo "run.sh: installing chromium from apt"
  sudo=""
  if [[ "$(id -u)" -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

# npm ci when node_modules is missing or older than the lock file.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

# WebRTC gathers host candidates from every interface; keep the tests' traffic on loopback by
# running them in a private network namespace of their own (shared/notes: webrtc in a private
# network). Everything that needs the network (apt, npm) happened above. BROWSER_TESTS_NETNS=0
# runs on the bare machine instead.
if [[ "${BROWSER_TESTS_NETNS:-1}" != 0 && -z "${STRANGERS_IN_NETNS:-}" && "$(id -u)" -eq 0 ]] && command -v unshare >/dev/null; then
  exec unshare --net env STRANGERS_IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$here/run.sh" "$@"
fi

# node --test exits non-zero when any test fails.
exec node --test --test-concurrency=1 --test-reporter=tap "$@" ./*.test.mjs
