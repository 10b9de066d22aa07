"""The MQTT side of the live feed against real brokers: Mosquitto (MQTT 5) and the
embedded amqtt broker (3.1.1 only)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api import live
from api.live import LiveEvent, LiveFeed, LiveHub, Subscriber
from tests.ports import free_port
from wcs.contract.payloads import DeviceStatus, OrderStateChange
from wcs.contract.topics import Topics
from wcs.mqtt.broker import ensure_broker
from wcs.mqtt.client import make_client
from wcs.persistence.db import make_engine
from wcs.services.devices import list_devices
from wcs.settings import MqttEndpoint, Settings


@pytest.fixture
async def embedded_broker() -> AsyncIterator[MqttEndpoint]:
    endpoint = MqttEndpoint(host="127.0.0.1", port=free_port())
    async with ensure_broker(endpoint, allow_embedded=True) as started:
        assert started
        yield endpoint


async def _next_order(sub: Subscriber, timeout: float = 10.0) -> LiveEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await sub.next()
            assert event is not None
            if event.kind == "order":
                return event


async def _scenario(engine: AsyncEngine, endpoint: MqttEndpoint, site: str) -> LiveFeed:
    """Retained history first, then the feed starts, then something happens."""
    topics = Topics(site)
    old = OrderStateChange(order_id="o-old", seq=4, from_="picked", to="qc_passed")
    status = DeviceStatus(state="online", kind="scale", zone="pack")
    async with make_client(endpoint) as pub:
        await pub.publish(topics.order_state("o-old"), old.to_json(), qos=1, retain=True)
        await pub.publish(topics.dev_status("sc1"), status.to_json(), qos=1, retain=True)
    settings = Settings(mqtt_url=f"mqtt://{endpoint.host}:{endpoint.port}", site=site)
    hub = LiveHub(16)
    sub = hub.subscribe()
    try:
        async with LiveFeed(engine, settings, topics, hub) as feed:
            await asyncio.wait_for(feed.connected.wait(), 10)

            async def recorded() -> None:
                while not [d for d in await list_devices(engine) if d.id == "sc1"]:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(recorded(), 10)  # the retained status was taken in
            new = OrderStateChange(order_id="o-new", seq=1, from_=None, to="received")
            async with make_client(endpoint) as pub:
                await pub.publish(topics.order_state("o-x"), b"{not json", qos=1)
                await pub.publish(topics.order_state("o-new"), new.to_json(), qos=1)
            event = await _next_order(sub)
            assert event.data["order_id"] == "o-new"  # never the retained o-old
            assert event.data["to"] == "received" and "reason" not in event.data
            assert feed.invalid == 1
            return feed
    finally:
        hub.close()
        async with make_client(endpoint) as pub:  # leave no retained messages behind
            await pub.publish(topics.order_state("o-old"), b"", qos=1, retain=True)
            await pub.publish(topics.dev_status("sc1"), b"", qos=1, retain=True)


async def test_mqtt5_broker_does_not_send_retained_order_states(
    engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    feed = await _scenario(engine, mqtt_endpoint, site)
    # retained status, the bad payload and the new order state: o-old never arrived
    assert feed.received == 3


async def test_mqtt311_broker_falls_back_and_skips_retained_order_states(
    engine: AsyncEngine, embedded_broker: MqttEndpoint, site: str
) -> None:
    feed = await _scenario(engine, embedded_broker, site)
    # o-old did arrive over 3.1.1 and was skipped on arrival
    assert feed.received == 4


@contextlib.asynccontextmanager
async def _running_feed(
    engine: AsyncEngine, endpoint: MqttEndpoint, topics: Topics
) -> AsyncIterator[tuple[LiveFeed, Subscriber]]:
    """A connected feed and one subscriber of its hub."""
    settings = Settings(mqtt_url=f"mqtt://{endpoint.host}:{endpoint.port}", site=topics.site)
    hub = LiveHub(64)
    sub = hub.subscribe()
    try:
        async with LiveFeed(engine, settings, topics, hub) as feed:
            await asyncio.wait_for(feed.connected.wait(), 10)
            yield feed, sub
    finally:
        hub.close()


async def test_device_status_stays_live_while_the_database_fails(
    tmp_path: Path, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    broken = make_engine(f"sqlite+aiosqlite:///{tmp_path}/no-schema.db")  # no devices table
    topics = Topics(site)
    try:
        async with _running_feed(broken, mqtt_endpoint, topics) as (feed, sub):
            status = DeviceStatus(state="offline", kind="ptl", zone="pick", detail="port gone")
            async with make_client(mqtt_endpoint) as pub:
                await pub.publish(topics.dev_status("ptl3"), status.to_json(), qos=1)
            async with asyncio.timeout(10):
                event = await sub.next()
            assert event is not None and event.kind == "device"
            assert (event.data["id"], event.data["state"]) == ("ptl3", "offline")
            assert feed.connected.is_set()  # the broker link was not dropped over it
    finally:
        await broken.dispose()


async def test_statuses_wait_for_a_stuck_database_in_order_and_beyond_the_backlog_drop(
    pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "STATUS_BACKLOG", 2)
    topics = Topics(site)
    async with _running_feed(pg_engine, mqtt_endpoint, topics) as (feed, sub):
        async with pg_engine.connect() as blocker:
            # Another transaction holds the devices table: status writes wait.
            await blocker.execute(text("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE"))
            status = DeviceStatus(state="online", kind="ptl", zone="pick").to_json()
            async with make_client(mqtt_endpoint) as pub:
                await pub.publish(topics.dev_status("ptl0"), status, qos=1)
                async with asyncio.timeout(10):  # its write is under way, held by the lock
                    while feed.received < 1 or not feed._statuses.empty():
                        await asyncio.sleep(0.02)
                for n in range(1, 6):
                    await pub.publish(topics.dev_status(f"ptl{n}"), status, qos=1)
            async with asyncio.timeout(10):
                while feed.received < 6:
                    await asyncio.sleep(0.02)
            # Two wait in the backlog behind the held write, the rest are dropped.
            assert feed.dropped == 3
            await blocker.rollback()
        seen = []
        async with asyncio.timeout(10):
            while len(seen) < 3:
                event = await sub.next()
                assert event is not None
                if event.kind == "device":
                    seen.append(event.data["id"])
        assert seen == ["ptl0", "ptl1", "ptl2"]
        assert [d.id for d in await list_devices(pg_engine)] == ["ptl0", "ptl1", "ptl2"]


async def test_order_states_are_taken_only_while_a_client_watches(
    engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    """Nobody watching: the feed does not subscribe to order states (at full intake
    they cost every API worker three messages per order); the first client brings
    them, the last one leaving stops them."""
    topics = Topics(site)
    settings = Settings(mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}", site=site)
    hub = LiveHub(64)

    def change(n: int) -> bytes:
        return OrderStateChange(order_id=f"o-{n}", seq=1, from_=None, to="received").to_json()

    async with LiveFeed(engine, settings, topics, hub) as feed, make_client(mqtt_endpoint) as pub:
        await asyncio.wait_for(feed.connected.wait(), 10)
        await pub.publish(topics.order_state("o-0"), change(0), qos=1)
        await asyncio.sleep(0.5)
        assert feed.received == 0

        sub = hub.subscribe()
        async with asyncio.timeout(10):  # the subscription follows within moments
            n = 1
            while True:
                await pub.publish(topics.order_state(f"o-{n}"), change(n), qos=1)
                with contextlib.suppress(TimeoutError):
                    event = await asyncio.wait_for(_next_order(sub), 0.2)
                    break
                n += 1
        assert event.data["order_id"] == f"o-{n}"

        hub.unsubscribe(sub)
        await asyncio.sleep(0.5)
        before = feed.received
        for k in range(3):
            await pub.publish(topics.order_state(f"o-late-{k}"), change(k), qos=1)
        await asyncio.sleep(0.5)
        assert feed.received == before
