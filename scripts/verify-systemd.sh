#!/usr/bin/env bash
# Checks systemd/gatehouse.service with systemd-analyze verify, pointing it at the built binary
# (verify refuses an ExecStart= whose file does not exist).
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-$PWD/.build/debug/gatehouse}"
if ! command -v systemd-analyze >/dev/null; then
  echo "verify-systemd: systemd-analyze not found; skipping" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#/usr/local/bin/gatehouse#$binary#g" systemd/gatehouse.service > "$tmp/gatehouse.service"
out=$(systemd-analyze verify "$tmp/gatehouse.service" 2>&1 || true)
if [ -n "$out" ]; then
  echo "verify-systemd: systemd-analyze verify reported:" >&2
  echo "$out" >&2
  exit 1
fi
echo "verify-systemd: systemd/gatehouse.service OK"
