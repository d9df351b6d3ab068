#!/usr/bin/env bash
# uhppote driver benchmark behind docs/benchmarks-uhppote.md: release build, the daemon with N
# uhppote devices as its own process, `gatehouse-sim uhppote-bench` playing N controllers and the
# centre. Usage: scripts/bench-uhppote.sh [RATE] [DURATION] [COUNT]   (defaults 500 15 100)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-500}; DURATION=${2:-15}; COUNT=${3:-100}
SCRATCH=${SCRATCH:-.build-release}
swift build -c release --scratch-path "$SCRATCH" --product gatehouse >/dev/null
swift build -c release --scratch-path "$SCRATCH" --product gatehouse-sim >/dev/null
BIN="$SCRATCH/release"
WORK=$(mktemp -d /var/tmp/gatehouse-bench-uhppote.XXXXXX)
CENTRAL=18191; LISTEN=61999; FIRST_PORT=62000; FIRST_SERIAL=500000
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
{
  cat <<YAML
site: bench
state_directory: $WORK/state
disk_budget_bytes: 2GiB
status_interval_seconds: 10
log_level: notice
ingest: {host: 127.0.0.1, port: 0}
admin: {host: 127.0.0.1, port: 0}
devices:
YAML
  for i in $(seq 0 $((COUNT - 1))); do
    echo "  - {id: door-$i, driver: uhppote, type: door-controller, serial: \"$((FIRST_SERIAL + i))\", address: \"127.0.0.1:$((FIRST_PORT + i))\", options: {poll_interval_seconds: \"5\", listen_port: \"$LISTEN\", listen_host: 127.0.0.1}}"
  done
  cat <<YAML
sinks:
  - name: central
    type: http
    url: http://127.0.0.1:$CENTRAL/ingest
    gzip: false
    batch_max_events: 500
    backoff_max_seconds: 0.2
YAML
} > "$WORK/gatehouse.yaml"
"$BIN/gatehouse" run --config "$WORK/gatehouse.yaml" 2> "$WORK/daemon.log" &
DAEMON=$!; PIDS+=("$DAEMON")
"$BIN/gatehouse-sim" uhppote-bench --count "$COUNT" --rate "$RATE" --duration "$DURATION" --serial "$FIRST_SERIAL" \
  --port "$FIRST_PORT" --listener "127.0.0.1:$LISTEN" --receiver-port "$CENTRAL" --daemon-pid "$DAEMON"
echo "daemon CPU time (utime+stime, s): $(awk '{printf "%.1f", ($14+$15)/100}' /proc/$DAEMON/stat)"
