"""Retiring a controller of a share group: what its session held is applied, and the
broker stops giving it a share once it is retired (a stopped member that is not
retired keeps receiving its share, queued for a return that never comes)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.retire import retire
from controller.runtime import Controller
from tests.integration.controller.support import FLOOR, FakeFloor, fake_floor, floor_for
from wcs.children import spawn_async
from wcs.contract.topics import Topics
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.persistence.tables import processed_messages
from wcs.settings import Settings


def settings_for(instance: str, broker: PrivateMosquitto, db: str, site: str) -> Settings:
    return Settings(
        database_url=db,
        mqtt_url=broker.url,
        site=site,
        embedded_broker=False,
        controller={  # type: ignore[arg-type]
            "instance": instance,
            "shared_subscription": True,
            "wave_interval_s": 3600,
        },
    )


async def scans(floor: FakeFloor, prefix: str, count: int) -> set[str]:
    return {
        await floor.event("scan-pk", "scan", code="4006381333931", symbology="]E0",
                          msg_id=f"{prefix}-{n}")
        for n in range(count)
    }  # fmt: skip


async def inbox_count(engine: AsyncEngine, ids: set[str]) -> int:
    """How many of the scans' msg_ids the inbox holds (keyed by device)."""
    keys = [f"scan-pk/{msg_id}" for msg_id in ids]
    async with engine.connect() as conn:
        query = select(func.count()).where(processed_messages.c.msg_id.in_(keys))
        return int(await conn.scalar(query) or 0)


async def session_present(broker: PrivateMosquitto, identifier: str) -> bool:
    """Whether the broker still holds a session for ``identifier`` (CONNACK's flag)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=identifier, protocol=mqtt.MQTTv5)
    flags: list[bool] = []
    connected = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, f: mqtt.ConnectFlags, *_: object) -> None:
        flags.append(f.session_present)
        connected.set()

    client.on_connect = on_connect
    client.connect(broker.endpoint.host, broker.endpoint.port, clean_start=False)
    client.loop_start()
    try:
        assert await asyncio.to_thread(connected.wait, 5)
    finally:
        client.disconnect()
        client.loop_stop()
    return flags[0]


async def received(controller: Controller, count: int) -> None:
    async with asyncio.timeout(10):
        while controller.stats.received < count or not controller.idle():
            await asyncio.sleep(0.02)


async def test_a_retired_member_leaves_nothing_behind_and_gets_no_more_share(
    pg_only_url: str, pg_engine: AsyncEngine, site: str
) -> None:
    floor_file = floor_for(site)
    with PrivateMosquitto() as broker:
        first = settings_for("c1", broker, pg_only_url, site)
        second = settings_for("c2", broker, pg_only_url, site)
        # c2 joins the group, then stops: its session stays, and so does its share.
        async with Controller(second, floor_file, engine=pg_engine, housekeeping=False):
            pass
        async with (
            fake_floor(broker.endpoint, Topics(site)) as floor,
            Controller(first, floor_file, engine=pg_engine, housekeeping=False) as c1,
        ):
            before = await scans(floor, "a", 20)
            async with asyncio.timeout(15):  # c1 applies its share; c2's waits at the broker
                await c1.until_quiet(0.5)
            kept_for_c2 = 20 - c1.stats.received
            assert kept_for_c2 > 0
            assert await inbox_count(pg_engine, before) == c1.stats.received

            retiring = asyncio.create_task(retire(second, floor_file, quiet_s=1.5))
            async with asyncio.timeout(10):
                while await inbox_count(pg_engine, before) < 20:
                    await asyncio.sleep(0.05)
            # While it retires it takes no new share: these are all c1's.
            start = c1.stats.received
            during = await scans(floor, "m", 10)
            await received(c1, start + 10)
            done = await retiring

            assert done.instance == "c2"
            assert done.handled == kept_for_c2
            assert await inbox_count(pg_engine, before | during) == 30
            assert not await session_present(broker, f"wcs-ctl-{site}-c2")
            # The group now has one member: every new event is c1's.
            start = c1.stats.received
            after = await scans(floor, "b", 10)
            await received(c1, start + 10)
            assert await inbox_count(pg_engine, after) == 10


async def test_the_command_line_retires_an_instance(
    pg_only_url: str, site: str, tmp_path: Path
) -> None:
    floor_file = tmp_path / "floor.yaml"
    floor_file.write_text(yaml.safe_dump({"site": site, **FLOOR}), encoding="utf-8")
    with PrivateMosquitto() as broker:
        env = {
            **os.environ,
            "WCS_DATABASE_URL": pg_only_url,
            "WCS_MQTT_URL": broker.url,
            "WCS_SITE": site,
            "WCS_EMBEDDED_BROKER": "false",
            "WCS_CONTROLLER__INSTANCE": "c3",
            "WCS_CONTROLLER__SHARED_SUBSCRIPTION": "true",
        }

        async def cli(*args: str) -> tuple[int | None, str, str]:
            proc = await spawn_async(
                sys.executable, "-m", "cli", "controller", *args,
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            async with asyncio.timeout(60):
                out, err = await proc.communicate()
            return proc.returncode, out.decode(), err.decode()

        # Without the floor its held events would be refused as unknown devices.
        code, _, err = await cli("--retire")
        assert code == 2
        assert "--retire needs the floor file (--floor)" in err

        code, out, err = await cli("--floor", str(floor_file), "--retire")
        assert code == 0, err
        assert "controller c3 retired: 0 events from its session handled" in out
        assert not await session_present(broker, f"wcs-ctl-{site}-c3")
