#!/usr/bin/env bash
# Instructions per request on the HTTP ingest path (issue 13 item 2), counted by valgrind's
# callgrind, so that the figure does not move with the machine's load: the release daemon of
# scripts/bench.sh (50 generic-json devices, the http sink to `gatehouse-sim receiver`) runs under
# callgrind with collection off; it is switched on for a closed loop of REQUESTS single-event
# requests on 10 connections (the issue's comparison) and dumped once the sink has delivered and
# deleted them all, so delivery is counted too. Writes callgrind.out.* and a summary (total
# instructions per request, the top functions inclusive and self) to the results directory.
# Usage: scripts/bench-callgrind.sh [REQUESTS, default 3000]   (--quick: 1000)
#        BIN_OVERRIDE=dir scripts/bench-callgrind.sh          (other binaries, for before/after)
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-3000}
[ "$REQUESTS" = --quick ] && REQUESTS=1000
BENCH_NAME=callgrind; source scripts/bench-common.sh
if [ -z "${BIN_OVERRIDE:-}" ]; then bench_build gatehouse gatehouse-bench gatehouse-sim; else BIN=$BIN_OVERRIDE; fi
INGEST=$(free_port); ADMIN=$(free_port); CENTRAL=$(free_port)
{
  bench_push_site
  bench_central_sink
} > "$WORK/bench.yaml"
uptime > "$OUT/load-average.txt"
echo "$BIN" > "$OUT/binary.txt"

"$BIN/gatehouse-sim" receiver --port "$CENTRAL" > "$WORK/central.log" 2>&1 &
PIDS+=($!)
valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$OUT/callgrind.out.%p" \
  "$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
DAEMON=$!; PIDS+=("$DAEMON")
for _ in $(seq 1 1200); do
  grep -qs "ingest listener ready" "$WORK/daemon.log" && grep -qs "admin listener ready" "$WORK/daemon.log" && break
  sleep 0.1
done
grep -qs "ingest listener ready" "$WORK/daemon.log" || { echo "daemon did not start:"; cat "$WORK/daemon.log"; exit 1; }
depth() { curl -sf "http://127.0.0.1:$ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["depth"])'; }
drained() { for _ in $(seq 1 600); do [ "$(depth)" = 0 ] && return 0; sleep 0.5; done; echo "queue did not drain"; exit 1; }

# Warm-up outside the count: connections, first-use caches, the devices' online events.
"$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token --rate 0 --duration 600 \
  --connections 10 --batch 1 --alarm-percent 1 --max-events 200 --drain-timeout 120 > /dev/null
drained; sleep 2
callgrind_control -i on "$DAEMON" > /dev/null
"$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token --rate 0 --duration 600 \
  --connections 10 --batch 1 --alarm-percent 1 --max-events "$REQUESTS" --drain-timeout 120 --json "$OUT/http.json" > /dev/null
drained; sleep 2
callgrind_control -d "$DAEMON" > /dev/null
callgrind_control -i off "$DAEMON" > /dev/null
kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true

OUTFILE=$(ls -S "$OUT"/callgrind.out.* | head -1)
python3 - "$OUT/http.json" "$OUTFILE" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY' | tee "$OUT/summary.txt"
import json, re, subprocess, sys
http, path, load = sys.argv[1:]
r = json.load(open(http))
requests = r["counts"]["succeeded"]
total = 0
for line in open(path):
    if line.startswith("summary:") or line.startswith("totals:"):
        total = max(total, int(line.split()[1]))
print(f"{requests} requests of 1 event, 10 connections: {total:,} instructions = {total / max(requests, 1):,.0f} per request "
      f"(delivery included; load {load})")
for flag, title in (("--inclusive=yes", "inclusive"), ("--inclusive=no", "self")):
    annotated = subprocess.run(["callgrind_annotate", flag, "--threshold=100", path], capture_output=True, text=True).stdout
    out = subprocess.run(["swift-demangle", "--simplified"], input=annotated, capture_output=True, text=True).stdout
    print(f"-- top 40 {title}, instructions per request")
    shown = 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        ir = int(m.group(1).replace(",", ""))
        print(f"{ir / max(requests, 1):12,.0f}  {m.group(2)[:200]}")
        shown += 1
        if shown == 40:
            break
PY
