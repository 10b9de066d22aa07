"""A committer's lane keeps one connection across batches and replaces a broken one."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.lane import Lane
from wcs.persistence.db import DatabaseUnavailable


async def backend_pid(lane: Lane) -> int:
    async with lane.transaction() as db:
        return int(await db.conn.scalar(text("SELECT pg_backend_pid()")) or 0)


async def failed_insert(lane: Lane) -> None:
    async with lane.transaction() as db:
        await db.conn.execute(text("INSERT INTO lane_probe VALUES (1)"))
        raise ZeroDivisionError


async def test_batches_share_the_lane_connection_and_roll_back_alone(engine: AsyncEngine) -> None:
    lane = Lane(engine)
    try:
        async with lane.transaction() as db:
            await db.conn.execute(text("CREATE TABLE lane_probe (n INTEGER)"))
        first = lane.db
        with pytest.raises(ZeroDivisionError):
            await failed_insert(lane)
        async with lane.transaction() as db:
            await db.conn.execute(text("INSERT INTO lane_probe VALUES (2)"))
            assert lane.db is first  # a failed batch does not cost the connection
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT n FROM lane_probe"))).scalars().all()
        assert rows == [2]
    finally:
        await lane.close()
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS lane_probe"))


async def test_a_broken_connection_fails_one_batch_and_the_next_connects_afresh(
    pg_engine: AsyncEngine,
) -> None:
    lane = Lane(pg_engine)
    try:
        pid = await backend_pid(lane)
        assert await backend_pid(lane) == pid
        async with pg_engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with pytest.raises(DatabaseUnavailable):
            await backend_pid(lane)
        assert lane.db is None
        assert await backend_pid(lane) != pid
    finally:
        await lane.close()


async def test_a_batch_cancelled_mid_statement_leaves_a_usable_lane(
    pg_engine: AsyncEngine,
) -> None:
    lane = Lane(pg_engine)

    async def slow() -> None:
        async with lane.transaction() as db:
            await db.execute(text("SELECT pg_sleep(10)"))

    try:
        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(5):
            assert await backend_pid(lane) > 0
    finally:
        await lane.close()
