"""The outbox relay on a real broker: woken at once by its own process, polling for
rows other processes commit, less and less often while there are none."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable

import aiomqtt
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.contract.topics import Topics
from wcs.mqtt.client import make_client
from wcs.persistence.outbox import OutboxMessage, OutboxRelay, enqueue
from wcs.settings import MqttEndpoint


async def _write(engine: AsyncEngine, topic: str, n: int) -> None:
    async with engine.begin() as conn:
        await enqueue(conn, [OutboxMessage(topic, json.dumps({"n": n}).encode())])


async def _receive(messages: AsyncIterator[aiomqtt.Message], within_s: float) -> dict[str, int]:
    async with asyncio.timeout(within_s):
        message = await anext(messages)
    body: dict[str, int] = json.loads(bytes(message.payload))
    return body


@contextlib.asynccontextmanager
async def _watched_relay(
    engine: AsyncEngine, endpoint: MqttEndpoint, topic: str, *, poll_s: float, poll_max_s: float
) -> AsyncIterator[tuple[OutboxRelay, AsyncIterator[aiomqtt.Message]]]:
    """A relay that has made its first look, and the messages arriving on ``topic``."""
    relay = OutboxRelay(engine, endpoint, idle_poll_s=poll_s, idle_poll_max_s=poll_max_s)
    async with make_client(endpoint) as sub, relay:
        await sub.subscribe(topic, qos=1)
        await _until(lambda: relay.stats.looks >= 1)
        yield relay, aiter(sub.messages)


async def _until(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_wake_from_its_own_process_is_published_at_once(
    engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    topic = f"{Topics(site).root}/relay-test"
    # Polls 30 s apart: a row that arrives sooner came by the wake.
    watched = _watched_relay(engine, mqtt_endpoint, topic, poll_s=30, poll_max_s=30)
    async with watched as (relay, messages):
        for n in range(3):
            await _write(engine, topic, n)
            relay.wake()
            assert await _receive(messages, within_s=5) == {"n": n}
        await _until(lambda: relay.stats.published == 3)  # counted once marked


async def test_an_idle_relay_looks_less_and_less_often_and_still_finds_new_rows(
    engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    topic = f"{Topics(site).root}/relay-test"
    watched = _watched_relay(engine, mqtt_endpoint, topic, poll_s=0.02, poll_max_s=0.2)
    async with watched as (relay, messages):
        first = relay.stats.looks
        await asyncio.sleep(2.0)
        # 20, 40, 80, 160 ms, then 200 ms apart: about 13 looks in 2 s (100 at a
        # steady 20 ms).
        assert 5 <= relay.stats.looks - first <= 20
        # Committed by another process (no wake): found by the next look.
        await _write(engine, topic, 7)
        assert await _receive(messages, within_s=5) == {"n": 7}
