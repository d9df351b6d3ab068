#!/usr/bin/env python3
"""Resident memory of one process by what it is (docs/benchmarks.md, "Memory"): the binary's code,
its data, each shared library, heap and anonymous memory, thread stacks. Reads /proc/<pid>/smaps.
Usage: smaps-breakdown.py PID [--json FILE]"""
import json, re, sys

def category(name, perms, size_kb):
    if name in ("", "[heap]"):
        # glibc gives each thread its stack as one 8 MiB anonymous mapping (plus a guard page).
        return "thread stacks" if name == "" and 8000 <= size_kb <= 8200 else "heap and anonymous"
    if name == "[stack]":
        return "thread stacks"
    if name.startswith("["):
        return "kernel ([vdso], [vvar])"
    base = name.rsplit("/", 1)[-1]
    if base.startswith("gatehouse"):  # also renamed copies in A/B runs (gatehouse-main, gatehouse-rc)
        return "binary: code" if "x" in perms else "binary: data and read-only data"
    if "ICU" in base or base.startswith("libicu"):
        return "ICU (" + base + ")"
    if "Foundation" in base:
        return "Foundation (" + base + ")"
    if base.startswith("libswift") or base.startswith("libdispatch") or base.startswith("libBlocksRuntime"):
        return "Swift runtime (libswift*, libdispatch)"
    if base.startswith("libsqlite3"):
        return "SQLite"
    if base.startswith(("libc.", "libm.", "ld-linux", "libstdc++", "libgcc_s")):
        return "libc, libm, libstdc++"
    if base.startswith(("libcrypto", "libssl")):
        return "OpenSSL"
    return "other libraries"

def breakdown(pid):
    groups, current, size = {}, None, 0
    for line in open(f"/proc/{pid}/smaps"):
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            fields = line.split(None, 5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            current = category(fields[5].strip() if len(fields) > 5 else "", fields[1], (end - start) // 1024)
            groups.setdefault(current, {"rss_kb": 0, "private_dirty_kb": 0})
        elif line.startswith("Rss:"):
            groups[current]["rss_kb"] += int(line.split()[1])
        elif line.startswith("Private_Dirty:"):
            groups[current]["private_dirty_kb"] += int(line.split()[1])
    return groups

if __name__ == "__main__":
    groups = breakdown(sys.argv[1])
    total = sum(g["rss_kb"] for g in groups.values())
    for name, g in sorted(groups.items(), key=lambda kv: -kv[1]["rss_kb"]):
        if g["rss_kb"]:
            print(f"{g['rss_kb'] / 1024:7.1f} MB  (private dirty {g['private_dirty_kb'] / 1024:5.1f})  {name}")
    print(f"{total / 1024:7.1f} MB  total")
    if len(sys.argv) > 3 and sys.argv[2] == "--json":
        json.dump({"total_kb": total, "groups": groups}, open(sys.argv[3], "w"), indent=1)
