#!/usr/bin/env bash
# Restart with a big backlog (issue 13, item 6; docs/benchmarks.md, "Restart with a backlog"):
# release build, a queue holding BACKLOG events for a sink whose centre is down, then the time
# from starting the daemon until the ingest listener is ready (its log line) and until
# GET /readyz answers 200, three restarts. Aim: ready within 2 s with 1,000,000 events queued.
# The backlog is written straight into the queue file (one transaction, the queue's own schema
# and counters) because pushing 1,000,000 events through HTTP is not what is measured here.
# Usage: scripts/bench-restart.sh [--quick]     (--quick: 100,000 events; default 1,000,000)
#        GATEHOUSE_BIN=.build/debug/gatehouse scripts/bench-restart.sh   (another binary, no build)
set -euo pipefail
cd "$(dirname "$0")/.."
BACKLOG=1000000
if [ "${1:-}" = "--quick" ]; then BACKLOG=100000; fi

BENCH_NAME=restart; source scripts/bench-common.sh
if [ -z "${GATEHOUSE_BIN:-}" ]; then bench_build gatehouse; GATEHOUSE_BIN="$BIN/gatehouse"; fi
INGEST=$(free_port); ADMIN=$(free_port); CENTRE=$(free_port)   # nothing listens on CENTRE
{ bench_push_site; cat <<YAML
sinks:
  - name: central
    type: http
    url: http://127.0.0.1:$CENTRE/ingest
YAML
} > "$WORK/gatehouse.yaml"

start() {
  rm -f "$WORK/daemon.log"   # so the wait below cannot read the previous run's line
  "$GATEHOUSE_BIN" run --config "$WORK/gatehouse.yaml" 2> "$WORK/daemon.log" &
  PIDS+=($!); DAEMON=$!
}
stop() { kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; }
wait_ready() {
  until curl -sf -o /dev/null "http://127.0.0.1:$ADMIN/readyz"; do sleep 0.01; done
}

# Create the queue with the daemon itself, then fill it offline.
start; wait_ready; stop
python3 - "$WORK/state/queue.sqlite" "$BACKLOG" <<'PY'
import json, sqlite3, sys, time, uuid
path, count = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
now = int(time.time() * 1000)
def body(i):
    event = {"id": str(uuid.UUID(int=(now << 80) | i)), "schema": "gatehouse.event/1", "kind": "access.granted",
             "occurredAt": "2026-01-01T00:00:00Z", "receivedAt": "2026-01-01T00:00:00Z", "site": "bench",
             "device": {"id": f"sim-{i % 50}", "vendor": "bench", "type": "door-controller"},
             "subject": {"type": "card", "value": "hash:" + "ab" * 16}, "result": "granted", "priority": "access",
             "attributes": {"pad": "x" * 200}, "source": {"driver": "generic-json", "dedupKey": f"k{i}"}}
    return json.dumps(event, separators=(",", ":")).encode()
total = 0
rows = ((1, f"sim-{i % 50}", now, body(i)) for i in range(count))
def counted(rows):
    global total
    for row in rows:
        total += len(row[3]) + 48   # EventQueue.rowOverhead
        yield row
with db:
    db.executemany("INSERT INTO events(priority, device_id, received_ms, body) VALUES (?, ?, ?, ?)", counted(rows))
    for name, value in (("queued_events", count), ("queued_bytes", total)):
        db.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, value))
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
PY
SIZE=$(du -m "$WORK/state/queue.sqlite" | cut -f1)

{
  echo "restart with $BACKLOG events queued ($SIZE MB queue file), $(basename "$GATEHOUSE_BIN") $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for run in 1 2 3; do
    t0=$(date +%s%N)
    start
    until grep -qs "ingest listener ready" "$WORK/daemon.log"; do sleep 0.005; done
    t1=$(date +%s%N)
    wait_ready
    t2=$(date +%s%N)
    # One status request: it reads every sink's lag, which once counted the whole backlog.
    curl -sf -o "$WORK/status.json" "http://127.0.0.1:$ADMIN/status"
    t3=$(date +%s%N)
    depth=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["queue"]["depth"])' "$WORK/status.json")
    stop
    echo "run $run: ingest listening after $(( (t1 - t0) / 1000000 )) ms, /readyz 200 after $(( (t2 - t0) / 1000000 )) ms, one /status $(( (t3 - t2) / 1000000 )) ms, depth $depth, load average $(cut -d' ' -f1 /proc/loadavg)"
  done
} | tee "$OUT/restart.txt"
