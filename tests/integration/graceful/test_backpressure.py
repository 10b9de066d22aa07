"""A slow database makes the controller read less from MQTT, not buffer more.

The database is held locked by another writer (what a long vacuum or a stuck
migration does) while devices keep publishing. Nothing is acknowledged before it
commits, so each station's session stops receiving once the broker's window of
unacknowledged messages is full (``max_inflight_messages``, 20 by default): the
controller's queues stay within sessions x window (plus at most one idle look per
station, queued when its session comes up), the broker keeps the rest, and
once the database is back every event is applied exactly once.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import floor_for
from tests.integration.graceful.support import EventStream, inbox_count
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.settings import Settings

pytestmark = pytest.mark.broker

BATCH_MAX = 4
TOTAL = 400
INFLIGHT_WINDOW = 20


async def test_slow_database_pushes_back_to_the_broker(
    broker: PrivateMosquitto, sqlite: tuple[str, AsyncEngine], site: str
) -> None:
    url, engine = sqlite
    settings = Settings(
        database_url=url,
        mqtt_url=broker.url,
        site=site,
        embedded_broker=False,
        controller={"batch_max": BATCH_MAX, "committers": 2, "wave_interval_s": 3600},  # type: ignore[arg-type]
    )
    # The stream's devices are at two stations; Mosquitto's in-flight window per session.
    bound = 2 * INFLIGHT_WINDOW
    stream = EventStream(broker.endpoint, site, rate_per_s=2000)
    # Used from a thread: taking the lock on the event loop would block the controller
    # while it may hold the write lock itself for a moment, and neither would go on.
    lock = sqlite3.connect(
        url.split("///", 1)[1], isolation_level=None, timeout=30, check_same_thread=False
    )
    peak_queue = 0
    try:
        async with Controller(
            settings, floor_for(site), engine=engine, housekeeping=False, run_relay=False
        ) as controller:
            bound += len(controller.owned)  # one idle look per station at most
            await asyncio.to_thread(lock.execute, "BEGIN IMMEDIATE")  # no more writes
            try:
                stream.start()
                async with asyncio.timeout(20):
                    while len(stream.accepted) < TOTAL:
                        peak_queue = max(peak_queue, *(q.qsize() for q in controller._queues))
                        await asyncio.sleep(0.005)
                await stream.stop()
                await asyncio.sleep(0.5)
                # The locking connection may read inside its own transaction.
                held = lock.execute("SELECT count(*) FROM processed_messages").fetchone()[0]
                received = controller.stats.received
            finally:
                lock.execute("ROLLBACK")  # the database is back
            async with asyncio.timeout(30):
                while await inbox_count(engine) < len(stream.accepted):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            applied = await inbox_count(engine)
    finally:
        await stream.stop()
        lock.close()
    print(
        f"{len(stream.accepted)} published; controller took {received} while the database "
        f"was locked; queues peaked at {peak_queue}/{bound}"
    )
    assert held == 0  # nothing could commit while the database was locked
    assert peak_queue <= bound
    # The broker, not the controller, held the rest: far fewer than were published.
    assert received <= bound + 50 < TOTAL
    assert applied == len(stream.accepted)
