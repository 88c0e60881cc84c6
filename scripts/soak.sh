#!/usr/bin/env bash
# Soak: users join, signal, chat, press Next, leave and vanish, for a bounded time, while the
# server's resident memory is sampled; it must stay flat, and nothing may be left behind.
#
# Phase 1 drives the release binary with the load generator (`loadgen session`, in rounds) and
# samples /metrics every few seconds. Phase 2 runs the Rust soak (tests/soak.rs), whose users
# also vanish without closing, against its own instance of the binary.
#
#   SOAK_SECS        total seconds of each phase (default 300)
#   SOAK_ROUND_SECS  seconds per round (default 30); nothing may be left after a round
#   SOAK_USERS       simultaneous users (default 200)
#   SOAK_PORT        the matchmaker's port in phase 1 (default 18080; the signaler's is +1)
# Exits non-zero when something was left behind or memory grew by more than 10% + 2 MiB
# from the end of the first round to the end of the last.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${SOAK_SECS:-300}
round=${SOAK_ROUND_SECS:-30}
users=${SOAK_USERS:-200}
port=${SOAK_PORT:-18080}
sig_port=$((port + 1))
target_dir=${CARGO_TARGET_DIR:-target}

echo "==> building the release binary and the load generator"
cargo build --release -p strangers -p loadgen

server_pid=""
sampler_pid=""
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

metric() { # metric PORT NAME -> value (0 when absent)
  curl -fsS "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2; found=1} END {if (!found) print 0}'
}
rss_mib() { awk -v b="$(metric "$sig_port" signaler_process_resident_memory_bytes)" 'BEGIN {printf "%.1f", b / 1048576}'; }
left_behind() {
  local left=""
  for m in matchmaker_connections matchmaker_online matchmaker_queue_length matchmaker_rooms; do
    v=$(metric "$port" "$m"); [ "$v" = "0" ] || left="$left $m=$v"
  done
  for m in signaler_connections signaler_rooms; do
    v=$(metric "$sig_port" "$m"); [ "$v" = "0" ] || left="$left $m=$v"
  done
  echo "${left:- nothing}"
}

echo "==> phase 1: loadgen session, $users users, ${round}s rounds for ${secs}s"
# The load generator's users all come from one loopback address.
PORT=$port SIGNALER_PORT=$sig_port HOST=127.0.0.1 RUST_LOG=warn MAX_CONNECTIONS_PER_IP=100000 \
  "$target_dir/release/strangers" >/dev/null &
server_pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

samples=$(mktemp)
( start=$(date +%s); while true; do
    echo "$(( $(date +%s) - start )) $(rss_mib) $(metric "$port" matchmaker_online) $(metric "$sig_port" signaler_rooms)" >>"$samples"
    sleep 5
  done ) &
sampler_pid=$!

first="" last="" status=0 start=$(date +%s) n=0
printf '%7s  %9s  %s\n' "time" "rss MiB" "after the round: left behind"
while [ $(( $(date +%s) - start )) -lt "$secs" ]; do
  n=$((n + 1))
  "$target_dir/release/loadgen" session --matchmaker "ws://127.0.0.1:$port/ws" --users "$users" \
    --duration "$round" --label "soak round $n" >"/tmp/soak-round-$n.txt" 2>&1 || true
  for _ in $(seq 100); do [ "$(left_behind)" = " nothing" ] && break; sleep 0.1; done
  left=$(left_behind)
  rss=$(rss_mib)
  [ -z "$first" ] && first=$rss
  last=$rss
  printf '%6ss  %9s  %s\n' "$(( $(date +%s) - start ))" "$rss" "$left"
  [ "$left" = " nothing" ] || status=1
done
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=""
echo "memory over time (seconds, rss MiB, matchmaker online, signaler rooms):"
cat "$samples"
echo "last round's load generator report:"
cat "/tmp/soak-round-$n.txt"
rm -f "$samples"
kill "$server_pid" 2>/dev/null || true
server_pid=""
if awk -v a="$first" -v b="$last" 'BEGIN {exit !(b > a * 1.10 + 2)}'; then
  echo "phase 1: memory grew from $first MiB to $last MiB"
  status=1
else
  echo "phase 1: memory flat ($first MiB after the first round, $last MiB after the last)"
fi

echo "==> phase 2: tests/soak.rs (users also vanish without closing)"
SOAK_SECS=$secs SOAK_USERS=$users SOAK_ROUND_SECS=$round \
  cargo test --release --test soak -- --ignored --nocapture soak_memory_stays_flat || status=1

echo
[ "$status" = 0 ] && echo "soak: 1 passed, 0 failed" || echo "soak: 0 passed, 1 failed"
exit $status
