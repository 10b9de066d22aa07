"""A station's MQTT session outlives its connection, in MQTT 3.1.1 and in MQTT 5,
and a broker restart.

A station's owner acknowledges an event only after its effect committed, on a
persistent session named after the station, so whoever connects under that name next
- the same process restarted, or the instance that took the station over - gets what
was not acknowledged and what arrived meanwhile. In MQTT 5 a session ends with its
connection unless the client asks for an expiry interval and does not start clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Literal

import aiomqtt
import pytest

from wcs.mqtt.client import acknowledge_manually, make_client
from wcs.mqtt.mosquitto import PrivateMosquitto


@pytest.fixture
def broker() -> Iterator[PrivateMosquitto]:
    with PrivateMosquitto() as private:
        yield private


async def receive(client: aiomqtt.Client, count: int) -> list[str]:
    got: list[str] = []
    async with asyncio.timeout(5):
        async for message in client.messages:
            got.append(bytes(message.payload).decode())  # type: ignore[arg-type]
            if len(got) == count:
                break
    return got


@pytest.mark.parametrize(("protocol", "topic"), [(3, "t/#"), (5, "t/#")])
async def test_what_was_not_acknowledged_comes_back_after_the_connection_died(
    broker: PrivateMosquitto, protocol: Literal[3, 5], topic: str
) -> None:
    def controller() -> aiomqtt.Client:
        client = make_client(
            broker.endpoint, identifier="wcs-x-st-PK1", protocol=protocol, clean_session=False
        )
        acknowledge_manually(client)  # acknowledged after commit, as the controller does
        return client

    async with controller() as first:
        await first.subscribe(topic, qos=1)
    async with make_client(broker.endpoint) as device:
        for n in range(3):
            await device.publish("t/scan", f"m{n}".encode(), qos=1)  # while it is away
    async with controller() as second:
        assert await receive(second, 3) == ["m0", "m1", "m2"]
        # Received, never acknowledged: the process dies before its commit.
    async with controller() as third:
        redelivered = await receive(third, 3)
        assert redelivered == ["m0", "m1", "m2"]


async def test_a_clean_mqtt5_client_still_starts_clean(broker: PrivateMosquitto) -> None:
    async with make_client(broker.endpoint, identifier="viewer", protocol=5) as first:
        await first.subscribe("t/#", qos=1)
    async with make_client(broker.endpoint) as device:
        await device.publish("t/scan", b"m0", qos=1)
    async with make_client(broker.endpoint, identifier="viewer", protocol=5) as again:
        with pytest.raises(TimeoutError):
            await receive(again, 1)


async def test_a_station_session_survives_a_broker_restart() -> None:
    """What a restarted Mosquitto accepts before the station's owner is back reaches it:
    a plain persistent subscription is restored from the broker's persistence file."""
    with PrivateMosquitto(persistence=True) as broker:
        async with make_client(
            broker.endpoint, identifier="wcs-x-st-PK1", clean_session=False
        ) as station:
            await station.subscribe("t/#", qos=1)
        await asyncio.to_thread(broker.restart)
        async with make_client(broker.endpoint) as device:
            await device.publish("t/scan", b"after the restart", qos=1)
        async with make_client(
            broker.endpoint, identifier="wcs-x-st-PK1", clean_session=False
        ) as station:
            assert await receive(station, 1) == ["after the restart"]
