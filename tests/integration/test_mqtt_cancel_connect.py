"""A client cancelled while it connects leaves no task and no connection behind
(aiomqtt 2.5 alone leaves its housekeeping task running and the socket open)."""

from __future__ import annotations

import asyncio

import pytest

from wcs.mqtt.client import make_client
from wcs.settings import MqttEndpoint


def _others() -> list[str]:
    me = asyncio.current_task()
    return [
        getattr(t.get_coro(), "__qualname__", t.get_name())
        for t in asyncio.all_tasks()
        if t is not me
    ]


@pytest.mark.parametrize("after_s", [0.0, 0.001, 0.003, 0.01])
async def test_a_connect_cancelled_half_way_leaves_nothing_behind(
    mqtt_endpoint: MqttEndpoint, after_s: float
) -> None:
    client = make_client(mqtt_endpoint)

    async def session() -> None:
        async with client:
            await asyncio.Event().wait()

    task = asyncio.create_task(session(), name="session")
    await asyncio.sleep(after_s)  # in the connect (thread, then CONNACK) or just past it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert _others() == []
    assert client._client.socket() is None  # disconnected, not left open
