#!/usr/bin/env python3
"""The ONVIF camera simulator checked by a client we did not write: onvif-zeep-async (PyPI).

Starts `.build/debug/gatehouse-sim onvif --port 0` with a camera clock ten minutes behind and a
motion alarm toggling, then has the client read the clock, the device information, create a
PullPoint subscription and pull until the alarm arrives, then read the media profiles and fetch
the snapshot GetSnapshotUri names (Digest). Exits non-zero with the reason when
anything the client saw is not what the simulator served. Every step is bounded in time.
"""
import asyncio
import datetime as dt
import os
import re
import subprocess
import sys

# This file is named onvif.py too: keep its folder off the import path so `import onvif` finds the client.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIM = os.path.join(ROOT, ".build", "debug", "gatehouse-sim")


def ensure_client():
    try:
        import onvif  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "onvif-zeep-async"], check=True, timeout=600)


def fail(message):
    print(f"thirdparty/onvif: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


async def check(port):
    from onvif import ONVIFCamera

    camera = ONVIFCamera("127.0.0.1", port, "gateway", "Demo#2025", adjust_time=True)
    try:
        await asyncio.wait_for(camera.update_xaddrs(), 20)
        device = await camera.create_devicemgmt_service()
        clock = await asyncio.wait_for(device.GetSystemDateAndTime(), 10)
        utc = clock.UTCDateTime
        camera_time = dt.datetime(utc.Date.Year, utc.Date.Month, utc.Date.Day, utc.Time.Hour, utc.Time.Minute, utc.Time.Second, tzinfo=dt.timezone.utc)
        behind = (dt.datetime.now(dt.timezone.utc) - camera_time).total_seconds()
        if not 590 <= behind <= 620:
            fail(f"camera clock should be 600 s behind, is {behind:.0f} s")
        info = await asyncio.wait_for(device.GetDeviceInformation(), 10)
        if info.Manufacturer != "Gatehouse Sim" or not info.Model:
            fail(f"unexpected device information {info}")
        events = await camera.create_events_service()
        subscription = await asyncio.wait_for(events.CreatePullPointSubscription({"InitialTerminationTime": "PT60S"}), 10)
        address = subscription.SubscriptionReference.Address._value_1
        if "/onvif/Subscription?Idx=" not in address:
            fail(f"unexpected subscription address {address}")
        lifetime = (subscription.TerminationTime - subscription.CurrentTime).total_seconds()
        if lifetime != 60:
            fail(f"subscription lifetime {lifetime} s, asked 60")
        camera.xaddrs["http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"] = address
        pullpoint = await camera.create_pullpoint_service()
        seen = []
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            reply = await asyncio.wait_for(pullpoint.PullMessages({"Timeout": dt.timedelta(seconds=2), "MessageLimit": 10}), 15)
            for message in reply.NotificationMessage or []:
                topic = message.Topic._value_1
                items = {item.Name: item.Value for item in message.Message._value_1.Data.SimpleItem}
                seen.append((topic, items))
            if any("VideoSource/MotionAlarm" in topic and items.get("State") in ("true", "false") for topic, items in seen):
                break
        if not seen:
            fail("no NotificationMessage pulled within 30 s")
        manager = await camera.create_subscription_service("PullPointSubscription")
        await asyncio.wait_for(manager.Unsubscribe(), 10)
        # The media service as picture health uses it: GetProfiles, GetSnapshotUri, the JPEG behind Digest.
        media = await camera.create_media_service()
        profiles = await asyncio.wait_for(media.GetProfiles(), 10)
        if not profiles or not profiles[0].token:
            fail(f"GetProfiles gave no profile token: {profiles}")
        uri = await asyncio.wait_for(camera.get_snapshot_uri(profiles[0].token), 10)
        if not uri or "/onvif/snapshot/" not in uri:
            fail(f"unexpected GetSnapshotUri {uri!r}")
        jpeg = await asyncio.wait_for(camera.get_snapshot(profiles[0].token), 20)
        if not jpeg or jpeg[:2] != b"\xff\xd8":
            fail(f"get_snapshot did not return a JPEG: {jpeg[:16] if jpeg else jpeg!r}")
        print(f"thirdparty/onvif: ok — onvif-zeep-async read the clock ({behind:.0f} s behind), {info.Manufacturer} {info.Model}, "
              f"subscribed at {address} and pulled {seen[0][0]} {seen[0][1]}; GetSnapshotUri {uri}, snapshot {len(jpeg)} bytes (Digest)")
    finally:
        await camera.close()


def main():
    ensure_client()
    if not os.access(SIM, os.X_OK):
        fail(f"{SIM} not built (swift build first)")
    sim = subprocess.Popen([SIM, "onvif", "--port", "0", "--clock-offset=-600", "--alarm-every", "0.5", "--seconds", "120"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = sim.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)/", line)
        if not match:
            fail(f"simulator did not report its port: {line!r} {sim.stderr.read() if sim.poll() is not None else ''}")
        asyncio.run(asyncio.wait_for(check(int(match.group(1))), 90))
    finally:
        sim.terminate()
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()


if __name__ == "__main__":
    main()
