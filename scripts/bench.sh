#!/usr/bin/env bash
# The benchmark behind docs/benchmarks.md: release build, daemon as its own process on loopback,
# open-loop load at fixed rates, saturation, a 1,000,000-event backlog drain, the SQLite ceiling.
# Figures land in benchmarks/results/<timestamp>/ as JSON, and a summary is printed.
# Usage: scripts/bench.sh [--quick]      (--quick: shorter runs and a 100,000-event backlog)
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${1:-}
DURATION=20; BACKLOG=1000000
if [ "$QUICK" = "--quick" ]; then DURATION=5; BACKLOG=100000; fi

BENCH_NAME=; source scripts/bench-common.sh
bench_build
INGEST=$(free_port); ADMIN=$(free_port); CENTRAL=$(free_port)

{
  bench_push_site
  cat <<YAML
sinks:
  - name: central
    type: http
    url: http://127.0.0.1:$CENTRAL/events
    gzip: false
    batch_max_events: 2000
    backoff_max_seconds: 0.2
YAML
} > "$WORK/bench.yaml"

start_daemon() {
  "$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
  DAEMON=$!; PIDS+=("$DAEMON")
  for _ in $(seq 1 200); do grep -q "ingest listener ready" "$WORK/daemon.log" && return 0; sleep 0.05; done
  echo "daemon did not start:"; cat "$WORK/daemon.log"; exit 1
}
status() { curl -sf "http://127.0.0.1:$ADMIN/status"; }
load() { # rate duration batch alarm% json
  "$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token \
    --rate "$1" --duration "$2" --connections 64 --batch "$3" --alarm-percent "$4" --json "$5"
}

echo "== plain SQLite ceiling"
"$BIN/gatehouse-bench" sqlite-ceiling --dir "$WORK/ceiling" --events 200000 --batch 500 --row-bytes 520 --json "$OUT/ceiling.json"
# The same commit size as the daemon reaches at saturation with one event per request (~20).
"$BIN/gatehouse-bench" sqlite-ceiling --dir "$WORK/ceiling20" --events 100000 --batch 20 --row-bytes 520 --json "$OUT/ceiling-20.json"

echo "== receiver up, daemon up"
"$BIN/gatehouse-sim" receiver --port $CENTRAL > "$WORK/central.log" 2>&1 &
CENTRAL_PID=$!; PIDS+=("$CENTRAL_PID")
start_daemon
"$BIN/gatehouse-bench" proc --pid "$DAEMON" --interval 0.5 --duration 5 --json "$OUT/proc-idle.json"

for rate in 1000 10000; do
  echo "== open loop at $rate events/s"
  "$BIN/gatehouse-bench" proc --pid "$DAEMON" --interval 1 --duration "$DURATION" --json "$OUT/proc-$rate.json" > /dev/null &
  load "$rate" "$DURATION" 1 1 "$OUT/http-$rate.json"
  wait $!
done

echo "== saturation (closed loop), one event per request and 20 per request"
status > "$OUT/status-before-max.json"
"$BIN/gatehouse-bench" proc --pid "$DAEMON" --interval 1 --duration "$DURATION" --json "$OUT/proc-max.json" > /dev/null &
load 0 "$DURATION" 1 1 "$OUT/http-max.json"
wait $!
status > "$OUT/status-after-max.json"
load 0 "$DURATION" 20 1 "$OUT/http-max-batch20.json"
status > "$OUT/status-after-batch.json"

echo "== backlog: centre down, $BACKLOG events queued, then alarms, then centre back"
kill "$CENTRAL_PID"; wait "$CENTRAL_PID" 2>/dev/null || true
sleep 1
"$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token \
  --rate 0 --duration 600 --connections 32 --batch 100 --alarm-percent 0 --max-events "$BACKLOG" --json "$OUT/http-backlog.json" > /dev/null
load 50 2 1 100 "$OUT/http-alarms.json" > /dev/null
DEPTH=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])')
echo "queued: $DEPTH events"
"$BIN/gatehouse-bench" proc --pid "$DAEMON" --interval 0.5 --duration 8 --json "$OUT/proc-drain.json" > /dev/null &
PROC=$!
"$BIN/gatehouse-sim" receiver --port $CENTRAL --expect "$DEPTH" --timeout 900 --json "$OUT/drain.json"
wait "$PROC" || true
kill -TERM "$DAEMON"; wait "$DAEMON" || true
echo "daemon exit status: $?"

python3 benchmarks/summarize.py "$OUT" | tee "$OUT/summary.md"
