#!/usr/bin/env bash
# Where the CPU of the HTTP ingest path goes (issue 13 item 2): the release daemon of
# scripts/bench.sh (50 generic-json devices, the http sink to `gatehouse-sim receiver`) takes a
# closed loop of REQUESTS single-event requests on 10 connections (the issue's comparison) under
# `perf record` (cpu-clock samples with call graphs; this VM has no hardware counters), counted
# from a drained queue to a drained queue, so delivery and its deletes are in. Reports CPU-ms per
# event (utime+stime of /proc/<pid>/stat, which the machine's load barely moves), the rate and
# load average beside it, and the top functions (self and with children) as shares of the samples.
# valgrind (callgrind) would give instruction counts, but Debian's 3.19 crashes on the Swift 6
# binaries (even with --tool=none), so sampling it is.
# Usage: scripts/bench-profile.sh [REQUESTS, default 20000]   (--quick: 5000)
#        BIN_OVERRIDE=dir scripts/bench-profile.sh            (other binaries, for before/after)
#        NO_PERF=1 scripts/bench-profile.sh                   (CPU per event only, no sampling cost)
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-20000}
[ "$REQUESTS" = --quick ] && REQUESTS=5000
BENCH_NAME=profile; source scripts/bench-common.sh
bench_push_daemon_with_central_sink
TICK=$(getconf CLK_TCK)
depth() { curl -sf "http://127.0.0.1:$ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])'; }
drained() { for _ in $(seq 1 600); do [ "$(depth)" = 0 ] && break; sleep 0.2; done; sleep 1; }
cpu() { awk '{print $14 + $15}' "/proc/$DAEMON/stat"; }
load() { # requests json
  "$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token --rate 0 --duration 600 \
    --connections 10 --batch 1 --alarm-percent 1 --max-events "$1" --drain-timeout 60 ${2:+--json "$2"} > /dev/null
}

load 500 ""   # warm-up: connections, first-use caches, the devices' online events
drained
c0=$(cpu)
if [ -z "${NO_PERF:-}" ]; then
  perf record -F 999 -g -p "$DAEMON" -o "$WORK/perf.data" 2> "$WORK/perf.log" &
  PERF=$!
  sleep 1
fi
t0=$(date +%s.%N)
load "$REQUESTS" "$OUT/http.json"
t1=$(date +%s.%N)
drained
c1=$(cpu)
if [ -n "${PERF:-}" ]; then kill -INT "$PERF"; wait "$PERF" 2>/dev/null || true; fi
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$OUT/http.json" "$((c1 - c0))" "$TICK" "$LOAD" "$t0" "$t1" "${NO_PERF:+off}" <<'PY' | tee "$OUT/summary.txt"
import json, sys
path, ticks, tick, load, t0, t1, sampling = sys.argv[1:]
r = json.load(open(path)); events = r["counts"]["succeeded"]
print(f"{events} single-event requests, 10 connections: {events / (float(t1) - float(t0)):.0f} req/s, "
      f"p99 {r['latencyMs']['p99']:.1f} ms, {int(ticks) / int(tick) * 1000 / max(events, 1):.3f} CPU-ms per event "
      f"(delivery included, perf sampling {sampling or 'on'}; load {load})")
PY
if [ -f "$WORK/perf.data" ]; then
  for mode in "--no-children" "--children"; do
    echo "-- top functions, $mode (share of samples)" | tee -a "$OUT/summary.txt"
    perf report -i "$WORK/perf.data" $mode --sort symbol --stdio -g none --percent-limit 0.7 2>/dev/null \
      | grep -E '^ +[0-9]' | head -45 | swift-demangle --simplified | cut -c1-200 | tee -a "$OUT/summary.txt"
  done
fi
