#!/usr/bin/env python3
"""Third-party check of the Dahua simulator: the PyPI `amcrest` client (code we did not write)
logs in with Digest, reads the camera's name and serial number, attaches to the event stream and
must see a VideoMotion event fired by the simulator, with its multi-line data parsed.

Run from the checkout after `swift build`: python3 scripts/thirdparty/dahua.py
"""
import json
import os
import queue
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIM = os.path.join(ROOT, ".build", "debug", "gatehouse-sim")
TIMEOUT = 60  # seconds for the whole check; the simulator fires an event every 0.3 s


def ensure_amcrest():
    try:
        import amcrest  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "amcrest"], check=True, timeout=300)


def fail(message, sim=None):
    if sim is not None:
        sim.kill()
    print(f"dahua third-party check FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    ensure_amcrest()
    from amcrest import AmcrestCamera

    sim = subprocess.Popen(
        [SIM, "dahua", "--port", "0", "--fire-every", "0.3", "--username", "admin", "--password", "dahua123"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in sim.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=30)
    except queue.Empty:
        fail("the simulator printed no port", sim)
    # "dahua camera SIM000000 on http://127.0.0.1:PORT/cgi-bin/..."
    port = int(first.split("http://127.0.0.1:")[1].split("/")[0])

    seen = {}

    def client():
        try:
            camera = AmcrestCamera("127.0.0.1", port, "admin", "dahua123", retries_connection=1, timeout_protocol=10.0).camera
            seen["serial"] = camera.serial_number
            seen["name"] = camera.machine_name
            for code, payload in camera.event_actions("VideoMotion", timeout_cmd=(10.0, 10.0)):
                if code == "VideoMotion" and payload.get("action") in ("Start", "Stop"):
                    seen["event"] = payload
                    return
        except Exception as error:  # reported below with what was seen so far
            seen["error"] = repr(error)

    worker = threading.Thread(target=client, daemon=True)
    worker.start()
    worker.join(TIMEOUT)
    sim.terminate()
    try:
        sim.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sim.kill()

    if worker.is_alive():
        fail(f"amcrest saw no event within {TIMEOUT} s (seen: {seen})")
    if "error" in seen:
        fail(f"amcrest failed: {seen['error']} (seen: {seen})")
    if seen.get("serial") != "SIM000000":
        fail(f"serial number {seen.get('serial')!r}, expected SIM000000")
    event = seen.get("event") or {}
    data = event.get("data")
    if not isinstance(data, dict) or data.get("RegionName") != ["Region1"] or event.get("index") != "0":
        fail(f"event not as fired: {json.dumps(event)}")
    print(f"dahua third-party check: amcrest read {seen['name']} / {seen['serial']} and saw {event['Code']} {event['action']} on index {event['index']}")


if __name__ == "__main__":
    main()
