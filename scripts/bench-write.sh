#!/usr/bin/env bash
# The write path of issue 13 items 1–2, in load-independent figures: bytes written to storage per
# event (/proc/<pid>/io write_bytes, WAL and checkpoints and the deletes after delivery included),
# CPU-ms per event (utime+stime from /proc/<pid>/stat), events per commit, with the rate and the
# load average beside them. Phases: open loop at 500/s, closed loop with 10 connections. Halfway
# through each phase the queue file and its WAL are copied and scripts/wal-pages.py names the pages
# each transaction wrote (pages per transaction, share per table and index): <phase>-pages.txt.
# Usage: scripts/bench-write.sh [seconds per phase, default 20] [--quick: 5 s phases]
#        (BIN_OVERRIDE=dir to use other binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
if [ "$DURATION" = --quick ]; then DURATION=5; fi
BENCH_NAME=write; source scripts/bench-common.sh
bench_push_daemon_with_central_sink
TICK=$(getconf CLK_TCK)
sample() { # write_bytes cpu_ticks committed_events commits depth
  local wb cpu q
  wb=$(awk '/^write_bytes/ {print $2}' "/proc/$DAEMON/io")
  cpu=$(awk '{print $14 + $15}' "/proc/$DAEMON/stat")
  q=$(curl -sf "http://127.0.0.1:$ADMIN/status" | python3 -c 'import json,sys; q=json.load(sys.stdin)["queue"]; print(q["committedEvents"], q["commits"], q["depth"])')
  echo "$wb $cpu $q"
}
settle() { # until everything is delivered and deleted, then 2 s more for the last writes
  for _ in $(seq 1 300); do [ "$(sample | awk '{print $5}')" = 0 ] && break; sleep 0.2; done
  sleep 2
}
capture_pages() { # name: the WAL's frames halfway through a phase (copied WAL first, then the database)
  sleep "$(python3 -c "print($DURATION / 2)")"
  local copy="$WORK/copy-$1"; mkdir -p "$copy"
  for attempt in 1 2 3; do
    cp "$WORK/state/queue.sqlite-wal" "$copy/queue.sqlite-wal" && cp "$WORK/state/queue.sqlite" "$copy/queue.sqlite" || true
    if python3 scripts/wal-pages.py "$copy/queue.sqlite" > "$OUT/$1-pages.txt" 2>&1; then break; fi
    rm -f "$copy"/*
  done
}
phase() { # name rate connections
  settle
  read -r wb0 cpu0 ev0 c0 _ < <(sample)
  capture_pages "$1" & local capture=$!
  "$BIN/gatehouse-bench" http --url "http://127.0.0.1:$INGEST" --devices 50 --token bench-token \
    --rate "$2" --duration "$DURATION" --connections "$3" --batch 1 --alarm-percent 1 --json "$OUT/http-$1.json" > /dev/null
  local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
  wait "$capture"
  settle
  read -r wb1 cpu1 ev1 c1 _ < <(sample)
  python3 - "$1" "$OUT/http-$1.json" "$((wb1-wb0))" "$((cpu1-cpu0))" "$((ev1-ev0))" "$((c1-c0))" "$TICK" "$load" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
name, path, wb, cpu, ev, commits, tick, load = sys.argv[1:]
r = json.load(open(path)); ev = max(int(ev), 1)
print(f"{name:>12}: {r['achievedRequestsPerSecond']:8.0f} req/s  p50 {r['latencyMs']['p50']:.1f} ms  p99 {r['latencyMs']['p99']:.1f} ms  "
      f"{int(wb)/ev:8.0f} bytes written/event  {int(cpu)/int(tick)*1000/ev:.3f} CPU-ms/event  "
      f"{ev/max(int(commits),1):.1f} events/commit  ({ev} events, load {load})")
PY
}
phase steady-500 500 10
phase closed-10 0 10
for name in steady-500 closed-10; do echo "$name:"; cat "$OUT/$name-pages.txt"; done | tee -a "$OUT/summary.txt"
echo "results in $OUT"
