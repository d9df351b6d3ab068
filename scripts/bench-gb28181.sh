#!/usr/bin/env bash
# The GB/T 28181 benchmark behind docs/benchmarks.md ("GB/T 28181"): release build;
# `gatehouse-bench gb28181` plays 1,000 GB/T 28181 IPCs over UDP (one socket each, as each real
# device has its own address) and the central store in its own process, starts the daemon
# against them, registers every device (Digest), keeps them alive every 30 s, then fires an
# alarm storm of 500 alarms/s for a minute while the keepalives go on.
# Figures land in benchmarks/results/<timestamp>-gb28181/gb28181.json.
# Usage: scripts/bench-gb28181.sh [--quick]      (--quick: 100 devices, 10 s rest, 10 s storm)
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=1000 REST=30 STORM=60
if [ "${1:-}" = "--quick" ]; then DEVICES=100 REST=10 STORM=10; fi

BENCH_NAME=gb28181; source scripts/bench-common.sh
bench_build gatehouse gatehouse-bench
# One UDP socket per simulated device.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

uptime | tee "$OUT/uptime-before.txt"
status=0
"$BIN/gatehouse-bench" gb28181 --daemon "$BIN/gatehouse" --work "$WORK" \
  --devices "$DEVICES" --keepalive 30 --rate 500 --rest "$REST" --storm "$STORM" \
  --sip-port "$(free_port)" --ingest-port "$(free_port)" --admin-port "$(free_port)" \
  --json "$OUT/gb28181.json" | tee "$OUT/summary.txt" || status=$?
uptime | tee "$OUT/uptime-after.txt"
grep -E '(warning|error|critical)' "$WORK/daemon.log" | head -50 > "$OUT/daemon-warnings.log" || true
exit $status
