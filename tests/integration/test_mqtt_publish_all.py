"""publish_all: a batch handed to the client at once, in order, confirmed as a whole."""

from __future__ import annotations

import asyncio
import os
import signal

import aiomqtt
import pytest

from wcs.mqtt.client import make_client, publish_all
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.settings import MqttEndpoint


async def test_a_batch_arrives_in_order_and_its_confirmations_resolve_it(
    mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    topic = f"{site}/batch"
    async with make_client(mqtt_endpoint) as receiver, make_client(mqtt_endpoint) as sender:
        await receiver.subscribe(topic, qos=1)
        # 45 QoS 1 messages: more than paho's in-flight window holds at once, so some
        # wait in paho for confirmations before they are even written.
        batch = [(topic, f"{n}".encode(), 1, False) for n in range(45)]
        sending = publish_all(sender, batch)
        async with asyncio.timeout(10):
            await sending
        assert sender._pending_publishes == {}
        got: list[int] = []
        async with asyncio.timeout(10):
            async for message in receiver.messages:
                assert isinstance(message.payload, bytes)
                got.append(int(message.payload))
                if len(got) == 45:
                    break
    assert got == list(range(45))


async def test_only_qos_0_is_done_at_once(mqtt_endpoint: MqttEndpoint, site: str) -> None:
    async with make_client(mqtt_endpoint) as sender:
        sending = publish_all(sender, [(f"{site}/q0", b"x", 0, False)] * 3)
        assert sending.done() and sending.exception() is None


async def test_a_client_no_longer_connected_fails_the_batch(
    mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    client = make_client(mqtt_endpoint)
    async with client:
        pass
    sending = publish_all(client, [(f"{site}/gone", b"x", 1, False)])
    with pytest.raises(aiomqtt.MqttCodeError):
        await sending
    assert client._pending_publishes == {}


async def test_confirmations_that_do_not_come_fail_the_batch_in_time() -> None:
    with PrivateMosquitto() as broker:
        async with make_client(broker.endpoint) as client:
            pid = broker._process.pid  # type: ignore[union-attr]
            os.kill(pid, signal.SIGSTOP)  # the broker hangs: no PUBACK comes
            try:
                sending = publish_all(client, [("t/hang", b"x", 1, False)] * 2, timeout_s=0.5)
                with pytest.raises(aiomqtt.MqttError, match="did not confirm"):
                    await sending
                assert client._pending_publishes == {}
            finally:
                os.kill(pid, signal.SIGCONT)
