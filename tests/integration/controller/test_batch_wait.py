"""``batch_wait_ms``: a lone event waits that long for company before it commits."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import fake_floor, floor_for, settings_for
from wcs.contract.topics import Topics
from wcs.settings import MqttEndpoint


async def test_events_apart_by_less_than_the_wait_commit_together(
    db_url: str, engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    settings = settings_for(
        db_url,
        mqtt_endpoint,
        site,
        # One committer, so both devices' events meet in one queue.
        controller={"wave_interval_s": 3600, "committers": 1, "batch_wait_ms": 600},
    )
    async with (
        fake_floor(mqtt_endpoint, Topics(site)) as floor,
        Controller(settings, floor_for(site), engine=engine) as controller,
    ):
        await controller.until_quiet(1.0)  # start-up's own work is done
        stats = controller.stats
        stats.batch_sizes.clear()  # a window of the latest sizes
        applied = stats.applied
        await floor.status("ptl-1", "ptl", "pick", "online")
        await asyncio.sleep(0.1)  # far longer than a commit takes, well within the wait
        await floor.status("scan-pk", "scanner", "pick", "online")
        async with asyncio.timeout(10):
            while stats.applied < applied + 2:
                await asyncio.sleep(0.02)
        assert list(stats.batch_sizes) == [2]
