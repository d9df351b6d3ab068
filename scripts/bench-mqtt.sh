#!/usr/bin/env bash
# Backlog drain into mosquitto (docs/benchmarks.md, "MQTT sink"): release build, the daemon as its
# own process with one `mqtt` sink (QoS 1), Debian's mosquitto on loopback with persistence.
# BACKLOG events are queued while the sink's broker is not there; the daemon is stopped, the
# broker and a QoS 1 subscriber (mosquitto_sub) are started, the daemon is started again, and the
# drain is timed from that start until the subscriber has received BACKLOG messages. The
# subscriber's event ids are then counted (distinct) and the sink's cursor read from the status.
# Usage: scripts/bench-mqtt.sh [--quick]     (--quick: 100,000 events; default 1,000,000)
#        BATCH=500 INFLIGHT=20 PROTOCOL=3.1.1 scripts/bench-mqtt.sh --quick   (other sink settings)
# Figures land in benchmarks/results/<timestamp>-mqtt/ and are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKLOG=1000000; BATCH=${BATCH:-4000}; INFLIGHT=${INFLIGHT:-1000}; PROTOCOL=${PROTOCOL:-5}
if [ "${1:-}" = "--quick" ]; then BACKLOG=100000; fi

BENCH_NAME=mqtt; source scripts/bench-common.sh
bench_build gatehouse gatehouse-bench
mkdir -p "$WORK/broker"
INGEST=$(free_port); ADMIN=$(free_port); BROKER=$(free_port)

# The broker's own limits must not be the bottleneck: mosquitto announces max_inflight_messages
# as its MQTT 5 Receive Maximum (default 20) and queues at most 1000 messages per subscriber.
cat > "$WORK/mosquitto.conf" <<CONF
user root
listener $BROKER 127.0.0.1
allow_anonymous true
persistence true
persistence_location $WORK/broker/
max_inflight_messages $INFLIGHT
max_queued_messages 0
log_dest file $WORK/broker/mosquitto.log
CONF

{ bench_push_site; cat <<YAML
sinks:
  - name: district
    type: mqtt
    host: 127.0.0.1
    port: $BROKER
    protocol: "$PROTOCOL"
    client_id: gatehouse-bench
    max_inflight_messages: $INFLIGHT
    batch_max_events: $BATCH
    backoff_max_seconds: 0.2
YAML
} > "$WORK/bench.yaml"

status() { curl -sf "http://127.0.0.1:$ADMIN/status"; }
wait_ready() { for _ in $(seq 1 400); do grep -q "ingest listener ready" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }

echo "== queueing $BACKLOG events with the broker down"
"$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon-queue.log" &
DAEMON=$!; PIDS+=("$DAEMON")
wait_ready "$WORK/daemon-queue.log"
"$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token \
  --rate 0 --duration 900 --connections 32 --batch 100 --alarm-percent 1 --max-events "$BACKLOG" --json "$OUT/http-backlog.json" > /dev/null
DEPTH=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])')
echo "queued: $DEPTH events"
# SIGTERM: the next start begins with a sink that has no reconnect backoff behind it.
kill -TERM "$DAEMON"; wait "$DAEMON" || true

/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" 2>/dev/null &
BROKER_PID=$!; PIDS+=("$BROKER_PID")
for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$BROKER) 2>/dev/null && break; sleep 0.05; done
# The consumer: QoS 1, exits after DEPTH messages; only the event ids are kept (the payload's
# top-level "id" is the one UUID-shaped "id" in an event: device ids here are sim-N).
( mosquitto_sub -h 127.0.0.1 -p "$BROKER" -V mqttv311 -q 1 -i bench-consumer -t 'gatehouse/#' -C "$DEPTH" -F '%p' \
    | grep -o '"id":"[0-9a-f]\{8\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{12\}"' > "$WORK/ids.txt" ) &
CONSUMER=$!; PIDS+=("$CONSUMER")
for _ in $(seq 1 200); do grep -q "bench-consumer 1 gatehouse/#" "$WORK/broker/mosquitto.log" 2>/dev/null && break; sleep 0.05; done

echo "== broker up: draining"
START=$(date +%s.%N)
"$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
DAEMON=$!; PIDS+=("$DAEMON")
wait_ready "$WORK/daemon.log"
# PERF=1: a CPU profile of the daemon's first 10 s of drain (perf report -i OUT/perf.data).
[ "${PERF:-0}" = 1 ] && perf record -F 499 -g -p "$DAEMON" -o "$OUT/perf.data" -- sleep 10 >/dev/null 2>&1 &
# Resident memory sampled through the whole drain, in kB; the drain ends when the subscriber has
# received DEPTH messages (it exits then). The cursor's end is noted on the way.
RSS_MAX=0; CURSOR_END=""
while kill -0 "$CONSUMER" 2>/dev/null; do
  RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON/status")
  [ "$RSS" -gt "$RSS_MAX" ] && RSS_MAX=$RSS
  if [ -z "$CURSOR_END" ] && [ "$(status | python3 -c 'import json,sys; print([s["lag"] for s in json.load(sys.stdin)["sinks"]][0])')" = 0 ]; then
    CURSOR_END=$(date +%s.%N)
  fi
  sleep 0.5
done
END=$(date +%s.%N)
wait "$CONSUMER" || true
[ -n "$CURSOR_END" ] || CURSOR_END=$END
LAG=$(status | python3 -c 'import json,sys; print([s["lag"] for s in json.load(sys.stdin)["sinks"]][0])')
# CPU seconds (user + system) of the daemon (started with the drain) and of the broker over it.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat"; }
DAEMON_CPU=$(cpu_seconds "$DAEMON"); BROKER_CPU=$(cpu_seconds "$BROKER_PID")
RECEIVED=$(wc -l < "$WORK/ids.txt"); DISTINCT=$(sort -u "$WORK/ids.txt" | wc -l)
kill -TERM "$DAEMON"; wait "$DAEMON" || true
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$OUT" "$DEPTH" "$RECEIVED" "$DISTINCT" "$START" "$END" "$CURSOR_END" "$BATCH" "$INFLIGHT" "$PROTOCOL" "$RSS_MAX" "$LAG" "$LOAD" "$DAEMON_CPU" "$BROKER_CPU" <<'PY' | tee "$OUT/summary.md"
import json, os, sys
out, depth, received, distinct = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
start, end, cursor_end = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
batch, inflight, protocol, rss, lag, load = int(sys.argv[8]), int(sys.argv[9]), sys.argv[10], int(sys.argv[11]), int(sys.argv[12]), sys.argv[13]
daemon_cpu, broker_cpu = float(sys.argv[14]), float(sys.argv[15])
seconds = end - start
result = {"queued": depth, "received": received, "distinct_ids": distinct, "drain_seconds": seconds,
          "messages_per_second": depth / seconds, "cursor_end_seconds": cursor_end - start,
          "batch_max_events": batch, "max_inflight_messages": inflight, "protocol": protocol,
          "rss_max_mb": round(rss / 1024, 1), "lag_after": lag, "load_average": load,
          "daemon_cpu_seconds": daemon_cpu, "broker_cpu_seconds": broker_cpu,
          "messages_per_daemon_cpu_second": depth / daemon_cpu if daemon_cpu else None}
json.dump(result, open(os.path.join(out, "drain-mqtt.json"), "w"), indent=2)
print(f"MQTT drain (QoS 1, protocol {protocol}): {depth:,} events in {seconds:.1f} s = {depth / seconds:,.0f} messages/s "
      f"(batch_max_events {batch}, max_inflight_messages {inflight}); subscriber received {received:,}, "
      f"{distinct:,} distinct ids; cursor at the end after {cursor_end - start:.1f} s, lag after {lag}; "
      f"daemon RSS max {result['rss_max_mb']} MB; CPU daemon {daemon_cpu} s ({depth / max(daemon_cpu, 0.1):,.0f} messages per CPU second), "
      f"broker {broker_cpu} s; load average {load}")
PY
