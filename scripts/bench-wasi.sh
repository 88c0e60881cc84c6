#!/usr/bin/env bash
# Requests per second of the WebAssembly component under `wasmtime serve`, for matchbox's
# poll/signal flow: two peers join, then one client, on one kept-alive connection, posts a signal
# from the first to the second and polls the second's events, over and over for SECONDS (default
# 10). Loopback only; the loop is bounded in time. Prints the size of the component and the rate.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-10}
cargo build -q -p signaler-wasi --target wasm32-wasip2 --release
wasm="$(pwd)/${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/signaler_wasi.wasm"
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$dir" && exec "${WASMTIME:-wasmtime}" serve --addr "127.0.0.1:$port" -S common --dir .::/ "$wasm") 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
echo "component: $(stat -c %s "$wasm") bytes"
python3 - "$port" "$seconds" <<'PY'
import http.client, json, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
def call(method, path, body=None, headers={}):
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()
a = json.loads(call("GET", "/poll/bench")[1])["peer_id"]
b = json.loads(call("GET", "/poll/bench")[1])["peer_id"]
signal = json.dumps({"Signal": {"receiver": b, "data": {"IceCandidate": "candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host"}}})
requests, started = 0, time.monotonic()
while time.monotonic() - started < seconds:
    status, _ = call("POST", "/signal", signal, {"X-Peer-Id": a, "Content-Type": "application/json"})
    assert status == 204, status
    status, body = call("GET", f"/poll/bench?peer_id={b}")
    assert status == 200 and json.loads(body)["events"], body
    requests += 2
elapsed = time.monotonic() - started
print(f"poll/signal flow: {requests} requests in {elapsed:.1f} s, {requests / elapsed:.0f} requests/s (one client, sequential)")
PY
