#!/usr/bin/env bash
# Capacity benchmark: builds the release binaries, runs every loadgen scenario against the
# services and against the bare relay (the baseline) on loopback, RUNS times each, and prints
# each figure's median per target and its ratio to the bare relay's.
#
# Each run gets fresh server processes. pairing/relay/session load the all-in-one runner
# (`strangers`); idle loads the matchmaker and the signaler as separate processes, so that each
# can hold IDLE_CLIENTS connections under the 20,000-file limit and has its own memory figure.
#
#   scripts/bench.sh                        # everything, 3 runs
#   RUNS=1 SCENARIOS="relay" scripts/bench.sh
#   OUT=/tmp/bench scripts/bench.sh         # keep the JSON reports there
#   BACKEND=redis scripts/bench.sh          # the services on a redis-server of the script's own
#                                           # (emptied before each run); the reports then also
#                                           # say what each match, message, session and idle
#                                           # client costs Redis
#   BACKEND=redis INSTANCES=2 SPLIT=1 SCENARIOS="pairing relay" scripts/bench.sh
#                                           # two all-in-one instances on that Redis; clients
#                                           # take them in turn, and with SPLIT=1 the two peers
#                                           # of every room join on different instances (the
#                                           # worst case); server CPU is all instances'
#   BACKEND=cluster INSTANCES=4 ...         # the same on a three-master Redis Cluster
#
# The services log at their default level (info) unless SERVICE_LOG sets RUST_LOG for them.
#
# The server under test (and Redis) run on CPU core SERVER_CPUS (0) and the load generator on
# LOADGEN_CPUS (1), so that on a 2-core machine the two do not take turns on each other's core
# and the server's CPU time per message is its own; PIN=0 lets the scheduler place them.
#
# Every step is bounded (STEP_LIMIT seconds per loadgen run); servers are stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
SCENARIOS=${SCENARIOS:-"pairing relay session idle"}
OUT=${OUT:-$(mktemp -d /tmp/strangers-bench.XXXXXX)}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release
# Ports apart from the development defaults (8080/8081), so a running dev server is not disturbed.
MM_PORT=${MM_PORT:-18080}
SIG_PORT=${SIG_PORT:-18081}
BARE_PORT=${BARE_PORT:-19090}
IDLE_CLIENTS=${IDLE_CLIENTS:-19000}
STEP_LIMIT=${STEP_LIMIT:-300}
BACKEND=${BACKEND:-memory}
PIN=${PIN:-1}
SERVER_CPUS=${SERVER_CPUS:-0}
LOADGEN_CPUS=${LOADGEN_CPUS:-1}
SERVER_ON=()
LOADGEN_ON=()
if [[ $PIN == 1 ]] && command -v taskset >/dev/null && (($(nproc) > 1)); then
  SERVER_ON=(taskset -c "$SERVER_CPUS")
  LOADGEN_ON=(taskset -c "$LOADGEN_CPUS")
fi
REDIS_PORT=${REDIS_PORT:-16379}
# Extra loadgen options per scenario (e.g. PAIRING_ARGS="-c 16000").
PAIRING_ARGS=${PAIRING_ARGS:-}
RELAY_ARGS=${RELAY_ARGS:-}
SESSION_ARGS=${SESSION_ARGS:-}
IDLE_ARGS=${IDLE_ARGS:-}
SECRET=bench-ticket-secret-bench-ticket-secret
# All the load comes from one machine and one address: lift the per-client abuse limits (and
# the per-instance connection cap) so they do not cut the measurement short.
LIMITS=(MESSAGES_PER_SEC=100000 MESSAGE_BURST=1000000 MAX_DROPPED_MESSAGES=1000000
  NEXT_PER_MINUTE=60000 MAX_CONNECTIONS=10000000 MAX_CONNECTIONS_PER_IP=10000000)
INSTANCES=${INSTANCES:-1}
SPLIT=${SPLIT:-0}
SERVICE_LOG=${SERVICE_LOG:-}
COMMON_ENV=(HOST=127.0.0.1 "${LIMITS[@]}")
[[ -n $SERVICE_LOG ]] && COMMON_ENV+=(RUST_LOG="$SERVICE_LOG")

mkdir -p "$OUT"
PIDS=()
REDIS_PIDS=()
stop_servers() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
stop_all() {
  stop_servers
  for pid in "${REDIS_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

wait_port() {
  for _ in $(seq 1 100); do
    port_in_use "$1" && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

port_in_use() {
  (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() { # start NAME PORT ENV... -- COMMAND...: starts a server, sets LAST_PID
  local name=$1 port=$2
  shift 2
  # Never load a server this script did not start (someone else's dev or soak server, say).
  if port_in_use "$port"; then
    echo "port $port is already in use: choose free ports with MM_PORT, SIG_PORT and BARE_PORT" >&2
    exit 1
  fi
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  "${SERVER_ON[@]}" env "${envs[@]}" "$@" >"$OUT/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  wait_port "$port"
  if ! kill -0 "$LAST_PID" 2>/dev/null; then
    echo "$name did not start: see $OUT/$name.log" >&2
    exit 1
  fi
}

loadgen() { # loadgen FILE ARGS...: one bounded run, JSON report to FILE (kept even if checks fail)
  local file=$1
  shift
  if ! timeout "$STEP_LIMIT" "${LOADGEN_ON[@]}" "$BIN/loadgen" "$@" --json --label "$LABEL" >"$file"; then
    echo "  (run reported failed checks or an error: see $file)" >&2
  fi
}

start_redis() { # start_redis PORT FLAGS...: one redis-server, in memory only (the figures are
  # Redis's own work, not the disk's)
  local port=$1
  shift
  if port_in_use "$port"; then
    echo "port $port is already in use: choose a free one with REDIS_PORT" >&2
    exit 1
  fi
  mkdir -p "$OUT/redis-$port"
  "${SERVER_ON[@]}" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT/redis-$port" "$@" \
    >"$OUT/redis-$port.log" 2>&1 &
  REDIS_PIDS+=($!)
  wait_port "$port"
}

REDIS_PORTS=()
case $BACKEND in
  memory) SERVICE_ENV=(); REDIS_ARGS=() ;;
  redis | cluster)
    command -v redis-server >/dev/null || { echo "BACKEND=$BACKEND needs redis-server (apt-get install redis-server)" >&2; exit 1; }
    if [[ $BACKEND == redis ]]; then
      REDIS_PORTS=("$REDIS_PORT")
      start_redis "$REDIS_PORT"
      REDIS_URL=redis://127.0.0.1:$REDIS_PORT
      SERVICE_ENV=(REDIS_URL="$REDIS_URL")
      REDIS_ARGS=(--redis "$REDIS_URL")
    else
      REDIS_PORTS=("$REDIS_PORT" "$((REDIS_PORT + 1))" "$((REDIS_PORT + 2))")
      for port in "${REDIS_PORTS[@]}"; do start_redis "$port" --cluster-enabled yes --cluster-config-file nodes.conf; done
      redis-cli --cluster create "${REDIS_PORTS[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$OUT/cluster.log" 2>&1
      for _ in $(seq 1 100); do
        redis-cli -p "$REDIS_PORT" cluster info | grep -q '^cluster_state:ok' && break
        sleep 0.1
      done
      REDIS_URL=$(printf 'redis://127.0.0.1:%s,' "${REDIS_PORTS[@]}")
      SERVICE_ENV=(REDIS_URL="${REDIS_URL%,}" REDIS_CLUSTER=true)
      # Redis's counters are per node; the cost figures need one Redis.
      REDIS_ARGS=()
    fi
    ;;
  *) echo "BACKEND must be memory, redis or cluster, not '$BACKEND'" >&2; exit 1 ;;
esac
if ((INSTANCES > 1)) && [[ $BACKEND == memory ]]; then
  echo "INSTANCES=$INSTANCES needs BACKEND=redis or cluster: instances share their queue and rooms through Redis" >&2
  exit 1
fi

redis_flush() { # what one run left in Redis must not meet the next run
  local port
  for port in "${REDIS_PORTS[@]}"; do
    exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'FLUSHALL\r\n' >&3 && head -c 5 <&3 >/dev/null
    exec 3>&-
  done
}

start_instances() { # starts INSTANCES all-in-one runners; sets MM_URLS, SIG_URLS and INSTANCE_PIDS
  local i mm sig
  MM_URLS="" SIG_URLS="" INSTANCE_PIDS=""
  for ((i = 0; i < INSTANCES; i++)); do
    mm=$((MM_PORT + 2 * i)) sig=$((SIG_PORT + 2 * i))
    start strangers-$i "$mm" "${COMMON_ENV[@]}" "${SERVICE_ENV[@]}" PORT="$mm" SIGNALER_PORT="$sig" ROOM_TICKET_SECRET=$SECRET \
      -- "$BIN/strangers"
    wait_port "$sig"
    MM_URLS+="${MM_URLS:+,}ws://127.0.0.1:$mm/ws"
    SIG_URLS+="${SIG_URLS:+,}ws://127.0.0.1:$sig/ws"
    INSTANCE_PIDS+="${INSTANCE_PIDS:+,}$LAST_PID"
  done
  # Let every instance hear the others' heartbeat before the load starts.
  ((INSTANCES > 1)) && sleep 3
  return 0
}

# BUILD=0 uses the release binaries already in TARGET_DIR (so sources may change meanwhile).
if [[ ${BUILD:-1} != 0 ]]; then
  echo "building release binaries into $TARGET_DIR ..." >&2
  (cd "$ROOT" && cargo build --release --workspace --bins --quiet)
fi

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/conditions.txt" >&2
if ((${#SERVER_ON[@]})); then
  echo "pinned: server on CPU $SERVER_CPUS, load generator on CPU $LOADGEN_CPUS" | tee -a "$OUT/conditions.txt" >&2
else
  echo "not pinned" | tee -a "$OUT/conditions.txt" >&2
fi
echo "code: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')" | tee -a "$OUT/conditions.txt" >&2
echo "backend: $BACKEND$([[ $BACKEND != memory ]] && echo " ($(redis-server --version | cut -d' ' -f3))"), instances: $INSTANCES$( ((SPLIT)) && echo ", peers of every room on different instances"), service log level: ${SERVICE_LOG:-default (info)}" | tee -a "$OUT/conditions.txt" >&2

MM=ws://127.0.0.1:$MM_PORT/ws
BARE=ws://127.0.0.1:$BARE_PORT/ws
for run in $(seq 1 "$RUNS"); do
  for scenario in $SCENARIOS; do
    LABEL="run $run"
    extra_var=${scenario^^}_ARGS
    read -r -a extra <<<"${!extra_var}"
    # idle holds the same number of sockets per server process on both targets.
    if [[ $scenario == idle ]]; then extra=(-c "$IDLE_CLIENTS" "${extra[@]}"); fi
    # Alternate which target goes first, so drift in machine load does not favour one.
    if ((run % 2)); then order="strangers bare"; else order="bare strangers"; fi
    for target in $order; do
      echo "run $run/$RUNS: $scenario against $target" >&2
      if [[ $target == bare ]]; then
        start bare "$BARE_PORT" -- "$BIN/bare-relay" --listen "127.0.0.1:$BARE_PORT"
        loadgen "$OUT/$scenario-bare-$run.json" "$scenario" --bare --bare-url "$BARE" --pid "$LAST_PID" "${extra[@]}"
      elif [[ $scenario == idle ]]; then
        redis_flush
        start signaler "$SIG_PORT" "${COMMON_ENV[@]}" "${SERVICE_ENV[@]}" PORT="$SIG_PORT" ROOM_TICKET_SECRET=$SECRET \
          -- "$BIN/signaler"
        sig_pid=$LAST_PID
        start matchmaker "$MM_PORT" "${COMMON_ENV[@]}" "${SERVICE_ENV[@]}" PORT="$MM_PORT" ROOM_TICKET_SECRET=$SECRET \
          SIGNALING_URL="ws://127.0.0.1:$SIG_PORT/ws" -- "$BIN/matchmaker"
        loadgen "$OUT/idle-strangers-$run.json" idle --matchmaker "$MM" --pid "$LAST_PID" --signaler-pid "$sig_pid" \
          "${REDIS_ARGS[@]}" "${extra[@]}"
      else
        redis_flush
        start_instances
        split=()
        ((SPLIT)) && split=(--signaler "$SIG_URLS")
        loadgen "$OUT/$scenario-strangers-$run.json" "$scenario" --matchmaker "$MM_URLS" --pid "$INSTANCE_PIDS" \
          "${split[@]}" "${REDIS_ARGS[@]}" "${extra[@]}"
      fi
      stop_servers
    done
  done
done

echo >&2
"$BIN/loadgen" compare "$OUT"/*-*-*.json | tee "$OUT/summary.txt"
"$BIN/loadgen" compare --markdown "$OUT"/*-*-*.json >"$OUT/summary.md"
echo "reports, logs and summary in $OUT" >&2
