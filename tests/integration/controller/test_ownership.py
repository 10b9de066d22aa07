"""Stations shared among controller instances (design §2): each station is held by
exactly one instance, handed over when an instance stops or another joins, and taken
over when its holder dies (kill -9) - with every device event applied exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.leases import Leases
from controller.runtime import Controller
from controller.stations import plan_floor
from tests.integration.controller.support import floor_for
from tests.integration.graceful.support import (
    ControllerProcess,
    EventStream,
    inbox_keys,
    write_floor,
)
from wcs.persistence.tables import activity, stations
from wcs.settings import MqttEndpoint, Settings

pytestmark = pytest.mark.postgres

FAST = {"wave_interval_s": 3600, "lease_interval_s": 0.3, "lease_ttl_s": 1.5}


def settings_for(url: str, endpoint: MqttEndpoint, site: str) -> Settings:
    return Settings(
        database_url=url,
        mqtt_url=f"mqtt://{endpoint.host}:{endpoint.port}",
        site=site,
        embedded_broker=False,
        controller=FAST,  # type: ignore[arg-type]
    )


def instance_a(db_url: str, endpoint: MqttEndpoint, site: str, tmp_path: Path) -> ControllerProcess:
    """Instance ``a`` as a process of its own (it is killed with SIGKILL), started."""
    mqtt_url = f"mqtt://{endpoint.host}:{endpoint.port}"
    process = ControllerProcess(
        write_floor(tmp_path, site), db_url, mqtt_url, site, tmp_path / "a.log", "a"
    )
    process.start()
    return process


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    return time.monotonic() - started


async def holders(engine: AsyncEngine) -> dict[str, str | None]:
    async with engine.connect() as conn:
        return {
            r.id: r.holder for r in await conn.execute(select(stations.c.id, stations.c.holder))
        }


async def stable_weights_recorded(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                select(func.count())
                .select_from(activity)
                .where(activity.c.kind == "weight_unexpected")
            )
            or 0
        )


def stable_sent(stream: EventStream) -> int:
    # The stream's even events are stable: each is one "weight_unexpected" at a pack
    # station with nothing on its scale.
    return sum(1 for key in stream.accepted if int(key.rsplit("-", 1)[1]) % 2 == 0)


async def test_two_instances_share_the_stations_each_held_once(
    pg_only_url: str, pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    settings = settings_for(pg_only_url, mqtt_endpoint, site)
    floor = floor_for(site)
    every = set(plan_floor(floor).specs)
    assert len(every) == 6  # PK1, QC1, P1, P2, the diverter's point and the floor
    async with Controller(settings, floor, engine=pg_engine, instance="a", run_relay=False) as a:
        assert set(a.owned) == every
        async with Controller(
            settings, floor, engine=pg_engine, instance="b", run_relay=False
        ) as b:
            await until(lambda: len(a.owned) == 3 and len(b.owned) == 3, 15, "a fair share each")
            assert not set(a.owned) & set(b.owned)
            held = await holders(pg_engine)
            assert sorted(held[s] or "" for s in every) == ["a"] * 3 + ["b"] * 3
        # b stopped and handed its stations back at once.
        took = await until(lambda: set(a.owned) == every, 10, "a holds all again")
        assert took < 3


async def test_events_during_hand_overs_are_applied_once(
    pg_only_url: str, pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    settings = settings_for(pg_only_url, mqtt_endpoint, site)
    floor = floor_for(site)
    stream = EventStream(mqtt_endpoint, site, rate_per_s=200)
    async with Controller(settings, floor, engine=pg_engine, instance="a", run_relay=False) as a:
        stream.start()
        await asyncio.sleep(0.5)
        async with Controller(
            settings, floor, engine=pg_engine, instance="b", run_relay=False
        ) as b:
            await until(lambda: len(a.owned) == 3 and len(b.owned) == 3, 15, "shared")
            await asyncio.sleep(0.5)
        await until(lambda: len(a.owned) == 6, 10, "a holds all again")
        await asyncio.sleep(0.5)
        await stream.stop()
        sent = set(stream.accepted)
        try:
            async with asyncio.timeout(20):
                while not sent <= await inbox_keys(pg_engine):
                    await asyncio.sleep(0.1)
        except TimeoutError:
            missing = sorted(
                sent - await inbox_keys(pg_engine), key=lambda k: int(k.rsplit("-", 1)[1])
            )
            print("MISSING", len(missing), missing[:20], a.stats, b.stats)
            raise
        await asyncio.sleep(0.5)
    assert len(sent) > 100
    assert await stable_weights_recorded(pg_engine) == stable_sent(stream)


async def test_a_killed_instance_loses_its_stations_within_seconds_and_nothing(
    pg_only_url: str, pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str, tmp_path: Path
) -> None:
    settings = settings_for(pg_only_url, mqtt_endpoint, site)
    floor = floor_for(site)
    other = instance_a(pg_only_url, mqtt_endpoint, site, tmp_path)
    stream = EventStream(mqtt_endpoint, site, rate_per_s=100)
    try:
        async with Controller(
            settings, floor, engine=pg_engine, instance="b", run_relay=False
        ) as b:
            await until(lambda: len(b.owned) == 3, 20, "b gets its share")
            theirs = {s for s, h in (await holders(pg_engine)).items() if h == "a"}
            assert len(theirs) == 3
            stream.start()
            await asyncio.sleep(1.0)
            other.kill()  # SIGKILL: no hand-over, its sessions hold what comes next
            took = await until(lambda: len(b.owned) == 6, 10, "b takes the dead one's stations")
            await asyncio.sleep(1.0)
            await stream.stop()
            sent = set(stream.accepted)
            async with asyncio.timeout(20):
                while not sent <= await inbox_keys(pg_engine):
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
    finally:
        other.kill()
        await stream.stop()
    print(f"stations of the killed instance taken over in {took:.1f} s")
    assert took <= 5.0
    assert await stable_weights_recorded(pg_engine) == stable_sent(stream)


async def test_an_instance_restarted_under_its_name_serves_its_stations_again(
    pg_only_url: str, pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str, tmp_path: Path
) -> None:
    """Killed and started again with the same instance name (what a supervisor's restart
    does): the rows still name it as holder, yet the new process serves nothing yet."""
    settings = settings_for(pg_only_url, mqtt_endpoint, site)
    floor = floor_for(site)
    first = instance_a(pg_only_url, mqtt_endpoint, site, tmp_path)
    stream = EventStream(mqtt_endpoint, site, rate_per_s=100)
    try:
        every = set(plan_floor(floor).specs)
        async with asyncio.timeout(20):
            while {s for s, h in (await holders(pg_engine)).items() if h == "a"} != every:
                await asyncio.sleep(0.1)
        first.kill()
        async with Controller(
            settings, floor, engine=pg_engine, instance="a", run_relay=False
        ) as again:
            took = await until(lambda: set(again.owned) == every, 10, "a serves all again")
            stream.start()
            await asyncio.sleep(1.0)
            await stream.stop()
            sent = set(stream.accepted)
            async with asyncio.timeout(20):
                while not sent <= await inbox_keys(pg_engine):
                    await asyncio.sleep(0.1)
    finally:
        first.kill()
        await stream.stop()
    print(f"restarted instance serves its stations after {took:.1f} s")
    assert len(sent) > 50
    assert await stable_weights_recorded(pg_engine) == stable_sent(stream)


async def test_instances_starting_together_on_a_new_floor_both_register(
    pg_only_url: str, pg_engine: AsyncEngine, site: str
) -> None:
    """Both read no rows and insert the same ones: neither may fail its start."""
    specs = list(plan_floor(floor_for(site)).specs.values())
    ids = [s.id for s in specs]
    for _ in range(5):
        async with pg_engine.begin() as conn:
            await conn.execute(delete(stations).where(stations.c.id.in_(ids)))
        ttl = timedelta(seconds=3)
        await asyncio.gather(
            Leases(pg_engine, "a", ttl).register(specs), Leases(pg_engine, "b", ttl).register(specs)
        )
        assert set(await holders(pg_engine)) >= set(ids)
