#!/usr/bin/env python3
"""Third-party check: pyhik (PyPI `pyhik`, module `pyhik.hikvision`), code we did not write,
against `gatehouse-sim hikvision-camera`. It logs in (Basic refused, then Digest), reads
deviceInfo, Event/triggers and motionDetection, holds alertStream open, and must see the
simulator's motion alarm turn its sensor on and then off. Every wait is bounded.

Usage: scripts/thirdparty/hikvision.py [path/to/gatehouse-sim]   (default .build/debug/gatehouse-sim)
"""
import importlib
import re
import subprocess
import sys
import threading
import time

DEADLINE_SECONDS = 60


def require_pyhik():
    try:
        return importlib.import_module("pyhik.hikvision")
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pyhik"], check=True, timeout=300)
        return importlib.import_module("pyhik.hikvision")


def main():
    simulator = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/gatehouse-sim"
    hikvision = require_pyhik()
    sim = subprocess.Popen(
        [simulator, "hikvision-camera", "--port", "0", "--username", "admin", "--password", "hik12345",
         "--heartbeat-seconds", "1", "--alarm", "VMD", "--alarm-every", "1"],
        stdout=subprocess.PIPE, text=True)
    try:
        # The simulator prints the port it bound; read it within the deadline.
        found = {}

        def read_port():
            for line in sim.stdout:
                match = re.search(r"http://127\.0\.0\.1:(\d+)/ISAPI/Event/notification/alertStream", line)
                if match:
                    found["port"] = int(match.group(1))
                    return

        reader = threading.Thread(target=read_port, daemon=True)
        reader.start()
        reader.join(timeout=30)
        if "port" not in found:
            sys.exit("hikvision.py: the simulator did not report its port")
        port = found["port"]

        camera = hikvision.HikCamera("http://127.0.0.1", port, "admin", "hik12345")
        if camera.cam_id is None or camera.name != "Simulated Camera":
            sys.exit(f"hikvision.py: pyhik could not read deviceInfo (id {camera.cam_id!r}, name {camera.name!r})")
        states = camera.current_event_states
        if not states or "Motion" not in states:
            sys.exit(f"hikvision.py: pyhik found no Motion sensor in Event/triggers: {states!r}")
        if camera.current_motion_detection_state is not True:
            sys.exit("hikvision.py: pyhik could not read motionDetection")

        seen = []
        sensor = f"{camera.cam_id}.Motion.1"
        camera.add_update_callback(lambda _msg: seen.append(camera.fetch_attributes("Motion", 1)[0]), sensor)
        camera.start_stream()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline and not (True in seen and False in seen[seen.index(True):]):
            time.sleep(0.1)
        connected = camera.stream_connected
        camera.disconnect()
        if not (True in seen and False in seen[seen.index(True):]):
            sys.exit(f"hikvision.py: pyhik did not see Motion turn on and off within {DEADLINE_SECONDS} s (saw {seen}, connected {connected})")
        print(f"hikvision.py: pyhik {hikvision.__version__ if hasattr(hikvision, '__version__') else ''} read deviceInfo and triggers "
              f"({len(states)} sensor types) and saw Motion on channel 1 turn on and off over alertStream")
    finally:
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()


if __name__ == "__main__":
    main()
