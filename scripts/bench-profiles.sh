#!/usr/bin/env bash
# Vendor profiles end to end through the daemon (docs/benchmarks.md, "Vendor profiles"):
# Zhenshi AlarmInfoPlate JSON and Hikvision ANPR multipart (XML + one ~50 KB JPEG per request),
# each closed loop and at a fixed rate, 10 s per run because the machine is shared.
# Reports events/s, daemon CPU per event (utime+stime from /proc/PID/stat over the run ÷ events)
# and the daemon's RSS while the pictures pass. Figures land in benchmarks/results/<ts>-profiles/.
# Usage: scripts/bench-profiles.sh [DURATION_SECONDS]     (env: RATE_ZHENSHI, RATE_HIKVISION, IMAGE_BYTES)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
RATE_ZHENSHI=${RATE_ZHENSHI:-10000}
RATE_HIKVISION=${RATE_HIKVISION:-2000}
IMAGE_BYTES=${IMAGE_BYTES:-50000}

BENCH_NAME=profiles; source scripts/bench-common.sh
bench_build
INGEST=${INGEST:-$(free_port)}; ADMIN=${ADMIN:-$(free_port)}; CENTRAL=${CENTRAL:-$(free_port)}

{
  cat <<YAML
site: bench-profiles
state_directory: $WORK/state
disk_budget_bytes: 8GiB
status_interval_seconds: 10
log_level: notice
adapters_directory: $PWD/adapters
ingest: {host: 127.0.0.1, port: $INGEST, rate_limit_per_second: 0, max_body_bytes: 4MiB}
admin: {host: 127.0.0.1, port: $ADMIN}
queue: {commit_max_events: 4000}
devices:
YAML
  for i in $(seq 0 19); do
    echo "  - {id: zs-$i, driver: profile, type: lpr-camera, direction: in, serial: zs-serial-$i, auth: {token: bench-token}, options: {profile: zhenshi-lpr}}"
    echo "  - {id: hk-$i, driver: profile, type: lpr-camera, direction: out, serial: \"hk-serial-$i\", auth: {token: bench-token}, options: {profile: hikvision-anpr}}"
  done
  bench_central_sink
} > "$WORK/bench.yaml"

"$BIN/gatehouse-sim" receiver --port $CENTRAL > "$WORK/central.log" 2>&1 &
PIDS+=("$!")
"$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
DAEMON=$!; PIDS+=("$DAEMON")
for _ in $(seq 1 200); do grep -q "ingest listener ready" "$WORK/daemon.log" && break; sleep 0.05; done
grep -q "ingest listener ready" "$WORK/daemon.log" || { echo "daemon did not start:"; cat "$WORK/daemon.log"; exit 1; }
TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$DAEMON/stat"; }

# Waits until the sink has delivered everything, so that a run's CPU is not the previous run's backlog.
drained() {
  for _ in $(seq 1 240); do
    depth=$(curl -sf "http://127.0.0.1:$ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])' || echo -1)
    [ "$depth" = 0 ] && return 0; sleep 0.5
  done
  echo "queue did not drain (depth $depth)"
}

run() { # name profile rate
  local name=$1 profile=$2 rate=$3 prefix=zs-
  drained
  [ "$profile" = hikvision-anpr ] && prefix=hk-
  "$BIN/gatehouse-bench" proc --pid "$DAEMON" --interval 0.5 --duration "$DURATION" --json "$OUT/proc-$name.json" > /dev/null &
  local proc=$!
  local before; before=$(cpu_ticks)
  "$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --device-prefix "$prefix" --devices 20 --token bench-token \
    --profile "$profile" --image-bytes "$IMAGE_BYTES" --rate "$rate" --duration "$DURATION" --connections 32 --json "$OUT/http-$name.json" > /dev/null
  local after; after=$(cpu_ticks)
  wait "$proc" || true
  python3 - "$OUT" "$name" "$before" "$after" "$TICKS" <<'PY'
import json, sys
out, name, before, after, ticks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
http = json.load(open(f"{out}/http-{name}.json"))
proc = json.load(open(f"{out}/proc-{name}.json"))
events = http["counts"]["succeeded"]
cpu = (after - before) / ticks
row = {"run": name, "mode": http["mode"], "offeredPerSecond": http["requestedEventsPerSecond"],
       "eventsPerSecond": round(http["achievedEventsPerSecond"]), "events": events,
       "non200": http["counts"]["requests"] - events, "p99Ms": http["latencyMs"].get("p99"),
       "cpuSeconds": round(cpu, 2), "cpuMicrosPerEvent": round(cpu * 1e6 / events, 1) if events else None,
       "rssMaxMB": proc.get("rssMaxMB")}
json.dump(row, open(f"{out}/row-{name}.json", "w"))
print(json.dumps(row))
PY
}

echo "== zhenshi-lpr (JSON): closed loop, then $RATE_ZHENSHI/s"
run zhenshi-max zhenshi-lpr 0
run zhenshi-rate zhenshi-lpr "$RATE_ZHENSHI"
echo "== hikvision-anpr (multipart, $IMAGE_BYTES B picture): closed loop, then $RATE_HIKVISION/s"
run hikvision-max hikvision-anpr 0
run hikvision-rate hikvision-anpr "$RATE_HIKVISION"
kill -TERM "$DAEMON"; wait "$DAEMON" || true
python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import glob, json, sys
rows = [json.load(open(p)) for p in sorted(glob.glob(f"{sys.argv[1]}/row-*.json"))]
print("| run | mode | offered ev/s | events/s | non-200 | p99 ms | CPU µs/event | RSS max MB |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['run']} | {r['mode']} | {r['offeredPerSecond']:.0f} | {r['eventsPerSecond']} | {r['non200']} | {r['p99Ms']} | {r['cpuMicrosPerEvent']} | {r['rssMaxMB']} |")
PY
