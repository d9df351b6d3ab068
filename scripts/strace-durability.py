#!/usr/bin/env python3
"""System-call check of the delivery contract (issue 13, item 4), run by scripts/test.

Starts the daemon under strace with a state directory whose parent does not exist yet, pushes
events over HTTP from several connections, stops it, and reads the trace:

- every `HTTP/1.1 200` reply written to a socket comes after an fsync/fdatasync of the queue's
  WAL that completed after that request was read (the reply follows the durable commit);
- the directories the daemon created are fsynced into their parents, and the state directory is
  fsynced after the queue file is renamed into place and after the WAL file is created.

Order is the order of lines in the trace (strace writes them as the calls start and finish), never
time, so a busy machine cannot make it fail. Usage: strace-durability.py path/to/gatehouse
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import http.client

EVENTS_PER_CONNECTION = 5
CONNECTIONS = 6


def fail(message, trace=None):
    print(f"strace-durability: FAIL: {message}", file=sys.stderr)
    if trace:
        print(f"strace-durability: trace kept at {trace}", file=sys.stderr)
    sys.exit(1)


def main():
    binary = os.path.abspath(sys.argv[1])
    root = tempfile.mkdtemp(prefix="gatehouse-strace-")
    parent = os.path.join(root, "new-parent")
    state = os.path.join(parent, "state")
    config = os.path.join(root, "gatehouse.yaml")
    trace = os.path.join(root, "trace.log")
    with open(config, "w") as f:
        f.write(f"""site: strace
state_directory: {state}
disk_budget_bytes: 64MiB
status_interval_seconds: 60
log_level: info
ingest:
  host: 127.0.0.1
  port: 0
admin:
  host: 127.0.0.1
  port: 0
devices:
  - id: door-1
    driver: generic-json
    type: door-controller
    auth: {{token: "strace-token"}}
sinks:
  - name: central
    type: http
    url: http://127.0.0.1:9/ingest
""")
    daemon = subprocess.Popen(
        ["strace", "-f", "-qq", "-s", "96", "-o", trace,
         "-e", "trace=openat,close,rename,renameat,renameat2,fsync,fdatasync,read,recvfrom,write,writev,sendto,sendmsg",
         binary, "run", "--config", config],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    port = None
    log = []
    deadline = time.monotonic() + 120
    while port is None and time.monotonic() < deadline:
        line = daemon.stderr.readline()
        if not line:
            fail("the daemon exited before listening:\n" + "".join(log), trace)
        log.append(line)
        match = re.search(r"ingest listener ready on \S*:(\d+)", line)
        if match:
            port = int(match.group(1))
    if port is None:
        for child in open(f"/proc/{daemon.pid}/task/{daemon.pid}/children").read().split():
            os.kill(int(child), signal.SIGKILL)
        daemon.kill()
        fail("the daemon did not listen within 120 s:\n" + "".join(log), trace)
    threading.Thread(target=lambda: [log.append(l) for l in daemon.stderr], daemon=True).start()

    statuses = []

    def push(connection_index):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for n in range(EVENTS_PER_CONNECTION):
            body = f'{{"kind": "door.opened", "dedupKey": "c{connection_index}-{n}"}}'
            connection.request("POST", "/v1/devices/door-1/events", body=body,
                               headers={"Authorization": "Bearer strace-token", "Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        connection.close()

    threads = [threading.Thread(target=push, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # SIGTERM goes to the daemon, strace's child: strace itself would only detach.
    children = open(f"/proc/{daemon.pid}/task/{daemon.pid}/children").read().split()
    for child in children:
        os.kill(int(child), signal.SIGTERM)
    try:
        daemon.wait(timeout=120)
    except subprocess.TimeoutExpired:
        for child in children:
            os.kill(int(child), signal.SIGKILL)
        daemon.kill()
        fail("the daemon did not stop within 120 s of SIGTERM", trace)
    if statuses.count(200) != CONNECTIONS * EVENTS_PER_CONNECTION:
        fail(f"expected {CONNECTIONS * EVENTS_PER_CONNECTION} replies 200, got {statuses}", trace)

    check(trace, root, parent, state)
    shutil.rmtree(root, ignore_errors=True)


def calls(trace):
    """(index, name, text, result) per system call, at the line where it finished; `start` is the
    index where it began. Unfinished/resumed pairs are joined per thread."""
    pending = {}
    for index, line in enumerate(open(trace, errors="replace")):
        match = re.match(r"(\d+)\s+(.*)$", line.rstrip("\n"))
        if not match:
            continue
        tid, rest = match.groups()
        if rest.endswith("<unfinished ...>"):
            call = re.match(r"(\w+)\((.*)<unfinished \.\.\.>$", rest)
            if call:
                pending[tid] = (index, call.group(1), call.group(2))
            continue
        resumed = re.match(r"<\.\.\. (\w+) resumed>(.*)$", rest)
        if resumed:
            start, name, head = pending.pop(tid, (index, resumed.group(1), ""))
            text = head + resumed.group(2)
        else:
            call = re.match(r"(\w+)\((.*)$", rest)
            if not call:
                continue
            start, name, text = index, call.group(1), call.group(2)
        result = re.search(r"\)\s+=\s+(-?\d+)", text)
        yield start, index, name, text, int(result.group(1)) if result else None


def check(trace, root, parent, state):
    paths = {}              # fd -> path of the last openat that returned it
    last_wal_sync = -1      # index where the last WAL fsync/fdatasync finished
    request_read = {}       # socket fd -> index of the last read of a request's first bytes
    replies = 0
    directory_syncs = []    # (finished index, path)
    wal_created = None
    queue_renamed = None
    for start, end, name, text, result in calls(trace):
        fd_match = re.match(r"(\d+)", text)
        fd = int(fd_match.group(1)) if fd_match else None
        if name == "openat" and result is not None and result >= 0:
            path = re.search(r'"([^"]*)"', text)
            if path:
                paths[result] = os.path.normpath(path.group(1))
                if paths[result] == os.path.join(state, "queue.sqlite-wal") and wal_created is None:
                    wal_created = end
        elif name == "close" and fd is not None:
            paths.pop(fd, None)
        elif name.startswith("rename") and result == 0 and f'"{os.path.join(state, "queue.sqlite")}"' in text:
            queue_renamed = end
        elif name in ("fsync", "fdatasync") and result == 0 and fd in paths:
            if paths[fd].endswith("queue.sqlite-wal"):
                last_wal_sync = end
            elif os.path.isdir(paths[fd]):
                directory_syncs.append((end, paths[fd]))
        elif name in ("read", "recvfrom") and fd is not None and result and result > 0 and '"POST ' in text:
            request_read[fd] = end
        elif name in ("write", "writev", "sendto", "sendmsg") and fd is not None and '"HTTP/1.1 200' in text:
            if fd not in request_read:
                continue  # the admin listener or a reply to something this script did not send
            replies += 1
            if last_wal_sync < request_read[fd]:
                fail(f"a 200 reply on fd {fd} (trace line {start + 1}) was written before any WAL fsync "
                     f"after its request was read (line {request_read[fd] + 1})", trace)
    if replies < CONNECTIONS * EVENTS_PER_CONNECTION:
        fail(f"found {replies} 200 replies to pushes in the trace, expected {CONNECTIONS * EVENTS_PER_CONNECTION}", trace)
    synced = lambda path, after: any(p == path and i > after for i, p in directory_syncs)
    if not synced(root, -1):
        fail(f"{root} was not fsynced after the daemon created {parent} in it", trace)
    if not synced(parent, -1):
        fail(f"{parent} was not fsynced after the daemon created {state} in it", trace)
    if queue_renamed is None:
        fail("no rename of the new queue file into place was traced", trace)
    if not synced(state, queue_renamed):
        fail(f"{state} was not fsynced after queue.sqlite was created in it", trace)
    if wal_created is None:
        fail("the WAL file was never opened", trace)
    if not synced(state, wal_created):
        fail(f"{state} was not fsynced after queue.sqlite-wal was created in it", trace)
    print(f"strace-durability: ok: {replies} replies after their WAL fsync; new directories, queue and WAL fsynced into their directories")


if __name__ == "__main__":
    main()
