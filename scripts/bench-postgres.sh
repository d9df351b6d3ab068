#!/usr/bin/env bash
# Backlog drain into PostgreSQL (docs/benchmarks.md, "PostgreSQL sink"): release build, the daemon
# as its own process with one `postgres` sink, a throwaway PostgreSQL 15 on loopback with fsync
# on. The server is crashed, BACKLOG events are queued, the server is started again, and the drain
# is timed from then until the table holds every queued event.
# Usage: scripts/bench-postgres.sh [--quick]     (--quick: 100,000 events; default 1,000,000)
# Figures land in benchmarks/results/<timestamp>-postgres/ and are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKLOG=1000000; BATCH=${BATCH:-4000}
if [ "${1:-}" = "--quick" ]; then BACKLOG=100000; fi

SCRATCH=${SCRATCH:-.build-release}
swift build -c release --scratch-path "$SCRATCH" --product gatehouse >/dev/null
swift build -c release --scratch-path "$SCRATCH" --product gatehouse-bench >/dev/null
BIN="$SCRATCH/release"
OUT="benchmarks/results/$(date -u +%Y%m%dT%H%M%SZ)-postgres"
WORK=$(mktemp -d /var/tmp/gatehouse-bench-pg.XXXXXX)
mkdir -p "$OUT"
INGEST=28180; ADMIN=29208
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/postgres-for-tests.sh stop
  rm -rf "$WORK"
}
trap cleanup EXIT
postgres_env=$(GATEHOUSE_TEST_POSTGRES_FSYNC=on scripts/postgres-for-tests.sh start)
eval "$postgres_env"
PORT=${GATEHOUSE_TEST_POSTGRES_URL##*:}; PORT=${PORT%%/*}
psql_count() { psql "$GATEHOUSE_TEST_POSTGRES_URL" -Atc "SELECT count(*) FROM bench_events" 2>/dev/null || echo 0; }

cat > "$WORK/bench.yaml" <<YAML
site: bench
state_directory: $WORK/state
disk_budget_bytes: 8GiB
status_interval_seconds: 10
log_level: notice
ingest: {host: 127.0.0.1, port: $INGEST, rate_limit_per_second: 0, max_body_bytes: 4MiB}
admin: {host: 127.0.0.1, port: $ADMIN}
queue: {commit_max_events: 4000}
devices:
$(for i in $(seq 0 49); do echo "  - {id: sim-$i, driver: generic-json, type: door-controller, auth: {token: bench-token}}"; done)
sinks:
  - name: warehouse
    type: postgres
    host: 127.0.0.1
    port: $PORT
    database: gatehouse
    user: gatehouse
    password: {env: BENCH_PG_PASSWORD}
    table: bench_events
    batch_max_events: $BATCH
    backoff_max_seconds: 0.2
YAML
export BENCH_PG_PASSWORD=gatehouse-test

"$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
DAEMON=$!; PIDS+=("$DAEMON")
for _ in $(seq 1 200); do grep -q "ingest listener ready" "$WORK/daemon.log" && break; sleep 0.05; done
# The sink creates its table and partitions on its first connection; wait for that, then crash
# the server so the backlog builds up in the gateway's queue.
for _ in $(seq 1 200); do [ "$(psql "$GATEHOUSE_TEST_POSTGRES_URL" -Atc "SELECT to_regclass('bench_events') IS NOT NULL")" = t ] && break; sleep 0.1; done
scripts/postgres-for-tests.sh halt

echo "== queueing $BACKLOG events with PostgreSQL down"
"$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token \
  --rate 0 --duration 900 --connections 32 --batch 100 --alarm-percent 1 --max-events "$BACKLOG" --json "$OUT/http-backlog.json" > /dev/null
DEPTH=$(curl -sf "http://127.0.0.1:$ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])')
echo "queued: $DEPTH events"

echo "== PostgreSQL back: draining"
scripts/postgres-for-tests.sh resume
START=$(date +%s.%N)
# Resident memory sampled through the whole drain, in kB.
RSS_MAX=0
while [ "$(psql_count)" -lt "$DEPTH" ]; do
  RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON/status")
  [ "$RSS" -gt "$RSS_MAX" ] && RSS_MAX=$RSS
  sleep 0.5
done
END=$(date +%s.%N)
ROWS=$(psql_count)
kill -TERM "$DAEMON"; wait "$DAEMON" || true

python3 - "$OUT" "$DEPTH" "$ROWS" "$START" "$END" "$BATCH" "$RSS_MAX" <<'PY' | tee "$OUT/summary.md"
import json, os, sys
out, depth, rows, start, end, batch, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
seconds = end - start
result = {"queued": depth, "rows": rows, "drain_seconds": seconds, "events_per_second": depth / seconds,
          "batch_max_events": batch, "rss_max_mb": round(rss / 1024, 1)}
json.dump(result, open(os.path.join(out, "drain-postgres.json"), "w"), indent=2)
print(f"PostgreSQL drain: {depth:,} events in {seconds:.1f} s = {depth / seconds:,.0f} events/s "
      f"(batch_max_events {batch}); rows in the table {rows:,}; daemon RSS max {result['rss_max_mb']} MB")
PY
