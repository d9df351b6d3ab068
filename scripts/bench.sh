#!/usr/bin/env bash
# The benchmark behind docs/benchmarks.md, every figure of issue 13 from one run: release build, daemon
# as its own process on loopback; the issue's comparison (closed loop, 10 connections, one ~500-byte
# event per request; then a steady 500/s), open loop at 1,000, 10,000 and 20,000/s, Zhenshi profile
# pushes, saturation, a backlog drain, RSS idle / under load / draining, CPU and bytes written per event,
# and the plain-SQLite ceiling at 10 and 100 rows per fsynced transaction, all in the same minutes.
# Figures land in benchmarks/results/<timestamp>/ as JSON; summary.md has every figure, its aim,
# the verdict and the ratios (benchmarks/summarize.py).
#
# Usage: scripts/bench.sh [--quick]      (--quick: 5 s phases and a 100,000-event backlog)
# Optional comparison targets, installed by hand (docs/benchmarks.md, "Against Fluent Bit and ThingsBoard"):
#   FLUENT_BIT=/path/to/fluent-bit   the same closed-loop-10 and 500/s phases against Fluent Bit
#                                    (http input → filesystem storage, storage.sync full → http output)
#   THINGSBOARD=1                    the same against a ThingsBoard IoT gateway (REST connector → MQTT to a
#                                    local mosquitto); TB_GATEWAY=/path/to/thingsboard-gateway if not on PATH
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${1:-}
DURATION=20; BACKLOG=1000000
if [ "$QUICK" = "--quick" ]; then DURATION=5; BACKLOG=100000; fi
# The issue's comparison sends the same ~500-byte event to every target.
EVENT_BYTES=500

BENCH_NAME=; source scripts/bench-common.sh
bench_build
INGEST=$(free_port); ADMIN=$(free_port); CENTRAL=$(free_port)

{
  bench_push_site
  # Zhenshi cameras for the profile-push phase.
  for i in $(seq 0 19); do
    echo "  - {id: zs-$i, driver: profile, type: lpr-camera, direction: in, serial: zs-serial-$i, auth: {token: bench-token}, options: {profile: zhenshi-lpr}}"
  done
  echo "adapters_directory: $PWD/adapters"
  bench_central_sink
} > "$WORK/bench.yaml"

start_daemon() {
  "$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
  DAEMON=$!; PIDS+=("$DAEMON")
  for _ in $(seq 1 200); do grep -q "ingest listener ready" "$WORK/daemon.log" && return 0; sleep 0.05; done
  echo "daemon did not start:"; cat "$WORK/daemon.log"; exit 1
}
status() { curl -sf "http://127.0.0.1:$ADMIN/status"; }
load() { # rate duration batch alarm% json [more generator options]
  local rate=$1 duration=$2 batch=$3 alarm=$4 json=$5; shift 5
  "$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token \
    --rate "$rate" --duration "$duration" --connections 64 --batch "$batch" --alarm-percent "$alarm" --json "$json" "$@"
}
sample() { # pid seconds json: RSS, write_bytes and utime+stime over a phase, in the background
  "$BIN/gatehouse-bench" proc --pid "$1" --interval 0.5 --duration "$2" --json "$3" > /dev/null &
  SAMPLER=$!
}
# Waits until the sink has delivered everything, so a phase's CPU and bytes are not the previous one's backlog.
drained() {
  local depth=-1
  for _ in $(seq 1 600); do
    depth=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])' || echo -1)
    [ "$depth" = 0 ] && return 0; sleep 0.5
  done
  echo "queue did not drain (depth $depth)"
}
succeeded() { python3 -c 'import json,sys; print(sum(json.load(open(p))["counts"]["succeeded"] * json.load(open(p))["batch"] for p in sys.argv[1:]))' "$@"; }
# Polls a receiver's --progress-json until it holds `expected` unique events (60 s at most) and keeps the count.
delivered() { # name progress-file expected
  python3 - "$1" "$2" "$3" "$OUT" <<'PY'
import json, os, sys, time
name, progress, expected, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
seen = {"unique": 0, "total": 0, "duplicates": 0}
for _ in range(240):
    if os.path.exists(progress):
        with open(progress) as f:
            seen = json.load(f)
        if seen["unique"] >= expected:
            break
    time.sleep(0.25)
seen["acknowledged"] = expected
json.dump(seen, open(f"{out}/delivered-{name}.json", "w"))
print(f"{name}: {seen['unique']:,} of {expected:,} acknowledged events delivered ({seen['duplicates']} duplicates)")
PY
}
# The issue's comparison, the same for every target: closed loop with 10 connections and one event per
# request, then a steady 500/s (idle overheads show at low rates). The sampler runs 3 s past the load so
# a forwarder's flush and delete after delivery land in the phase that caused them.
compare() { # name pid url settle-command [more generator options]
  local name=$1 pid=$2 url=$3 settle=$4; shift 4
  local common=(--url "$url" --devices 50 --token bench-token --connections 10 --batch 1 --alarm-percent 1
                --event-bytes "$EVENT_BYTES" "$@")
  echo "== $name: closed loop, 10 connections, 1 event/request"
  $settle
  sample "$pid" $((DURATION + 3)) "$OUT/proc-$name-closed10.json"
  "$BIN/gatehouse-bench" http "${common[@]}" --rate 0 --duration "$DURATION" --json "$OUT/http-$name-closed10.json" | grep -E "achieved|latency|other status|error"
  wait "$SAMPLER" || true
  echo "== $name: steady 500 events/s"
  $settle
  sample "$pid" $((DURATION + 3)) "$OUT/proc-$name-500.json"
  "$BIN/gatehouse-bench" http "${common[@]}" --rate 500 --duration "$DURATION" --json "$OUT/http-$name-500.json" | grep -E "achieved|latency|other status|error"
  wait "$SAMPLER" || true
}
wait_for_port() { # port what
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  echo "$2 did not open port $1"; return 1
}
uptime > "$OUT/load-average.txt"

echo "== plain SQLite ceiling, 10 and 100 rows per fsynced transaction"
"$BIN/gatehouse-bench" sqlite-ceiling --dir "$WORK/ceiling10" --events $((DURATION * 2500)) --batch 10 --row-bytes 520 --json "$OUT/ceiling-10.json" | grep -E "rows/s|written"
"$BIN/gatehouse-bench" sqlite-ceiling --dir "$WORK/ceiling100" --events $((DURATION * 10000)) --batch 100 --row-bytes 520 --json "$OUT/ceiling-100.json" | grep -E "rows/s|written"

echo "== receiver up, daemon up"
"$BIN/gatehouse-sim" receiver --port $CENTRAL --progress-json "$WORK/central-progress.json" > "$WORK/central.log" 2>&1 &
CENTRAL_PID=$!; PIDS+=("$CENTRAL_PID")
start_daemon
"$BIN/gatehouse-bench" proc --pid "$DAEMON" --interval 0.5 --duration 5 --json "$OUT/proc-idle.json" > /dev/null

compare gatehouse "$DAEMON" "http://127.0.0.1:$INGEST" drained

for rate in 1000 10000; do
  echo "== open loop at $rate events/s"
  drained
  sample "$DAEMON" "$DURATION" "$OUT/proc-$rate.json"
  load "$rate" "$DURATION" 1 1 "$OUT/http-$rate.json" | grep -E "achieved|latency"
  wait "$SAMPLER" || true
done
echo "== open loop at 20,000 single events/s, 256 connections"
drained
"$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token --rate 20000 --duration "$DURATION" \
  --connections 256 --json "$OUT/http-20000.json" | grep -E "achieved|latency"
echo "== Zhenshi profile pushes, closed loop, 64 connections"
drained
sample "$DAEMON" "$DURATION" "$OUT/proc-zhenshi.json"
"$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --device-prefix zs- --devices 20 --token bench-token --profile zhenshi-lpr \
  --rate 0 --duration "$DURATION" --connections 64 --json "$OUT/http-zhenshi.json" | grep -E "achieved|latency"
wait "$SAMPLER" || true

echo "== saturation (closed loop, 64 connections), one event per request and 20 per request"
drained
status > "$OUT/status-before-max.json"
sample "$DAEMON" $((DURATION + 3)) "$OUT/proc-max.json"
load 0 "$DURATION" 1 1 "$OUT/http-max.json" | grep -E "achieved|latency"
wait "$SAMPLER" || true
status > "$OUT/status-after-max.json"
load 0 "$DURATION" 20 1 "$OUT/http-max-batch20.json" | grep -E "achieved|latency"
status > "$OUT/status-after-batch.json"
delivered gatehouse "$WORK/central-progress.json" \
  "$(succeeded "$OUT"/http-gatehouse-*.json "$OUT"/http-1000.json "$OUT"/http-10000.json "$OUT"/http-20000.json "$OUT"/http-zhenshi.json "$OUT"/http-max*.json)"

echo "== backlog: centre down, $BACKLOG events queued, then alarms, then centre back"
kill "$CENTRAL_PID"; wait "$CENTRAL_PID" 2>/dev/null || true
sleep 1
"$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token \
  --rate 0 --duration 600 --connections 32 --batch 100 --alarm-percent 0 --max-events "$BACKLOG" --json "$OUT/http-backlog.json" > /dev/null
load 50 2 1 100 "$OUT/http-alarms.json" > /dev/null
DEPTH=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])')
echo "queued: $DEPTH events"
# RSS over the whole drain: the sampler stops when the receiver writes its figures.
"$BIN/gatehouse-bench" proc --pid "$DAEMON" --interval 0.5 --duration 900 --until-exists "$OUT/drain.json" --json "$OUT/proc-drain.json" > /dev/null &
PROC=$!
"$BIN/gatehouse-sim" receiver --port $CENTRAL --expect "$DEPTH" --timeout 900 --json "$OUT/drain.json"
wait "$PROC" || true
kill -TERM "$DAEMON"; wait "$DAEMON" || true
echo "daemon exit status: $?"

if [ -n "${FLUENT_BIT:-}" ]; then
  FB_PORT=$(free_port); FB_CENTRAL=$(free_port)
  "$BIN/gatehouse-sim" receiver --port "$FB_CENTRAL" --id-key dedupKey --progress-json "$WORK/fb-progress.json" > "$WORK/fb-central.log" 2>&1 &
  PIDS+=("$!")
  mkdir -p "$WORK/fluent-bit-storage"
  # The configuration docs/benchmarks.md records: replies after the chunk is written to its
  # memory-mapped file, one msync per flush (storage.sync full), forwarded as JSON arrays.
  cat > "$OUT/fluent-bit.conf" <<CONF
[SERVICE]
    flush             1
    grace             2
    log_level         warn
    http_server       off
    storage.path      $WORK/fluent-bit-storage
    storage.sync      full
    storage.checksum  off

[INPUT]
    name                      http
    listen                    127.0.0.1
    port                      $FB_PORT
    successful_response_code  200
    storage.type              filesystem

[OUTPUT]
    name           http
    match          *
    host           127.0.0.1
    port           $FB_CENTRAL
    uri            /events
    format         json
    json_date_key  false
    retry_limit    no_limits
CONF
  "$FLUENT_BIT" -c "$OUT/fluent-bit.conf" > "$WORK/fluent-bit.log" 2>&1 &
  FB=$!; PIDS+=("$FB")
  wait_for_port "$FB_PORT" "Fluent Bit"
  "$FLUENT_BIT" --version | head -1 > "$OUT/fluent-bit-version.txt"
  "$BIN/gatehouse-bench" proc --pid "$FB" --interval 0.5 --duration 5 --json "$OUT/proc-fluentbit-idle.json" > /dev/null
  compare fluentbit "$FB" "http://127.0.0.1:$FB_PORT" "sleep 3"
  delivered fluentbit "$WORK/fb-progress.json" "$(succeeded "$OUT"/http-fluentbit-*.json)"
  kill "$FB"; wait "$FB" 2>/dev/null || true
fi

if [ -n "${THINGSBOARD:-}" ]; then
  TB_GATEWAY=${TB_GATEWAY:-$(command -v thingsboard-gateway || true)}
  if [ -z "$TB_GATEWAY" ] || ! command -v mosquitto > /dev/null; then
    echo "== ThingsBoard: skipped (no thingsboard-gateway on PATH and no TB_GATEWAY, or no mosquitto; docs/benchmarks.md says how to install them)"
  else
    TB_PYTHON=$(dirname "$TB_GATEWAY")/python
    TB_PORT=$(free_port); MQTT_PORT=$(free_port)
    mkdir -p "$WORK/thingsboard/config" "$WORK/thingsboard/data" "$WORK/thingsboard/logs"
    # The gateway's own log settings, at WARNING: INFO logs a line per request.
    sed 's/"INFO"/"WARNING"/g' "$("$TB_PYTHON" -c 'import os, thingsboard_gateway as t; print(os.path.dirname(t.__file__))')/config/logs.json" \
      > "$WORK/thingsboard/config/logs.json"
    # The configuration docs/benchmarks.md records: the REST connector as the HTTP input, SQLite
    # storage (WAL, synchronous=NORMAL, the gateway's own setting), MQTT to a stand-in server.
    cat > "$OUT/thingsboard-gateway.json" <<JSON
{
  "thingsboard": {
    "host": "127.0.0.1", "port": $MQTT_PORT, "remoteShell": false, "remoteConfiguration": false,
    "statistics": {"enable": false, "statsSendPeriodInSeconds": 3600},
    "security": {"type": "accessToken", "accessToken": "bench"}, "qos": 1,
    "checkingDeviceActivity": {"checkDeviceInactivity": false}
  },
  "storage": {"type": "sqlite", "data_file_path": "$WORK/thingsboard/data/", "messages_ttl_check_in_hours": 1,
              "messages_ttl_in_days": 7, "max_read_records_count": 1000},
  "grpc": {"enabled": false},
  "connectors": [{"type": "rest", "name": "REST", "configuration": "rest.json"}]
}
JSON
    cat > "$OUT/thingsboard-rest.json" <<JSON
{
  "server": {"host": "127.0.0.1", "port": "$TB_PORT", "SSL": false},
  "logLevel": "WARNING",
  "mapping": [{
    "endpoint": "/v1/devices/{device}/events", "HTTPMethods": ["POST"],
    "response": {"responseExpected": false}, "security": {"type": "anonymous"},
    "converter": {
      "type": "json",
      "deviceInfo": {"deviceNameExpressionSource": "constant", "deviceNameExpression": "bench-door",
                     "deviceProfileExpressionSource": "constant", "deviceProfileExpression": "default"},
      "attributes": [],
      "timeseries": [
        {"type": "string", "key": "kind", "value": "\${kind}"},
        {"type": "string", "key": "occurredAt", "value": "\${occurredAt}"},
        {"type": "string", "key": "point", "value": "\${point}"},
        {"type": "string", "key": "direction", "value": "\${direction}"},
        {"type": "string", "key": "dedupKey", "value": "\${dedupKey}"},
        {"type": "string", "key": "note", "value": "\${attributes.note}"}
      ]
    }
  }],
  "requestsMapping": {"attributeRequests": [], "attributeUpdates": [], "serverSideRpc": []}
}
JSON
    cp "$OUT/thingsboard-gateway.json" "$WORK/thingsboard/config/tb_gateway.json"
    cp "$OUT/thingsboard-rest.json" "$WORK/thingsboard/config/rest.json"
    mosquitto -p "$MQTT_PORT" > "$WORK/mosquitto.log" 2>&1 &
    PIDS+=("$!")
    sleep 0.5
    "$TB_PYTHON" benchmarks/thingsboard-standin.py "$MQTT_PORT" "$WORK/tb-progress.json" > "$WORK/tb-standin.log" 2>&1 &
    PIDS+=("$!")
    (cd "$WORK/thingsboard" && TB_GW_CONFIG_DIR="$WORK/thingsboard/config" exec "$TB_GATEWAY" > "$WORK/thingsboard.log" 2>&1) &
    TB=$!; PIDS+=("$TB")
    wait_for_port "$TB_PORT" "the ThingsBoard gateway's REST connector"
    "$TB_PYTHON" -m pip show thingsboard-gateway 2>/dev/null | grep '^Version' > "$OUT/thingsboard-version.txt" || true
    "$BIN/gatehouse-bench" proc --pid "$TB" --interval 0.5 --duration 5 --json "$OUT/proc-thingsboard-idle.json" > /dev/null
    compare thingsboard "$TB" "http://127.0.0.1:$TB_PORT" "sleep 3"
    delivered thingsboard "$WORK/tb-progress.json" "$(succeeded "$OUT"/http-thingsboard-*.json)"
    kill "$TB"; wait "$TB" 2>/dev/null || true
  fi
fi

python3 benchmarks/summarize.py "$OUT" | tee "$OUT/summary.md"
