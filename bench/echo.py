"""A bare MQTT echo (paho, one thread): the floor under every latency figure.

``python -m bench.echo --host H --port P``: every QoS 1 message on ``bench/req/<k>``
is published back, unchanged, on ``bench/rep/<k>``.
"""

from __future__ import annotations

import argparse
import signal
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from wcs.mqtt.client import set_paho_nodelay


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-echo")

    def on_connect(c: mqtt.Client, *_: object) -> None:
        set_paho_nodelay(c)
        c.subscribe("bench/req/+", qos=1)

    def on_message(c: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        key = message.topic.rsplit("/", 1)[1]
        c.publish(f"bench/rep/{key}", message.payload, qos=1)

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(args.host, args.port)
    client.loop_start()
    print("ready", flush=True)
    stop.wait()
    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    main()
