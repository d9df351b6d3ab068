#!/usr/bin/env python3
"""Turns one scripts/bench.sh result folder into the markdown table used in docs/benchmarks.md."""
import json
import os
import sys

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fmt(value, digits=1):
    return "n/a" if value is None else f"{value:,.{digits}f}"


ceiling = load("ceiling.json") or {}
ceiling20 = load("ceiling-20.json") or {}
# The ratio is taken against the ceiling at the daemon's own commit size when it was measured.
ceiling_rate = ceiling20.get("rowsPerSecond") or ceiling.get("rowsPerSecond")
rows = []


def http_row(label, name):
    report = load(name)
    if not report:
        return
    lat = report.get("latencyMs") or report.get("latency") or {}
    events = report.get("achievedEventsPerSecond") or report.get("succeededEventsPerSecond")
    ratio = f"{events / ceiling_rate:.2f}" if events and ceiling_rate else "n/a"
    counts = report.get("counts", {})
    rows.append(f"| {label} | {fmt(events, 0)} | {ratio} | {fmt(lat.get('p50'), 2)} | {fmt(lat.get('p99'), 2)} | {fmt(lat.get('p999'), 2)} | {counts.get('succeeded', 'n/a')} ok, {counts.get('refused503', 0)} × 503, {counts.get('httpErrors', 0)} errors, {counts.get('unfinished', 0)} unanswered |")


http_row("open loop 1,000/s", "http-1000.json")
http_row("open loop 10,000/s", "http-10000.json")
http_row("closed loop, 1 event/request", "http-max.json")
http_row("closed loop, 20 events/request", "http-max-batch20.json")

for c in (ceiling, ceiling20):
    if c:
        print(f"Plain SQLite ceiling (WAL, synchronous=FULL, batch {c.get('batch')}, {c.get('rowBytes')} B rows): "
              f"{fmt(c.get('rowsPerSecond'), 0)} rows/s, {fmt(c.get('bytesWithCheckpoint', 0) / max(c.get('rows', 1), 1), 0)} B written per row")
print()
print("| load | committed events/s | ratio to ceiling | p50 ms | p99 ms | p99.9 ms | outcome |")
print("| --- | --- | --- | --- | --- | --- | --- |")
print("\n".join(rows))

before, after = load("status-before-max.json"), load("status-after-max.json")
if before and after:
    commits = after["queue"]["commits"] - before["queue"]["commits"]
    events = after["queue"]["committedEvents"] - before["queue"]["committedEvents"]
    print(f"\nEvents per commit at saturation (1 event/request): {events / max(commits, 1):.1f} ({events} events in {commits} commits)")

proc_max = load("proc-max.json")
http_max = load("http-max.json")
if proc_max and http_max:
    written = proc_max.get("writeBytesPerSecond", 0)
    events = http_max.get("achievedEventsPerSecond") or 0
    if events:
        print(f"Bytes written to disk per event at saturation: {written / events:,.0f} (from /proc/PID/io write_bytes)")

for label, name in [("idle", "proc-idle.json"), ("1,000/s", "proc-1000.json"), ("10,000/s", "proc-10000.json"),
                    ("saturation", "proc-max.json"), ("draining the backlog", "proc-drain.json")]:
    report = load(name)
    if report:
        print(f"Resident memory {label}: max {report['rssMaxMB']:.1f} MB (min {report['rssMinMB']:.1f})")

drain = load("drain.json")
if drain:
    print(f"\nBacklog drain: {drain['unique']:,} events in {drain['drain_seconds']:.1f} s = {drain['events_per_second']:,.0f} events/s; "
          f"{drain['duplicates']} duplicates; first queued alarm delivered {drain['first_alarm_after_seconds']:.3f} s after the receiver started")
