#!/usr/bin/env python3
"""Turns one scripts/bench.sh result folder into the markdown used in docs/benchmarks.md: every
figure of issue 13 with its aim, the verdict, and its ratio to the plain-SQLite ceiling measured in
the same run (and to Fluent Bit and the ThingsBoard gateway when the run measured them)."""
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


def events_of(http):
    return http["counts"]["succeeded"] * http.get("batch", 1) if http else None


def rate_of(http):
    return (http.get("achievedEventsPerSecond") or 0) if http else None


def per_event(proc, http):
    """CPU-ms and bytes written per acknowledged event over one phase (the sampler's window)."""
    events = events_of(http)
    if not proc or not events or "cpuSecondsTotal" not in proc:
        return None, None
    return proc["cpuSecondsTotal"] * 1000 / events, proc["writeBytesTotal"] / events


def ratio(a, b, digits=2):
    return f"{a / b:.{digits}f}×" if a is not None and b else "n/a"


ceiling10, ceiling100 = load("ceiling-10.json") or {}, load("ceiling-100.json") or {}


def ceiling_bytes(c):
    return c.get("bytesWithCheckpoint", 0) / max(c.get("rows", 1), 1) if c else None


c10_rate, c100_rate = ceiling10.get("rowsPerSecond"), ceiling100.get("rowsPerSecond")
c10_bytes, c100_bytes = ceiling_bytes(ceiling10), ceiling_bytes(ceiling100)

# The three targets of the comparison, measured with the same generator and phases.
targets = {}
for name, label in [("gatehouse", "Gatehouse"), ("fluentbit", "Fluent Bit"), ("thingsboard", "ThingsBoard gateway")]:
    closed, steady = load(f"http-{name}-closed10.json"), load(f"http-{name}-500.json")
    if not closed:
        continue
    cpu10, bytes10 = per_event(load(f"proc-{name}-closed10.json"), closed)
    cpu500, bytes500 = per_event(load(f"proc-{name}-500.json"), steady)
    idle = load("proc-idle.json" if name == "gatehouse" else f"proc-{name}-idle.json")
    loaded = [p for p in (load(f"proc-{name}-closed10.json"), load(f"proc-{name}-500.json")) if p]
    delivered = load(f"delivered-{name}.json")
    targets[name] = {
        "label": label, "rate10": rate_of(closed), "p99_10": closed["latencyMs"].get("p99"),
        "cpu10": cpu10, "bytes10": bytes10, "rate500": rate_of(steady), "cpu500": cpu500, "bytes500": bytes500,
        "rssIdle": idle["rssMaxMB"] if idle else None, "rssLoad": max((p["rssMaxMB"] for p in loaded), default=None),
        "non200": closed["counts"]["requests"] - closed["counts"]["succeeded"]
                  + ((steady["counts"]["requests"] - steady["counts"]["succeeded"]) if steady else 0),
        "delivered": delivered,
    }

if os.path.exists(os.path.join(out, "load-average.txt")):
    with open(os.path.join(out, "load-average.txt")) as f:
        print(f"Load average at the start: {f.read().strip()}\n")
for c in (ceiling10, ceiling100):
    if c:
        print(f"Plain SQLite ceiling (WAL, synchronous=FULL, {c.get('batch')} rows of {c.get('rowBytes')} B per transaction): "
              f"{fmt(c.get('rowsPerSecond'), 0)} rows/s, {fmt(ceiling_bytes(c), 0)} B written per row")

if targets:
    print("\n### Side by side: closed loop, 10 connections, 1 event of ~500 B per request; then a steady 500/s\n")
    columns = list(targets.values())
    print("| figure | " + " | ".join(t["label"] for t in columns) + " | plain SQLite |")
    print("| --- | " + " | ".join("---" for _ in columns) + " | --- |")
    rows = [
        ("requests/s, 10 connections", "rate10", 0, fmt(c10_rate, 0) + " rows/s (10/commit)"),
        ("p99 reply ms, 10 connections", "p99_10", 2, ""),
        ("CPU-ms per event, 10 connections", "cpu10", 3, ""),
        ("bytes written per event, 10 connections", "bytes10", 0, fmt(c10_bytes, 0) + " per row (10/commit)"),
        ("CPU-ms per event, 500/s", "cpu500", 3, ""),
        ("bytes written per event, 500/s", "bytes500", 0, fmt(c100_bytes, 0) + " per row (100/commit)"),
        ("RSS idle MB", "rssIdle", 1, ""),
        ("RSS under load MB (max)", "rssLoad", 1, ""),
        ("non-200 replies", "non200", 0, ""),
    ]
    for label, key, digits, ceiling_text in rows:
        print(f"| {label} | " + " | ".join(fmt(t[key], digits) for t in columns) + f" | {ceiling_text} |")
    print("| delivered / acknowledged | " + " | ".join(
        (f"{t['delivered']['unique']:,} / {t['delivered']['acknowledged']:,} ({t['delivered']['duplicates']} dup.)"
         if t["delivered"] else "n/a") for t in columns) + " | |")

gh, fb, tb = targets.get("gatehouse"), targets.get("fluentbit"), targets.get("thingsboard")
http = {name: load(f"http-{name}.json") for name in ("1000", "10000", "20000", "zhenshi", "max", "max-batch20")}
proc_max = load("proc-max.json")
cpu_max, bytes_max = per_event(proc_max, http["max"])
rss_load = max([p["rssMaxMB"] for p in (load(f"proc-{n}.json") for n in ("1000", "10000", "zhenshi", "max", "gatehouse-closed10", "gatehouse-500")) if p] or [0]) or None
rss_drain = (load("proc-drain.json") or {}).get("rssMaxMB")


def verdict(value, aim, higher_is_better=True):
    if value is None or aim is None:
        return "n/a"
    return "met" if (value >= aim if higher_is_better else value <= aim) else "missed"


# Aims relative to Fluent Bit use its figure from this run when there is one, else the numbers.
aim_rate10 = 0.8 * fb["rate10"] if fb and fb["rate10"] else 16_000
aim_bytes = lambda fb_key: 3 * fb[fb_key] if fb and fb[fb_key] else 1_500  # noqa: E731
aim_cpu = lambda fb_key: 3 * fb[fb_key] if fb and fb[fb_key] else 0.15  # noqa: E731
lat1000 = (http["1000"] or {}).get("latencyMs", {})
figures = [
    ("requests/s, 10 connections, 1 event/request", gh and gh["rate10"], aim_rate10, True, 0, c10_rate, "rate10"),
    ("bytes written per event, 500/s", gh and gh["bytes500"], aim_bytes("bytes500"), False, 0, c100_bytes, "bytes500"),
    ("bytes written per event, saturation (64 connections)", bytes_max, aim_bytes("bytes10"), False, 0, c100_bytes, "bytes10"),
    ("CPU-ms per event, 500/s", gh and gh["cpu500"], aim_cpu("cpu500"), False, 3, None, "cpu500"),
    ("CPU-ms per event, saturation (64 connections)", cpu_max, aim_cpu("cpu10"), False, 3, None, "cpu10"),
    ("single events/s, open loop at 20,000/s, 256 connections", rate_of(http["20000"]), 20_000, True, 0, c10_rate, None),
    ("single events/s, saturation (closed loop, 64 connections)", rate_of(http["max"]), 20_000, True, 0, c10_rate, None),
    ("Zhenshi profile pushes/s (closed loop, 64 connections)", rate_of(http["zhenshi"]), 10_000, True, 0, c10_rate, None),
    ("p99 reply ms at 1,000/s (open loop)", lat1000.get("p99"), 10, False, 2, None, None),
    ("RSS idle MB", gh and gh["rssIdle"], 20, False, 1, None, "rssIdle"),
    ("RSS under load MB (max over the load phases)", rss_load, 32, False, 1, None, "rssLoad"),
    ("RSS draining the backlog MB (max)", rss_drain, 32, False, 1, None, None),
]
print("\n### Gatehouse against the aims of issue 13\n")
header = "| figure | Gatehouse | aim | verdict | ÷ SQLite ceiling |"
if fb:
    header += " ÷ Fluent Bit |"
if tb:
    header += " ÷ ThingsBoard |"
print(header)
print("|" + " --- |" * (header.count("|") - 1))
for label, value, aim, higher, digits, ceiling, compare_key in figures:
    aim_text = ("≥ " if higher else "≤ ") + fmt(aim, digits if digits else 0)
    row = f"| {label} | {fmt(value, digits)} | {aim_text} | {verdict(value, aim, higher)} | {ratio(value, ceiling)} |"
    if fb:
        row += f" {ratio(value, fb.get(compare_key)) if compare_key else 'n/a'} |"
    if tb:
        row += f" {ratio(value, tb.get(compare_key)) if compare_key else 'n/a'} |"
    print(row)

rows = []


def http_row(label, name):
    report = load(name)
    if not report:
        return
    lat = report.get("latencyMs") or {}
    events = rate_of(report)
    counts = report.get("counts", {})
    rows.append(f"| {label} | {fmt(events, 0)} | {ratio(events, c10_rate)} | {fmt(lat.get('p50'), 2)} | {fmt(lat.get('p99'), 2)} | "
                f"{fmt(lat.get('p999'), 2)} | {counts.get('succeeded', 'n/a')} ok, {counts.get('refused503', 0)} × 503, "
                f"{counts.get('httpErrors', 0)} errors, {counts.get('unfinished', 0)} unanswered |")


http_row("closed loop, 10 connections, ~500 B events", "http-gatehouse-closed10.json")
http_row("open loop 500/s, ~500 B events", "http-gatehouse-500.json")
http_row("open loop 1,000/s", "http-1000.json")
http_row("open loop 10,000/s", "http-10000.json")
http_row("open loop 20,000/s, 256 connections", "http-20000.json")
http_row("Zhenshi pushes, closed loop", "http-zhenshi.json")
http_row("closed loop, 1 event/request", "http-max.json")
http_row("closed loop, 20 events/request", "http-max-batch20.json")
print("\n### Every Gatehouse load phase\n")
print("| load | committed events/s | ÷ ceiling (10/commit) | p50 ms | p99 ms | p99.9 ms | outcome |")
print("| --- | --- | --- | --- | --- | --- | --- |")
print("\n".join(rows))

before, after = load("status-before-max.json"), load("status-after-max.json")
if before and after:
    commits = after["queue"]["commits"] - before["queue"]["commits"]
    events = after["queue"]["committedEvents"] - before["queue"]["committedEvents"]
    print(f"\nEvents per commit at saturation (1 event/request): {events / max(commits, 1):.1f} ({events} events in {commits} commits)")
if gh and gh["delivered"]:
    d = gh["delivered"]
    print(f"Delivered to the central stand-in before the backlog phase: {d['unique']:,} of {d['acknowledged']:,} acknowledged ({d['duplicates']} duplicates)")

drain = load("drain.json")
if drain:
    print(f"Backlog drain: {drain['unique']:,} events in {drain['drain_seconds']:.1f} s = {drain['events_per_second']:,.0f} events/s; "
          f"{drain['duplicates']} duplicates; first queued alarm delivered {drain['first_alarm_after_seconds']:.3f} s after the receiver started")
