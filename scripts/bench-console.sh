#!/usr/bin/env bash
# Does the web console slow ingest? Closed-loop single-event ingest (gatehouse-bench http, one
# event per request) with and without 10 "browsers" polling the console's live pages, in
# rounds that alternate the order (ABBA: without-with, then with-without) so that the busy
# machine's drift hits both sides alike. A browser here is what an open live page does: fetch
# the JSON twin of Overview, Devices and Events every 2 s (the pages' own interval) on a
# keep-alive connection, after loading each page once. Each side reports events/s and the
# daemon's CPU per event (/proc/<pid>/stat over the side): the answer is the median of the
# per-round changes with their spread, and the verdict says whether the 5 % aim is met. Like the
# pages' script, a browser sends back the ETag of its last reply (If-None-Match) and takes a 304
# when nothing changed.
# Usage: scripts/bench-console.sh [--quick] [ROUNDS] [SECONDS]
#   default 8 rounds of 10 s per side (~3 min); --quick: 4 rounds of 5 s (~1 min)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --quick ]; then shift; ROUNDS=${1:-4}; DURATION=${2:-5}; else ROUNDS=${1:-8}; DURATION=${2:-10}; fi

BENCH_NAME=console; source scripts/bench-common.sh
# BIN_OVERRIDE=dir: binaries built elsewhere (e.g. main's, for a before/after), nothing built here.
if [ -n "${BIN_OVERRIDE:-}" ]; then BIN=$BIN_OVERRIDE; else bench_build gatehouse gatehouse-bench gatehouse-sim; fi
INGEST=$(free_port); ADMIN=$(free_port); CENTRAL=$(free_port)
{
  bench_push_site
  bench_central_sink
} > "$WORK/bench.yaml"

bench_start_push_daemon
# The daemon's CPU time so far, in clock ticks (user + system): what each side costs it, which
# the shared machine's noise does not blur the way it blurs throughput.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$DAEMON/stat"; }
# The same in nanoseconds, summed over the daemon's threads (schedstat): the console alone costs
# a few ticks in 20 s, too few to count in ticks of 10 ms.
cpu_ns() { cat /proc/"$DAEMON"/task/*/schedstat | awk '{sum += $1} END {printf "%.0f\n", sum}'; }

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
not_modified = [0] * 10
def browser(index):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    etags = {}
    def get(path):
        headers = {"If-None-Match": etags[path]} if path in etags else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status == 304:
            not_modified[index] += 1
        elif response.status != 200:
            raise SystemExit(f"{path}: {response.status}")
        if response.getheader("ETag"):
            etags[path] = response.getheader("ETag")
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
print(sum(counts), sum(not_modified))
PY

# What the daemon spends idle (status log, sinks, maintenance) over the same 20 s, so that the
# console's figure below is the browsers' cost alone.
echo "== the daemon idle: 20 s, no browsers, no ingest"
BEFORE=$(cpu_ns); sleep 20; echo "$(( $(cpu_ns) - BEFORE ))" > "$OUT/idle-ns.txt"
echo "   $(cat "$OUT/idle-ns.txt") ns of daemon CPU"

echo "== the console alone: 10 browsers for 20 s, no ingest"
rm -f "$WORK/stop"
BEFORE=$(cpu_ns)
python3 "$WORK/browsers.py" "$ADMIN" "$WORK/stop" > "$WORK/browsers-alone.out" &
BROWSERS=$!
sleep 20; touch "$WORK/stop"; wait "$BROWSERS"
echo "$(( $(cpu_ns) - BEFORE )) $(cat "$WORK/browsers-alone.out")" > "$OUT/console-alone-ns.txt"
echo "   $(cut -d' ' -f2 "$OUT/console-alone-ns.txt") console requests ($(cut -d' ' -f3 "$OUT/console-alone-ns.txt") answered 304), $(cut -d' ' -f1 "$OUT/console-alone-ns.txt") ns of daemon CPU"

# One side of a round: ingest for DURATION s, with or without the browsers; the daemon's CPU
# ticks over the ingest alone are written beside the load generator's figures.
side() { # plain|polled round
  local browsers=""
  if [ "$1" = polled ]; then
    rm -f "$WORK/stop"
    python3 "$WORK/browsers.py" "$ADMIN" "$WORK/stop" > "$WORK/browsers-$2.out" &
    browsers=$!
    sleep 1
  fi
  local before; before=$(cpu_ticks)
  load "$OUT/$1-$2.json"
  echo $(( $(cpu_ticks) - before )) > "$OUT/$1-$2.ticks"
  if [ -n "$browsers" ]; then
    touch "$WORK/stop"; wait "$browsers"
    echo "   console requests answered (of which 304): $(cat "$WORK/browsers-$2.out")"
  fi
}

cat /proc/loadavg > "$OUT/loadavg-start.txt"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="plain polled"; else order="polled plain"; fi
  for which in $order; do
    echo "== round $round: $([ "$which" = plain ] && echo without browsers || echo with 10 browsers polling)"
    side "$which" "$round"
  done
done
cat /proc/loadavg > "$OUT/loadavg.txt"

DURATION=$DURATION python3 - "$OUT" "$ROUNDS" <<'PY' | tee "$OUT/summary.md"
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ticks_per_s = os.sysconf("SC_CLK_TCK")
def side(name, r):
    figures = json.load(open(os.path.join(out, f"{name}-{r}.json")))
    ticks = int(open(os.path.join(out, f"{name}-{r}.ticks")).read())
    events = figures["counts"]["succeeded"] * figures.get("batch", 1)
    return figures["achievedEventsPerSecond"], 1e6 * ticks / ticks_per_s / max(events, 1)
plain = [side("plain", r) for r in range(1, rounds + 1)]
polled = [side("polled", r) for r in range(1, rounds + 1)]
change = lambda a, b: 100 * (b - a) / a
rate_change = [change(a[0], b[0]) for a, b in zip(plain, polled)]
cpu_change = [change(a[1], b[1]) for a, b in zip(plain, polled)]
def spread(values):
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=4) if len(ordered) >= 4 else [ordered[0], statistics.median(ordered), ordered[-1]]
    return f"{statistics.median(ordered):+.1f} % (quartiles {q[0]:+.1f} … {q[2]:+.1f} %, range {ordered[0]:+.1f} … {ordered[-1]:+.1f} %)"
start = open(os.path.join(out, "loadavg-start.txt")).read().split()[:3]
end = open(os.path.join(out, "loadavg.txt")).read().split()[:3]
print("| round | without: events/s | with 10 browsers: events/s | change | without: CPU µs/event | with: CPU µs/event | change |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for r, (a, b) in enumerate(zip(plain, polled), 1):
    print(f"| {r} | {a[0]:,.0f} | {b[0]:,.0f} | {change(a[0], b[0]):+.1f} % | {a[1]:.1f} | {b[1]:.1f} | {change(a[1], b[1]):+.1f} % |")
print(f"| median | {statistics.median(x[0] for x in plain):,.0f} | {statistics.median(x[0] for x in polled):,.0f} | "
      f"{statistics.median(rate_change):+.1f} % | {statistics.median(x[1] for x in plain):.1f} | {statistics.median(x[1] for x in polled):.1f} | "
      f"{statistics.median(cpu_change):+.1f} % |")
print(f"\nThroughput with browsers, per-round change: {spread(rate_change)}")
print(f"Daemon CPU per event with browsers, per-round change: {spread(cpu_change)}")
console_ns, console_requests, console_304 = map(int, open(os.path.join(out, "console-alone-ns.txt")).read().split())
idle_ns = int(open(os.path.join(out, "idle-ns.txt")).read())
per_request_ms = max(console_ns - idle_ns, 0) / 1e6 / max(console_requests, 1)
print(f"The console alone: {console_requests} requests ({console_304} answered 304) in 20 s cost the daemon {console_ns / 1e9:.3f} CPU s "
      f"against {idle_ns / 1e9:.3f} s idle over 20 s: {per_request_ms:.2f} ms each beyond idle; "
      f"10 browsers polling (15 requests/s) = {1.5 * per_request_ms:.1f} % of one core.")
cpu_median = statistics.median(cpu_change)
q = sorted(cpu_change)
upper = statistics.quantiles(q, n=4)[2] if len(q) >= 4 else q[-1]
verdict = ("within 5 %" if upper < 5 else "within 5 % at the median, not at the upper quartile" if cpu_median < 5 else "NOT within 5 %")
print(f"\nVerdict (CPU per event, which the shared machine's load does not scale): the console with 10 browsers costs ingest "
      f"{cpu_median:+.1f} % CPU per event at the median, upper quartile {upper:+.1f} %: {verdict}.")
print(f"\nload average at the start: {' '.join(start)}, at the end: {' '.join(end)} "
      f"(the machine is shared; rounds alternate their order so drift hits both sides)")
PY
