#!/usr/bin/env bash
# MQTT in, commit before acknowledgement (docs/benchmarks.md, "MQTT in"): release build, the daemon
# as its own process with one `mqtt` device subscribed to a throwaway mosquitto on loopback, and
# `mosquitto_pub` publishing MESSAGES temperature reports at QoS 1 over one connection. The rate is
# events committed to the queue per second, from the first commit until every published message is
# committed; each message's PUBACK goes out only after that commit. The only sink points at a closed
# port, so the queue depth counts the commits.
# Usage: scripts/bench-mqtt-in.sh [--quick]     (--quick: 50,000 messages; default 300,000)
# Figures land in benchmarks/results/<timestamp>-mqtt-in/ and are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=300000; MAX_BATCH=${MAX_BATCH:-1000}
if [ "${1:-}" = "--quick" ]; then MESSAGES=50000; fi

BENCH_NAME=mqtt-in; source scripts/bench-common.sh
bench_build gatehouse
BROKER=$(free_port); INGEST=$(free_port); ADMIN=$(free_port)

# A broker that queues everything for the gateway's session and lets MAX_BATCH messages be in flight.
cat > "$WORK/mosquitto.conf" <<CONF
user root
listener $BROKER 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages $MAX_BATCH
CONF
/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" 2> "$WORK/mosquitto.log" &
PIDS+=("$!")
sleep 0.5

cat > "$WORK/bench.yaml" <<YAML
site: bench
state_directory: $WORK/state
disk_budget_bytes: 8GiB
status_interval_seconds: 10
log_level: notice
adapters_directory: $PWD/adapters
ingest: {host: 127.0.0.1, port: $INGEST}
admin: {host: 127.0.0.1, port: $ADMIN}
queue: {commit_max_events: 4000}
devices:
  - id: hub
    driver: mqtt
    type: alarm-panel
    address: mqtt://127.0.0.1:$BROKER
    options: {profile: mqtt-alarm-sensor, topic: "sensors/hub/+", client_id: gatehouse-bench-hub, max_batch: $MAX_BATCH}
sinks:
  - {name: nowhere, type: http, url: "http://127.0.0.1:9/ingest", backoff_initial_seconds: 5, backoff_max_seconds: 5}
YAML

"$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
DAEMON=$!; PIDS+=("$DAEMON")
for _ in $(seq 1 400); do grep -q "device hub is up" "$WORK/daemon.log" && break; sleep 0.05; done
grep -q "device hub is up" "$WORK/daemon.log" || { echo "the daemon did not subscribe:"; cat "$WORK/daemon.log"; exit 1; }
depth() { curl -sf "http://127.0.0.1:$ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])'; }
BASE=$(depth)   # device.online

echo "== publishing $MESSAGES messages at QoS 1"
NOW=$(date +%s)
PUB_START=$(date +%s.%N)
# In chunks of 25,000 over one connection each: one mosquitto_pub fed hundreds of thousands of
# lines at once was seen disconnected by the broker ("out of memory").
( for FIRST in $(seq 0 25000 $((MESSAGES - 1))); do
    python3 - "$FIRST" "$(( FIRST + 25000 < MESSAGES ? FIRST + 25000 : MESSAGES ))" "$NOW" <<'PY' | mosquitto_pub -h 127.0.0.1 -p "$BROKER" -q 1 -i bench-publisher -t sensors/hub/temperature -l
import sys
first, last, now = (int(a) for a in sys.argv[1:])
out = sys.stdout
for i in range(first, last):
    out.write('{"devId":"TMP-%d","type":"temperature","event":"report","value":%d,"unit":"C","ts":%d,"seq":%d}\n' % (i % 64, i % 40, now, i))
PY
  done
  date +%s.%N > "$WORK/pub-end" ) &
PUBLISHER=$!; PIDS+=("$PUBLISHER")

START=""; RSS_MAX=0; LAST=-1; STILL=0
while true; do
  D=$(( $(depth) - BASE ))
  # 30 s without a commit: something is lost or stuck; say so instead of waiting forever.
  if [ "$D" -eq "$LAST" ]; then STILL=$((STILL + 1)); else STILL=0; LAST=$D; fi
  [ "$STILL" -ge 150 ] && { echo "stuck at $D of $MESSAGES committed"; tail -5 "$WORK/mosquitto.log"; exit 1; }
  if [ -z "$START" ] && [ "$D" -gt 0 ]; then START=$(date +%s.%N); START_DEPTH=$D; fi
  RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON/status")
  [ "$RSS" -gt "$RSS_MAX" ] && RSS_MAX=$RSS
  [ "$D" -ge "$MESSAGES" ] && break
  [ -n "${VERBOSE:-}" ] && echo "committed $D"
  sleep 0.2
done
END=$(date +%s.%N)
wait "$PUBLISHER" || true
PUB_END=$(cat "$WORK/pub-end")
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$MESSAGES" "$START" "$START_DEPTH" "$END" "$PUB_START" "$PUB_END" "$RSS_MAX" "$MAX_BATCH" "$LOAD" > "$OUT/summary.json" <<'PY'
import json, sys
n, start, start_depth, end, pub_start, pub_end, rss, batch, load = sys.argv[1:]
n = int(n); start = float(start); end = float(end)
committed = n - int(start_depth)
print(json.dumps({
    "messages": n, "max_batch": int(batch),
    "committed_per_second": round(committed / (end - start)),
    "published_per_second": round(n / (float(pub_end) - float(pub_start))),
    "seconds": round(end - start, 2), "rss_max_mb": round(int(rss) / 1024, 1), "loadavg": load,
}, indent=2))
PY
cat "$OUT/summary.json"
