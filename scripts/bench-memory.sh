#!/usr/bin/env bash
# Resident memory of the daemon (issue 10's camera aim is bench-cameras.sh; this is issue 13 item 3,
# docs/benchmarks.md "Memory"): idle, under open-loop load and at saturation, then while draining a
# backlog to the central store, each with VmRSS sampled (gatehouse-bench proc) and a breakdown of the
# resident set by mapping (benchmarks/smaps-breakdown.py) at the end of the phase.
# Figures land in benchmarks/results/<timestamp>-memory/ (summary.txt, rss-*.txt, smaps-*.txt).
# Usage: scripts/bench-memory.sh [--quick] [--static] [--daemon PATH] [--backlog N] [--seconds S]
#   --quick: a 100,000-event backlog and 5 s load phases (about 2 minutes)
#   --static: the daemon linked as the Debian package links it (the figures that count against the aims)
#   --daemon: measure this gatehouse binary instead of building one (A/B runs of two builds)
#   --backlog: events queued while the centre is down, then drained (default 1,000,000)
#   --seconds: length of each load phase (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
STATIC=no; BACKLOG=1000000; PHASE=20; DAEMON_BIN=
while [ $# -gt 0 ]; do
  case "$1" in
    --static) STATIC=yes ;;
    --quick) BACKLOG=100000; PHASE=5 ;;
    --daemon) DAEMON_BIN=$2; shift ;;
    --backlog) BACKLOG=$2; shift ;;
    --seconds) PHASE=$2; shift ;;
    *) echo "bench-memory: unknown argument '$1' (expected --quick, --static, --daemon PATH, --backlog N or --seconds S)" >&2; exit 2 ;;
  esac
  shift
done

BENCH_NAME=memory; source scripts/bench-common.sh
bench_build gatehouse-bench gatehouse-sim
DAEMON_BIN=${DAEMON_BIN:-$(bench_daemon)}
INGEST=$(free_port); ADMIN=$(free_port); CENTRAL=$(free_port)
{ bench_push_site; bench_central_sink; } > "$WORK/bench.yaml"

echo "daemon: $DAEMON_BIN" | tee "$OUT/daemon.txt"
uptime | tee "$OUT/uptime-before.txt"
"$BIN/gatehouse-sim" receiver --port "$CENTRAL" > "$WORK/central.log" 2>&1 &
CENTRAL_PID=$!; PIDS+=("$CENTRAL_PID")
"$DAEMON_BIN" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
DAEMON=$!; PIDS+=("$DAEMON")
for _ in $(seq 1 400); do grep -q "ingest listener ready" "$WORK/daemon.log" && break; sleep 0.05; done
grep -q "ingest listener ready" "$WORK/daemon.log" || { echo "daemon did not start:"; cat "$WORK/daemon.log"; exit 1; }

# phase NAME: samples VmRSS (kB, every 250 ms) while the command after it runs, then records the
# resident set by mapping and the thread count.
phase() {
  local name=$1; shift
  ( while kill -0 "$DAEMON" 2>/dev/null; do awk '/^VmRSS/ {print $2}' "/proc/$DAEMON/status"; sleep 0.25; done ) > "$OUT/rss-$name.txt" 2>/dev/null &
  local sampler=$!
  # The daemon's CPU (utime + stime, clock ticks) over the phase: with the load generator's count, CPU per event.
  local ticks_before; ticks_before=$(awk '{print $14 + $15}' "/proc/$DAEMON/stat")
  "$@"
  echo $(( $(awk '{print $14 + $15}' "/proc/$DAEMON/stat") - ticks_before )) > "$OUT/cpu-ticks-$name.txt"
  python3 benchmarks/smaps-breakdown.py "$DAEMON" --json "$OUT/smaps-$name.json" > "$OUT/smaps-$name.txt"
  ls "/proc/$DAEMON/task" | wc -l > "$OUT/threads-$name.txt"
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  printf '%-12s RSS max %6.1f MB, last %6.1f MB, threads %s\n' "$name" \
    "$(sort -n "$OUT/rss-$name.txt" | tail -1 | awk '{print $1 / 1024}')" \
    "$(tail -1 "$OUT/rss-$name.txt" | awk '{print $1 / 1024}')" "$(cat "$OUT/threads-$name.txt")" | tee -a "$OUT/summary.txt"
}
load() { # rate seconds batch [extra…]
  "$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token \
    --rate "$1" --duration "$2" --connections 64 --batch "$3" --alarm-percent 1 "${@:4}" > "$OUT/load-rate$1-batch$3.txt"
}
depth() { curl -sf "http://127.0.0.1:$ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])'; }

phase idle sleep 10
phase load-1000 load 1000 "$PHASE" 1
phase saturation load 0 "$PHASE" 1
phase idle-after sleep 10
kill "$CENTRAL_PID"; wait "$CENTRAL_PID" 2>/dev/null || true
phase backlog load 0 3600 100 --connections 32 --max-events "$BACKLOG"
DEPTH=$(depth); echo "queued: $DEPTH events" | tee -a "$OUT/summary.txt"
"$BIN/gatehouse-sim" receiver --port "$CENTRAL" --expect "$DEPTH" --timeout 1800 --json "$OUT/drain.json" > "$WORK/central.log" 2>&1 &
RECEIVER=$!; PIDS+=("$RECEIVER")
phase drain wait "$RECEIVER"
phase idle-drained sleep 10
uptime | tee "$OUT/uptime-after.txt"
for name in idle saturation drain idle-drained; do echo "== $name"; cat "$OUT/smaps-$name.txt"; done | tee -a "$OUT/summary.txt"
