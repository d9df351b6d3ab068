# Sourced by the benchmark scripts, never run alone: the release build, the results and scratch
# directories, processes stopped on exit, free loopback ports, and the daemon config head the
# drain benchmarks share. Set BENCH_NAME first (it names both directories).
#   BENCH_NAME=mqtt; source scripts/bench-common.sh; bench_build gatehouse gatehouse-bench
SCRATCH=${SCRATCH:-.build-release}
BIN="$SCRATCH/release"
OUT="benchmarks/results/$(date -u +%Y%m%dT%H%M%SZ)${BENCH_NAME:+-$BENCH_NAME}"
WORK=$(mktemp -d "/var/tmp/gatehouse-bench${BENCH_NAME:+-$BENCH_NAME}.XXXXXX")
mkdir -p "$OUT"

# The named products, or everything; BUILD_FLAGS=--ignore-lock when other builds share the machine.
bench_build() {
  if [ $# = 0 ]; then set -- ""; fi
  for product in "$@"; do
    swift build ${BUILD_FLAGS:-} -c release --scratch-path "$SCRATCH" ${product:+--product "$product"} >/dev/null
  done
}

# The daemon the figures come from, built if needed: with STATIC=yes (the scripts' --static) linked
# as the Debian package links it (--static-swift-stdlib: Swift runtime and Foundation inside the
# binary), built in .build-static, whose first build is a full one; otherwise $BIN/gatehouse.
bench_daemon() {
  if [ "${STATIC:-no}" = yes ]; then
    swift build ${BUILD_FLAGS:-} -c release --scratch-path .build-static --product gatehouse --static-swift-stdlib >/dev/null
    echo .build-static/release/gatehouse
  else
    bench_build gatehouse
    echo "$BIN/gatehouse"
  fi
}

# Every process a benchmark starts goes into PIDS; a script with more to undo redefines bench_cleanup_extra.
PIDS=()
bench_cleanup_extra() { :; }
bench_cleanup() {
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bench_cleanup_extra
  rm -rf "$WORK"
}
trap bench_cleanup EXIT

# Free ports, not fixed ones: another benchmark's daemon or a test run may hold any fixed port.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The daemon config up to `devices:` and the 50 push devices the load generator posts as
# (`gatehouse-bench http --devices 50 --token bench-token`); needs INGEST and ADMIN.
bench_push_site() {
  cat <<YAML
site: bench
state_directory: $WORK/state
disk_budget_bytes: 8GiB
status_interval_seconds: 10
log_level: notice
ingest: {host: 127.0.0.1, port: $INGEST, rate_limit_per_second: 0, max_body_bytes: 4MiB}
admin: {host: 127.0.0.1, port: $ADMIN}
queue: {commit_max_events: 4000}
devices:
YAML
  for i in $(seq 0 49); do echo "  - {id: sim-$i, driver: generic-json, type: door-controller, auth: {token: bench-token}}"; done
}

# The `sinks:` section after bench_push_site: one HTTP sink to the central store on CENTRAL.
bench_central_sink() {
  cat <<YAML
sinks:
  - name: central
    type: http
    url: http://127.0.0.1:$CENTRAL/events
    gzip: false
    batch_max_events: 2000
    backoff_max_seconds: 0.2
YAML
}

# Starts `gatehouse-sim receiver` on CENTRAL and the daemon on $WORK/bench.yaml (DAEMON is its pid),
# and waits until both of its listeners are ready.
bench_start_push_daemon() {
  "$BIN/gatehouse-sim" receiver --port "$CENTRAL" > "$WORK/central.log" 2>&1 &
  PIDS+=($!)
  "$BIN/gatehouse" run --config "$WORK/bench.yaml" 2> "$WORK/daemon.log" &
  DAEMON=$!; PIDS+=("$DAEMON")
  for _ in $(seq 1 200); do
    grep -qs "ingest listener ready" "$WORK/daemon.log" && grep -qs "admin listener ready" "$WORK/daemon.log" && return 0
    sleep 0.05
  done
  echo "daemon did not start:"; cat "$WORK/daemon.log"; exit 1
}

# The usual push benchmark in one call: binaries built (or BIN_OVERRIDE's), free ports, the 50 push
# devices with the central HTTP sink, receiver and daemon started (DAEMON is its pid).
bench_push_daemon_with_central_sink() {
  if [ -z "${BIN_OVERRIDE:-}" ]; then bench_build gatehouse gatehouse-bench gatehouse-sim; else BIN=$BIN_OVERRIDE; fi
  INGEST=$(free_port); ADMIN=$(free_port); CENTRAL=$(free_port)
  { bench_push_site; bench_central_sink; } > "$WORK/bench.yaml"
  bench_start_push_daemon
}
