#!/usr/bin/env python3
"""The district test's view of a NATS JetStream cluster, through the PyPI client nats-py.

  prepare --servers URLS   create the capture stream CAPTURE (subjects gatehouse.>, 3 replicas)
                           and, once the MQTT interface has made $MQTT_msgs, the durable audit
                           consumer on it; print both streams' replica counts as JSON.
  read --servers URLS      print, per stream, every stored gatehouse message as [event id,
                           payload digest], in stream order (duplicates included), as JSON.

Why two streams: NATS stores an MQTT QoS 1 PUBLISH in $MQTT_msgs (subject $MQTT.msgs.<topic
with / as .>) and sends the PUBACK only after that store succeeded (server/mqtt.go,
mqttProcessPub), so $MQTT_msgs is where "acknowledged" is kept. A stream of our own on
gatehouse.> receives the same message as a plain NATS publish, with no acknowledgement to
anyone: it is read and reported, not relied on. $MQTT_msgs keeps messages only while a
consumer is interested (interest retention), hence the audit consumer, which never acknowledges.
"""
import argparse
import asyncio
import hashlib
import json
import subprocess
import sys

CAPTURE = "DISTRICT"
MQTT_STREAM = "$MQTT_msgs"
AUDIT = "district-audit"


def ensure_nats():
    try:
        import nats  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "nats-py"], check=True, timeout=300)


async def retry(what, action, seconds=120):
    """Bounded: the cluster elects its JetStream leaders a while after the nodes listen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            return await action()
        except Exception as error:  # any failure is retried until the deadline, then reported
            if loop.time() > deadline:
                raise RuntimeError(f"{what}: {error!r}") from error
            await asyncio.sleep(0.5)


async def prepare(js):
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

    await retry("add stream " + CAPTURE, lambda: js.add_stream(
        StreamConfig(name=CAPTURE, subjects=["gatehouse.>"], num_replicas=3, storage=StorageType.FILE)))
    mqtt = await retry(MQTT_STREAM + " (made by the first MQTT connection)", lambda: js.stream_info(MQTT_STREAM))
    await retry("audit consumer", lambda: js.add_consumer(MQTT_STREAM, ConsumerConfig(
        durable_name=AUDIT, filter_subject="$MQTT.msgs.gatehouse.>", ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL)))
    capture = await js.stream_info(CAPTURE)
    return {"replicas": {CAPTURE: capture.config.num_replicas, MQTT_STREAM: mqtt.config.num_replicas}}


async def read_stream(js, stream, prefix):
    from nats.js.errors import NotFoundError

    async def get(seq):
        try:
            return await js.get_msg(stream, seq)
        except NotFoundError:
            return None  # a deleted sequence

    info = await retry("stream info " + stream, lambda: js.stream_info(stream))
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        message = await retry(f"{stream} #{seq}", lambda: get(seq), seconds=60)
        if message is None or not message.subject.startswith(prefix):
            continue
        body = message.data or b""
        try:
            event_id = json.loads(body).get("id")
        except ValueError:
            event_id = None
        found.append([event_id, hashlib.sha256(body).hexdigest()[:16]])
    return found


async def read(js):
    return {
        MQTT_STREAM: await read_stream(js, MQTT_STREAM, "$MQTT.msgs.gatehouse."),
        CAPTURE: await read_stream(js, CAPTURE, "gatehouse."),
    }


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["prepare", "read"])
    parser.add_argument("--servers", required=True)
    args = parser.parse_args()
    ensure_nats()
    import nats

    nc = await nats.connect(servers=args.servers.split(","), connect_timeout=5, max_reconnect_attempts=60)
    try:
        js = nc.jetstream(timeout=10)
        result = await (prepare(js) if args.command == "prepare" else read(js))
    finally:
        await nc.close()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
