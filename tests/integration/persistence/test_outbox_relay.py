"""The outbox relay on a real broker: woken by PostgreSQL notifications, polling
when it cannot listen (SQLite, or its listening connection gone)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiomqtt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.contract.topics import Topics
from wcs.mqtt.client import make_client
from wcs.persistence.outbox import OutboxMessage, OutboxRelay, enqueue
from wcs.persistence.outbox_signal import CHANNEL
from wcs.settings import MqttEndpoint

# Longer than any wait below: a row that arrives in time was not found by a poll.
NO_POLL_S = 60.0


async def _write(engine: AsyncEngine, topic: str, n: int) -> None:
    """A row committed by a connection of its own, as another process would."""
    async with engine.begin() as conn:
        await enqueue(conn, [OutboxMessage(topic, json.dumps({"n": n}).encode())])


async def _receive(messages: AsyncIterator[aiomqtt.Message], within_s: float) -> dict[str, int]:
    async with asyncio.timeout(within_s):
        message = await anext(messages)
    body: dict[str, int] = json.loads(bytes(message.payload))
    return body


async def _until(condition: object, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_row_committed_elsewhere_is_published_on_its_notification(
    pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    topic = f"{Topics(site).root}/relay-test"
    relay = OutboxRelay(pg_engine, mqtt_endpoint, idle_poll_s=NO_POLL_S, listening_poll_s=NO_POLL_S)
    async with make_client(mqtt_endpoint) as sub, relay:
        await sub.subscribe(topic, qos=1)
        messages = aiter(sub.messages)
        await _until(lambda: relay.stats.listening)
        for n in range(3):
            started = time.monotonic()
            await _write(pg_engine, topic, n)
            assert await _receive(messages, within_s=5) == {"n": n}
            assert time.monotonic() - started < 5
        await _until(lambda: relay.stats.published == 3)  # counted once marked


async def test_rows_deferred_for_their_writer_wake_no_one(
    pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    """The controller's own rows (with a deferral) do not notify: it sends them itself."""
    async with pg_engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        heard: list[str] = []

        def listen(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            heard.append(payload)

        await raw.add_listener(CHANNEL, listen)
        async with pg_engine.begin() as writer:
            await writer.execute(
                text(
                    "INSERT INTO outbox (topic, payload, qos, retain, created_at, deferred_until)"
                    " VALUES ('x/deferred', '{}', 1, false, now(), now() + interval '10 s')"
                )
            )
        await _write(pg_engine, "x/now", 1)
        await _until(lambda: heard)
        await asyncio.sleep(0.2)
        assert heard == [""]  # one notification: the row to publish now
        await raw.remove_listener(CHANNEL, listen)


async def test_the_relay_polls_while_it_cannot_listen_and_listens_again(
    pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    topic = f"{Topics(site).root}/relay-test"
    relay = OutboxRelay(pg_engine, mqtt_endpoint, idle_poll_s=0.05, listening_poll_s=NO_POLL_S)
    async with make_client(mqtt_endpoint) as sub, relay:
        await sub.subscribe(topic, qos=1)
        messages = aiter(sub.messages)
        await _until(lambda: relay.stats.listening)
        async with pg_engine.begin() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                )
            )
        assert killed == 1
        # Gone without a word to the relay: the next row still goes out (by the
        # reconnect's look or the fast poll), and the relay listens again.
        await _write(pg_engine, topic, 1)
        assert await _receive(messages, within_s=5) == {"n": 1}
        await _until(lambda: relay.stats.listening)
        await _write(pg_engine, topic, 2)
        assert await _receive(messages, within_s=5) == {"n": 2}


async def test_without_notifications_the_relay_polls(
    engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    """SQLite has no LISTEN: rows go out at the next poll. (On PostgreSQL the same
    relay listens; this runs on both.)"""
    topic = f"{Topics(site).root}/relay-test"
    async with make_client(mqtt_endpoint) as sub, OutboxRelay(engine, mqtt_endpoint) as relay:
        await sub.subscribe(topic, qos=1)
        messages = aiter(sub.messages)
        await _write(engine, topic, 7)
        assert await _receive(messages, within_s=5) == {"n": 7}
        await _until(lambda: relay.stats.listening is (engine.dialect.name == "postgresql"))
