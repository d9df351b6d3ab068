#!/usr/bin/env python3
"""Stands in for the ThingsBoard server behind a ThingsBoard IoT gateway in scripts/bench.sh.

Connects to the local mosquitto the gateway publishes to, answers the gateway's getSessionLimits
RPC (without an answer the gateway stores events but never forwards them), and counts the events
that arrive on v1/gateway/telemetry by their dedupKey, rewriting {unique, total, duplicates} to a
progress file twice a second the way `gatehouse-sim receiver --progress-json` does.
Needs paho-mqtt, which the gateway's own virtualenv has: run it with that Python.
Usage: thingsboard-standin.py MQTT_PORT PROGRESS_JSON
"""
import json
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt

port, progress = int(sys.argv[1]), sys.argv[2]
seen, total, lock = set(), 0, threading.Lock()
limits = json.dumps({"rateLimits": {"unlimited": True}, "maxInflightMessages": 10000, "maxPayloadSize": 65536})


def on_connect(client, *_):
    client.subscribe([("v1/devices/me/rpc/request/+", 1), ("v1/gateway/telemetry", 1)])


def on_message(client, _, message):
    global total
    if message.topic.startswith("v1/devices/me/rpc/request/"):
        request_id = message.topic.rsplit("/", 1)[1]
        client.publish(f"v1/devices/me/rpc/response/{request_id}", limits, qos=1)
        return
    batch = json.loads(message.payload)
    keys = [entry.get("values", {}).get("dedupKey") for entries in batch.values() for entry in entries]
    with lock:
        total += len(keys)
        seen.update(k for k in keys if k)


try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="thingsboard-standin")
except AttributeError:  # paho 1.x
    client = mqtt.Client(client_id="thingsboard-standin")
client.on_connect, client.on_message = on_connect, on_message
client.connect("127.0.0.1", port)
client.loop_start()
while True:
    with lock:
        figures = {"unique": len(seen), "total": total, "duplicates": total - len(seen)}
    with open(progress + ".tmp", "w") as f:
        json.dump(figures, f)
    os.replace(progress + ".tmp", progress)
    time.sleep(0.5)
