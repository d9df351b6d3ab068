#!/usr/bin/env bash
# The camera health benchmark behind docs/benchmarks.md ("Camera health"): release build; one
# `gatehouse-sim snapshot-camera --cameras 500` process plays 500 cameras (Digest, 640×360
# JPEGs); the daemon runs picture health on all of them at a short interval (60 s instead of the
# default 10 min, so a run takes minutes: CPU per snapshot × 500 / 600 s gives the 10-minute
# figure). Measured: daemon CPU and RSS, snapshots/s, CPU and decode+score time per snapshot,
# and the time to detect cameras switched to covered, in intervals.
# Figures land in benchmarks/results/<timestamp>-camera-health/camera-health.json.
# Usage: scripts/bench-camera-health.sh [--quick]   (--quick: 50 cameras, 20 s interval)
#
# Liveness (issue 12 item 1) runs on the same cameras: a snapshot probe every LIVENESS_INTERVAL
# seconds (default 30, the product default); at the end DOWN cameras hang (take requests, answer
# none) and the time until `gatehouse status` shows each one down is measured, in probe intervals.
# LIVENESS=0 runs picture health alone.
set -euo pipefail
cd "$(dirname "$0")/.."
CAMERAS=${CAMERAS:-500}
INTERVAL=${INTERVAL:-60}
if [ "${1:-}" = "--quick" ]; then CAMERAS=50; INTERVAL=20; fi
# Cameras switched to covered to time detection, and the hysteresis they are judged with.
COVERED=10
RAISE_AFTER=3

BENCH_NAME=camera-health; source scripts/bench-common.sh
bench_build gatehouse gatehouse-sim
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

LIVENESS=${LIVENESS:-1}
LIVENESS_INTERVAL=${LIVENESS_INTERVAL:-30}
DOWN=10
bench_liveness_device_keys() {
  [ "$LIVENESS" = 1 ] && echo ", liveness: {probe: snapshot, url: \"http://127.0.0.1:${PORTS[$1]}/cgi-bin/snapshot.cgi\", interval_seconds: $LIVENESS_INTERVAL, min_dwell_seconds: 0}"
  return 0
}
bench_liveness_config() { [ "$LIVENESS" = 1 ] && echo "liveness: {concurrency: 16, timeout_seconds: 5}"; return 0; }

INGEST=$(free_port)
ADMIN=$(free_port)
"$BIN/gatehouse-sim" snapshot-camera --cameras "$CAMERAS" > "$WORK/cameras.txt" 2> "$WORK/cameras.log" &
PIDS+=($!)
for _ in $(seq 1 600); do
  [ "$(grep -c '^snapshot camera on' "$WORK/cameras.txt" || true)" -ge "$CAMERAS" ] && break
  sleep 0.2
done
mapfile -t PORTS < <(sed -n 's#^snapshot camera on http://127.0.0.1:\([0-9]*\)/.*#\1#p' "$WORK/cameras.txt")
[ "${#PORTS[@]}" -ge "$CAMERAS" ] || { echo "only ${#PORTS[@]} of $CAMERAS cameras started" >&2; exit 1; }

{
  cat <<YAML
site: bench
state_directory: $WORK/state
status_interval_seconds: 10
log_level: notice
ingest: {host: 127.0.0.1, port: $INGEST}
admin: {host: 127.0.0.1, port: $ADMIN}
picture_health: {concurrency: 4, timeout_seconds: 10}
$(bench_liveness_config)
devices:
YAML
  for i in $(seq 0 $((CAMERAS - 1))); do
    echo "  - {id: cam-$i, driver: generic-json, vendor: dahua, type: camera, address: 127.0.0.1:${PORTS[$i]}, auth: {username: viewer, password: \"Cam!2025\", scheme: digest}, picture_health: {interval_seconds: $INTERVAL, raise_after: $RAISE_AFTER, clear_after: 2, learn_hours: 0}$(bench_liveness_device_keys "$i")}"
  done
  cat <<YAML
sinks:
  - {name: out, type: file, path: $WORK/events.ndjson}
YAML
} > "$WORK/gatehouse.yaml"

"$BIN/gatehouse" run --config "$WORK/gatehouse.yaml" > "$WORK/daemon.log" 2>&1 &
DAEMON=$!
PIDS+=($DAEMON)
for _ in $(seq 1 300); do grep -q "admin listener ready" "$WORK/daemon.log" && break; sleep 0.2; done

status_json() { "$BIN/gatehouse" status --admin "http://127.0.0.1:$ADMIN" --json; }
# utime+stime of the daemon in clock ticks, and its resident memory in KiB.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$DAEMON/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON/status"; }

uptime | tee "$OUT/uptime-before.txt"
# One interval of warm-up: every camera has had its first (staggered) snapshot.
sleep "$INTERVAL"
status_json > "$WORK/status-0.json"; T0=$(date +%s.%N); C0=$(cpu_ticks)
# Two intervals at rest.
sleep $((2 * INTERVAL))
status_json > "$WORK/status-1.json"; T1=$(date +%s.%N); C1=$(cpu_ticks); RSS=$(rss_kib)
HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$DAEMON/status")
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# Cover some lenses at once and time each camera's degradation, polled once a second.
SWITCHED=$(date +%s.%N)
for i in $(seq 0 $((COVERED - 1))); do curl -s -X POST "http://127.0.0.1:${PORTS[$i]}/control/picture?mode=covered" > /dev/null; done
: > "$WORK/detected.txt"
DEADLINE=$(( $(date +%s) + (RAISE_AFTER + 3) * INTERVAL ))
while [ "$(date +%s)" -lt "$DEADLINE" ]; do
  NOW=$(date +%s.%N)
  status_json | python3 -c '
import json, sys
now, covered, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
figures = json.load(sys.stdin)["pictureHealth"]
seen = {line.split()[0] for line in open(path)}
with open(path, "a") as detected:
    for i in range(covered):
        if figures.get(f"cam-{i}", {}).get("degraded") == "covered" and f"cam-{i}" not in seen:
            print(f"cam-{i} {now}", file=detected)
' "$NOW" "$COVERED" "$WORK/detected.txt"
  [ "$(wc -l < "$WORK/detected.txt")" -ge "$COVERED" ] && break
  sleep 1
done

# Hang cameras that were not covered and time each one's device.offline, polled once a second.
: > "$WORK/down.txt"
HUNG=0
if [ "$LIVENESS" = 1 ]; then
  HUNG=$(date +%s.%N)
  for i in $(seq "$COVERED" $((COVERED + DOWN - 1))); do curl -s -X POST "http://127.0.0.1:${PORTS[$i]}/control/answers?mode=hold" > /dev/null; done
  DEADLINE=$(( $(date +%s) + 4 * LIVENESS_INTERVAL ))
  while [ "$(date +%s)" -lt "$DEADLINE" ]; do
    NOW=$(date +%s.%N)
    status_json | python3 -c '
import json, sys
now, first, count, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
devices = {d["id"]: d for d in json.load(sys.stdin)["devices"]}
seen = {line.split()[0] for line in open(path)}
with open(path, "a") as down:
    for i in range(first, first + count):
        if devices.get(f"cam-{i}", {}).get("state") == "down" and f"cam-{i}" not in seen:
            print(f"cam-{i} {now}", file=down)
' "$NOW" "$COVERED" "$DOWN" "$WORK/down.txt"
    [ "$(wc -l < "$WORK/down.txt")" -ge "$DOWN" ] && break
    sleep 1
  done
fi
uptime | tee "$OUT/uptime-after.txt"

python3 - "$WORK" "$OUT" "$CAMERAS" "$INTERVAL" "$T0" "$T1" "$C0" "$C1" "$(getconf CLK_TCK)" "$RSS" "$HWM" "$SWITCHED" "$COVERED" "$RAISE_AFTER" "$LOAD" "$LIVENESS" "$LIVENESS_INTERVAL" "$HUNG" "$DOWN" <<'PY' | tee "$OUT/summary.txt"
import json, sys
work, out, cameras, interval, t0, t1, c0, c1, hz, rss, hwm, switched, covered, raise_after, load, liveness, liveness_interval, hung, down = sys.argv[1:]
cameras, interval, covered, raise_after = int(cameras), float(interval), int(covered), int(raise_after)
t0, t1, switched = float(t0), float(t1), float(switched)
s0 = json.load(open(f"{work}/status-0.json"))["pictureHealth"]
s1 = json.load(open(f"{work}/status-1.json"))["pictureHealth"]
snapshots = sum(f.get("snapshots", 0) for f in s1.values()) - sum(f.get("snapshots", 0) for f in s0.values())
failures = sum(f.get("failures", 0) for f in s1.values()) - sum(f.get("failures", 0) for f in s0.values())
cpu = (int(c1) - int(c0)) / int(hz)
seconds = t1 - t0
score_ms = [f["lastScoreMilliseconds"] for f in s1.values() if "lastScoreMilliseconds" in f]
detected = {line.split()[0]: float(line.split()[1]) for line in open(f"{work}/detected.txt")}
delays = sorted((t - switched) / interval for t in detected.values())
cpu_per_snapshot = cpu / max(snapshots, 1)
report = {
    "cameras": cameras, "interval_seconds": interval, "measured_seconds": round(seconds, 1),
    "snapshots": snapshots, "failures": failures, "snapshots_per_second": round(snapshots / seconds, 2),
    "daemon_cpu_percent": round(100 * cpu / seconds, 1), "cpu_ms_per_snapshot": round(1000 * cpu_per_snapshot, 2),
    "decode_score_ms_per_snapshot_mean": round(sum(score_ms) / max(len(score_ms), 1), 2),
    "daemon_rss_mib": round(int(rss) / 1024, 1), "daemon_peak_rss_mib": round(int(hwm) / 1024, 1),
    "cpu_percent_at_10_min_interval": round(100 * cpu_per_snapshot * cameras / 600, 2),
    "covered_cameras": covered, "covered_detected": len(detected), "raise_after": raise_after,
    "detect_intervals_min": round(delays[0], 2) if delays else None,
    "detect_intervals_max": round(delays[-1], 2) if delays else None,
    "load_average_during": load,
}
if liveness == "1":
    gone = sorted((float(line.split()[1]) - float(hung)) / float(liveness_interval) for line in open(f"{work}/down.txt"))
    report.update({
        "liveness_interval_seconds": float(liveness_interval), "hung_cameras": int(down), "hung_detected": len(gone),
        "down_detect_intervals_min": round(gone[0], 2) if gone else None,
        "down_detect_intervals_max": round(gone[-1], 2) if gone else None,
    })
json.dump(report, open(f"{out}/camera-health.json", "w"), indent=2)
for key, value in report.items(): print(f"{key:36} {value}")
PY
grep -E '(warning|error|critical)' "$WORK/daemon.log" | head -50 > "$OUT/daemon-warnings.log" || true
