#!/usr/bin/env bash
# Backlog drain into PostgreSQL (docs/benchmarks.md, "PostgreSQL sink"): release build, the daemon
# as its own process with one `postgres` sink, a throwaway PostgreSQL 15 on loopback with fsync
# on. The server is crashed, BACKLOG events are queued, the server is started again, and the drain
# is timed from then until the table holds every queued event.
# Usage: scripts/bench-postgres.sh [--quick]     (--quick: 100,000 events; default 1,000,000)
#        BATCH=4000 (the sink's batch_max_events); CONNECTIONS=2 (the sink's connections, its default)
#        CONNECTIONS=0 leaves the key out (a build from before it); BIN_OVERRIDE=dir runs the
#        gatehouse and gatehouse-bench binaries in dir instead of building (e.g. a "before" build)
#        PERF=1: a CPU profile of the daemon's first 10 s of drain (perf report -i OUT/perf.data)
#        PG_SETTINGS="max_wal_size=8GB …" (server settings, applied by the restart before the drain;
#        "default" keeps initdb's; the default is docs/district.md's recommendation for an ingest table)
# Figures land in benchmarks/results/<timestamp>-postgres/ and are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKLOG=1000000; BATCH=${BATCH:-4000}; CONNECTIONS=${CONNECTIONS:-2}
# What a DBA sets for an ingest table: checkpoints (and the full-page writes after each) kept out
# of a drain, the table's hot pages in shared memory. fsync and synchronous_commit stay on.
PG_SETTINGS=${PG_SETTINGS:-max_wal_size=8GB checkpoint_timeout=30min shared_buffers=1GB wal_buffers=64MB}
if [ "${1:-}" = "--quick" ]; then BACKLOG=100000; fi

BENCH_NAME=postgres; source scripts/bench-common.sh
if [ -n "${BIN_OVERRIDE:-}" ]; then BIN=$BIN_OVERRIDE; else bench_build gatehouse gatehouse-bench; fi
INGEST=$(free_port); ADMIN=$(free_port)
bench_cleanup_extra() { scripts/postgres-for-tests.sh stop; }
postgres_env=$(GATEHOUSE_TEST_POSTGRES_FSYNC=on scripts/postgres-for-tests.sh start)
eval "$postgres_env"
PORT=${GATEHOUSE_TEST_POSTGRES_URL##*:}; PORT=${PORT%%/*}
psql_count() { psql "$GATEHOUSE_TEST_POSTGRES_URL" -Atc "SELECT count(*) FROM bench_events" 2>/dev/null || echo 0; }

{ bench_push_site; cat <<YAML
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
$([ "$CONNECTIONS" = 0 ] || echo "    connections: $CONNECTIONS")
    backoff_max_seconds: 0.2
YAML
} > "$WORK/bench.yaml"
export BENCH_PG_PASSWORD=gatehouse-test

"$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
DAEMON=$!; PIDS+=("$DAEMON")
for _ in $(seq 1 200); do grep -q "ingest listener ready" "$WORK/daemon.log" && break; sleep 0.05; done
# The sink creates its table and partitions on its first connection; wait for that, then crash
# the server so the backlog builds up in the gateway's queue.
for _ in $(seq 1 200); do [ "$(psql "$GATEHOUSE_TEST_POSTGRES_URL" -Atc "SELECT to_regclass('bench_events') IS NOT NULL")" = t ] && break; sleep 0.1; done
if [ "$PG_SETTINGS" != default ]; then
  for setting in $PG_SETTINGS; do psql "$GATEHOUSE_TEST_POSTGRES_URL" -qc "ALTER SYSTEM SET ${setting%%=*} = '${setting#*=}'"; done
fi
# WAL position before the crash: the drain's WAL is everything written from here (the restart's
# end-of-recovery checkpoint adds a few kB).
WAL_START=$(psql "$GATEHOUSE_TEST_POSTGRES_URL" -Atc "SELECT pg_current_wal_lsn()")
scripts/postgres-for-tests.sh halt

echo "== queueing $BACKLOG events with PostgreSQL down"
"$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token \
  --rate 0 --duration 900 --connections 32 --batch 100 --alarm-percent 1 --max-events "$BACKLOG" --json "$OUT/http-backlog.json" > /dev/null
DEPTH=$(curl -sf "http://127.0.0.1:$ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])')
echo "queued: $DEPTH events"

# The event the sink forwards last (alarms go first; then the newest of the lowest priority
# queued). Each batch is sent only after the previous COMMIT, so when this one is in the table
# every event is (the count below checks it). Polling for it by key costs the server nothing,
# where a count(*) over the growing table every half second took CPU from the drain it was timing.
LAST_ID=$(python3 - "$WORK/state/queue.sqlite" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
body = db.execute("SELECT body FROM events ORDER BY priority ASC, seq DESC LIMIT 1").fetchone()[0]
print(json.loads(body)["id"])
PY
)
psql_has_last() { psql "$GATEHOUSE_TEST_POSTGRES_URL" -Atc "SELECT count(*) FROM bench_events WHERE id = '$LAST_ID'" 2>/dev/null || echo 0; }

echo "== PostgreSQL back: draining"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# CPU seconds (user + system) of a process, and of every child of the PostgreSQL postmaster (the
# sink's backends, the WAL writer, the checkpointer): where the drain's time goes.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
postgres_cpu() {
  local pm; pm=$(head -1 "$GATEHOUSE_TEST_POSTGRES_DIR/data/postmaster.pid")
  # The postmaster's own fields 16 and 17 hold the children that already exited (the pollers' sessions).
  { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15 + $16 + $17) / hz}' "/proc/$pm/stat"; for c in $(cat "/proc/$pm/task/$pm/children"); do cpu_of "$c" 2>/dev/null || true; done; } | awk '{s += $1} END {print s}'
}
DAEMON_CPU_START=$(cpu_of "$DAEMON")
scripts/postgres-for-tests.sh resume
START=$(date +%s.%N)
[ "${PERF:-0}" = 1 ] && perf record -F 499 -g -p "$DAEMON" -o "$OUT/perf.data" -- sleep 10 >/dev/null 2>&1 &
# Checkpoints during the drain (each followed by full-page images of the pages it touches next)
# and buffers the backends had to write out themselves: what the server settings are for.
bgwriter() { psql "$GATEHOUSE_TEST_POSTGRES_URL" -Atc "SELECT checkpoints_timed + checkpoints_req, buffers_backend FROM pg_stat_bgwriter"; }
BGWRITER_START=$(bgwriter)
# Resident memory sampled through the whole drain, in kB.
RSS_MAX=0
while [ "$(psql_has_last)" != 1 ]; do
  RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON/status")
  [ "$RSS" -gt "$RSS_MAX" ] && RSS_MAX=$RSS
  sleep 0.2
done
END=$(date +%s.%N)
ROWS=$(psql_count)
# Bounded: a quarantined (refused) event would never arrive; the summary then shows the shortfall.
for _ in $(seq 1 300); do
  [ "$ROWS" -ge "$DEPTH" ] && break
  sleep 0.1; ROWS=$(psql_count); END=$(date +%s.%N)
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BGWRITER_END=$(bgwriter)
CHECKPOINTS=$(( ${BGWRITER_END%|*} - ${BGWRITER_START%|*} )); BACKEND_WRITES=$(( ${BGWRITER_END#*|} - ${BGWRITER_START#*|} ))
WAL_BYTES=$(psql "$GATEHOUSE_TEST_POSTGRES_URL" -Atc "SELECT pg_current_wal_lsn() - '$WAL_START'::pg_lsn")
# The sink's own backends (they connected after the restart, so their CPU is the drain's): the
# server's work per row, apart from the WAL writer, the checkpointer and the polling sessions.
SINK_BACKENDS=$(psql "$GATEHOUSE_TEST_POSTGRES_URL" -Atc "SELECT pid FROM pg_stat_activity WHERE application_name = 'gatehouse/warehouse'")
BACKEND_CPU=$(for pid in $SINK_BACKENDS; do cpu_of "$pid" 2>/dev/null || true; done | awk '{s += $1} END {print s + 0}')
DAEMON_CPU=$(awk -v a="$DAEMON_CPU_START" -v b="$(cpu_of "$DAEMON")" 'BEGIN {print b - a}')
POSTGRES_CPU=$(postgres_cpu)
kill -TERM "$DAEMON"; wait "$DAEMON" || true

python3 - "$OUT" "$DEPTH" "$ROWS" "$START" "$END" "$BATCH" "$RSS_MAX" "$LOAD_START" "$LOAD_END" "$DAEMON_CPU" "$POSTGRES_CPU" "$PG_SETTINGS" "$CHECKPOINTS" "$BACKEND_WRITES" "$WAL_BYTES" "$BACKEND_CPU" "$CONNECTIONS" <<'PY' | tee "$OUT/summary.md"
import json, os, sys
out, depth, rows, start, end, batch, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
seconds = end - start
result = {"queued": depth, "rows": rows, "drain_seconds": seconds, "events_per_second": depth / seconds,
          "batch_max_events": batch, "rss_max_mb": round(rss / 1024, 1),
          "load_average_start": sys.argv[8], "load_average_end": sys.argv[9],
          "daemon_cpu_seconds": float(sys.argv[10]), "postgres_cpu_seconds": float(sys.argv[11]),
          "server_settings": sys.argv[12], "checkpoints": int(sys.argv[13]), "buffers_written_by_backends": int(sys.argv[14]),
          "wal_bytes": int(sys.argv[15]), "sink_backend_cpu_seconds": float(sys.argv[16]), "connections": int(sys.argv[17])}
# Figures that do not depend on the box's load: work per row, whatever the rate.
per_row = {"daemon_cpu_us_per_event": result["daemon_cpu_seconds"] / depth * 1e6,
           "postgres_cpu_us_per_row": result["postgres_cpu_seconds"] / depth * 1e6,
           "sink_backend_cpu_s_per_100k_rows": result["sink_backend_cpu_seconds"] / depth * 1e5,
           "wal_bytes_per_row": result["wal_bytes"] / depth}
result.update(per_row)
json.dump(result, open(os.path.join(out, "drain-postgres.json"), "w"), indent=2)
print(f"PostgreSQL drain: {depth:,} events in {seconds:.1f} s = {depth / seconds:,.0f} events/s "
      f"(batch_max_events {batch}, connections {sys.argv[17]}); rows in the table {rows:,}; daemon RSS max {result['rss_max_mb']} MB; "
      f"load average {sys.argv[8]} at the start, {sys.argv[9]} at the end; CPU seconds: daemon "
      f"{float(sys.argv[10]):.1f}, PostgreSQL {float(sys.argv[11]):.1f}; server settings: {sys.argv[12]}; "
      f"checkpoints during the drain {sys.argv[13]}, buffers written by backends {sys.argv[14]}")
print(f"Per row: daemon CPU {per_row['daemon_cpu_us_per_event']:.1f} µs/event; PostgreSQL CPU {per_row['postgres_cpu_us_per_row']:.1f} µs/row "
      f"(the sink's backends alone {per_row['sink_backend_cpu_s_per_100k_rows']:.2f} s per 100,000 rows); WAL {per_row['wal_bytes_per_row']:.0f} bytes/row")
PY
