"""handle_in_callback: messages handled as paho reads them, nothing left on aiomqtt's
queue, and the message iterator still ends when the connection does."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest
from paho.mqtt.client import MQTTMessage

from wcs.mqtt.client import handle_in_callback, make_client
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.settings import MqttEndpoint


async def test_messages_are_handled_in_order_and_never_queued(
    mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    topic = f"{site}/cb"
    got: list[bytes] = []

    def handle(message: MQTTMessage) -> None:
        got.append(bytes(message.payload))

    async with make_client(mqtt_endpoint, protocol=5) as receiver:
        with handle_in_callback(receiver, handle):
            await receiver.subscribe(topic, qos=1)
            async with make_client(mqtt_endpoint) as sender:
                for n in range(50):
                    await sender.publish(topic, f"{n}".encode(), qos=1)
            async with asyncio.timeout(10):
                while len(got) < 50:
                    await asyncio.sleep(0.01)
            assert receiver._queue.qsize() == 0  # aiomqtt's queue (pinned) held none
        # Outside the block aiomqtt's own handler is back: messages queue again.
        async with make_client(mqtt_endpoint) as sender:
            await sender.publish(topic, b"after", qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(receiver.messages))
    assert got == [f"{n}".encode() for n in range(50)]
    assert message.payload == b"after"


async def test_the_iterator_still_ends_with_the_connection() -> None:
    with PrivateMosquitto() as broker:
        endpoint = MqttEndpoint.parse(broker.url)
        async with make_client(endpoint) as client:
            with handle_in_callback(client, lambda _m: None):
                waiting = asyncio.create_task(anext(aiter(client.messages)))
                await asyncio.sleep(0.2)
                broker.stop()
                async with asyncio.timeout(10):
                    with pytest.raises(aiomqtt.MqttError):
                        await waiting
