#!/usr/bin/env bash
# The camera benchmark behind docs/benchmarks.md ("Cameras: 300 held, 500 alarms/s"): release
# build; `gatehouse-bench cameras` plays 100 ONVIF, 100 Hikvision and 100 Dahua cameras and the
# central store in its own process, starts the daemon as a separate process against them, holds
# every subscription and stream at rest, then fires 500 alarms/s on schedule.
# Figures land in benchmarks/results/<timestamp>-cameras/cameras.json.
# Usage: scripts/bench-cameras.sh [--quick] [--static] [--rest S] [--daemon PATH] [--commit-probe]
#   --quick: 5 s rest and 5 s storm instead of 30 s each
#   --rest: seconds at rest (70 shows the resident set after the daemon's first minute)
#   --daemon: measure this gatehouse binary instead of building one (A/B runs of two builds)
#   --commit-probe: a local file sink beside the central one, each alarm timed as its line appears
#             there: the delay to commit (an upper bound), without the HTTP forward; costs the daemon
#             a second sink, so CPU and memory of such a run are not the plain figures
#   --static: the daemon linked as the Debian package links it (--static-swift-stdlib, Swift runtime
#             and Foundation inside the binary), built in .build-static; the first build is a full one.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_PHASE=30
STATIC=no; REST=''; DAEMON=''; PROBE=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) SECONDS_PER_PHASE=5 ;;
    --static) STATIC=yes ;;
    --rest) REST=$2; shift ;;
    --daemon) DAEMON=$2; shift ;;
    --commit-probe) PROBE=(--commit-probe) ;;
    *) echo "bench-cameras: unknown argument '$1' (expected --quick, --static, --rest S, --daemon PATH or --commit-probe)" >&2; exit 2 ;;
  esac
  shift
done

BENCH_NAME=cameras; source scripts/bench-common.sh
bench_build
DAEMON=${DAEMON:-$(bench_daemon)}
# Cameras and the daemon each hold a few sockets per camera.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "daemon: $DAEMON (Swift runtime linked $([ "$STATIC" = yes ] && echo statically || echo dynamically))" | tee "$OUT/daemon.txt"
uptime | tee "$OUT/uptime-before.txt"
status=0
"$BIN/gatehouse-bench" cameras --daemon "$DAEMON" --work "$WORK" \
  --onvif 100 --hikvision 100 --dahua 100 --rate 500 \
  --rest "${REST:-$SECONDS_PER_PHASE}" --storm "$SECONDS_PER_PHASE" "${PROBE[@]}" --json "$OUT/cameras.json" | tee "$OUT/summary.txt" || status=$?
uptime | tee "$OUT/uptime-after.txt"
# The daemon's warnings and errors, for the record (notice lines are its normal status log).
grep -E '(warning|error|critical)' "$WORK/daemon.log" | head -50 > "$OUT/daemon-warnings.log" || true
exit $status
