"""Two controllers that find a station idle at once activate one batch there, not two."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.handlers.pick import activate_next
from controller.runtime import Controller
from tests.integration.controller.support import floor_for
from wcs.persistence.tables import pick_batches, waves
from wcs.settings import Settings
from wcs.timeutil import utcnow

pytestmark = pytest.mark.postgres


async def test_concurrent_activation_gives_a_station_one_batch(
    pg_engine: AsyncEngine, pg_only_url: str, site: str
) -> None:
    now = utcnow()
    async with pg_engine.begin() as conn:
        await conn.execute(
            insert(waves).values(
                id="w1", released_at=now, released_by="test", orders=2, distance_m=0.0,
                baseline_m=0.0,
            )
        )  # fmt: skip
        await conn.execute(
            insert(pick_batches),
            [
                {
                    "id": f"b{n}",
                    "wave_id": "w1",
                    "station": "PK1",
                    "state": "open",
                    "zone": "pick",
                    "distance_m": 0.0,
                    "stops": [],
                    "created_at": now + timedelta(seconds=n),
                }
                for n in (1, 2)
            ],
        )
    settings = Settings(database_url=pg_only_url, site=site, embedded_broker=False)
    first, second = (
        Controller(settings, floor_for(site), engine=pg_engine, instance=name, run_relay=False)
        for name in ("a", "b")
    )
    async with pg_engine.connect() as conn_a, pg_engine.connect() as conn_b:
        tx_a = await conn_a.begin()
        ctx_a, _ = await first._context(conn_a)
        assert await activate_next(ctx_a, "PK1") == "b1"

        async def other() -> str | None:
            tx_b = await conn_b.begin()
            ctx_b, _ = await second._context(conn_b)
            activated = await activate_next(ctx_b, "PK1")
            await tx_b.commit()
            return activated

        racing = asyncio.create_task(other())
        await asyncio.sleep(0.5)
        # The second controller waits for the first one's transaction...
        assert not racing.done()
        await tx_a.commit()
        # ...and then sees the station busy.
        assert await asyncio.wait_for(racing, 10) is None
    async with pg_engine.connect() as conn:
        active = (
            await conn.scalars(
                select(pick_batches.c.id).where(
                    pick_batches.c.station == "PK1", pick_batches.c.state == "active"
                )
            )
        ).all()
    assert active == ["b1"]
