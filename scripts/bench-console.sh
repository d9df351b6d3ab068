#!/usr/bin/env bash
# Does the web console slow ingest? Closed-loop single-event ingest (gatehouse-bench http, one
# event per request) with and without 10 "browsers" polling the console's live pages, in
# alternating rounds so that the busy machine's drift hits both sides alike. A browser here is
# what an open live page does: fetch the JSON twin of Overview, Devices and Events every 2 s
# (the pages' own interval) on a keep-alive connection, after loading each page once.
# Usage: scripts/bench-console.sh [ROUNDS] [SECONDS]    (default 3 rounds of 15 s per side)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}; DURATION=${2:-15}

BENCH_NAME=console; source scripts/bench-common.sh
bench_build gatehouse gatehouse-bench gatehouse-sim
INGEST=$(free_port); ADMIN=$(free_port); CENTRAL=$(free_port)
{
  bench_push_site
  cat <<YAML
sinks:
  - name: central
    type: http
    url: http://127.0.0.1:$CENTRAL/events
    gzip: false
    batch_max_events: 2000
    backoff_max_seconds: 0.2
YAML
} > "$WORK/bench.yaml"

"$BIN/gatehouse-sim" receiver --port "$CENTRAL" > "$WORK/central.log" 2>&1 &
PIDS+=($!)
"$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
DAEMON=$!; PIDS+=("$DAEMON")
for _ in $(seq 1 200); do grep -qs "admin listener ready" "$WORK/daemon.log" && break; sleep 0.05; done
# The daemon's CPU time so far, in clock ticks (user + system): what each side costs it, which
# the shared machine's noise does not blur the way it blurs throughput.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$DAEMON/stat"; }

load() { # json
  "$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token \
    --rate 0 --duration "$DURATION" --connections 64 --batch 1 --alarm-percent 1 --json "$1" > /dev/null
}

# 10 browsers in one process (threads), so the pollers' own cost stays small on this 2-core box.
cat > "$WORK/browsers.py" <<'PY'
import http.client, sys, threading, time
port, stop_file = int(sys.argv[1]), sys.argv[2]
pages = ["/console", "/console/devices", "/console/events"]
live = ["/console/api/overview", "/console/api/devices", "/console/api/events"]
counts = [0] * 10
def browser(index):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    def get(path):
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{path}: {response.status}")
        counts[index] += 1
    for path in pages:
        get(path)
    while True:
        try:
            open(stop_file).close()
            return
        except FileNotFoundError:
            pass
        for path in live:
            get(path)
        time.sleep(2)
threads = [threading.Thread(target=browser, args=(i,)) for i in range(10)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(counts))
PY

echo "== the console alone: 10 browsers for 20 s, no ingest"
rm -f "$WORK/stop"
BEFORE=$(cpu_ticks)
python3 "$WORK/browsers.py" "$ADMIN" "$WORK/stop" > "$WORK/browsers-alone.out" &
BROWSERS=$!
sleep 20; touch "$WORK/stop"; wait "$BROWSERS"
echo "$(( $(cpu_ticks) - BEFORE )) $(cat "$WORK/browsers-alone.out")" > "$OUT/console-alone.txt"
echo "   $(cat "$WORK/browsers-alone.out") console requests, $(cut -d' ' -f1 "$OUT/console-alone.txt") CPU ticks"

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round: without browsers"
  BEFORE=$(cpu_ticks)
  load "$OUT/plain-$round.json"
  echo $(( $(cpu_ticks) - BEFORE )) > "$OUT/plain-$round.ticks"
  echo "== round $round: with 10 browsers polling"
  rm -f "$WORK/stop"
  python3 "$WORK/browsers.py" "$ADMIN" "$WORK/stop" > "$WORK/browsers-$round.out" &
  BROWSERS=$!
  sleep 1
  load "$OUT/polled-$round.json"
  touch "$WORK/stop"; wait "$BROWSERS"
  echo "   console requests answered: $(cat "$WORK/browsers-$round.out")"
done
cat /proc/loadavg > "$OUT/loadavg.txt"

DURATION=$DURATION python3 - "$OUT" "$ROUNDS" <<'PY' | tee "$OUT/summary.md"
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rate = lambda name: json.load(open(os.path.join(out, name)))["achievedEventsPerSecond"]
plain = [rate(f"plain-{r}.json") for r in range(1, rounds + 1)]
polled = [rate(f"polled-{r}.json") for r in range(1, rounds + 1)]
load = open(os.path.join(out, "loadavg.txt")).read().split()[:3]
print("| round | without browsers (events/s) | with 10 browsers (events/s) | change |")
print("| --- | --- | --- | --- |")
for r, (a, b) in enumerate(zip(plain, polled), 1):
    print(f"| {r} | {a:,.0f} | {b:,.0f} | {100 * (b - a) / a:+.1f} % |")
a, b = statistics.median(plain), statistics.median(polled)
print(f"| median | {a:,.0f} | {b:,.0f} | {100 * (b - a) / a:+.1f} % |")
ticks = os.sysconf("SC_CLK_TCK")
console_ticks, console_requests = map(int, open(os.path.join(out, "console-alone.txt")).read().split())
plain_ticks = [int(open(os.path.join(out, f"plain-{r}.ticks")).read()) for r in range(1, rounds + 1)]
per_request_ms = 1000 * console_ticks / ticks / max(console_requests, 1)
browsers_cpu = per_request_ms * 15 / 1000  # 10 browsers x 3 JSON fetches every 2 s
print(f"\nThe console alone: {console_requests} requests cost the daemon {console_ticks / ticks:.2f} CPU s, "
      f"{per_request_ms:.2f} ms each; 10 browsers polling (15 requests/s) = {100 * browsers_cpu:.1f} % of one core.")
ingest_share = [t / ticks / DURATION for t in plain_ticks] if (DURATION := float(os.environ.get("DURATION", "0"))) else []
if ingest_share:
    print(f"Ingest at saturation kept the daemon at {100 * statistics.median(ingest_share):.0f} % of a core (median of rounds), "
          f"so the browsers' share is {100 * browsers_cpu / statistics.median(ingest_share):.1f} % of what ingest uses.")
print(f"\nload average at the end: {' '.join(load)} (the machine is shared; rounds alternate so drift hits both sides)")
PY
