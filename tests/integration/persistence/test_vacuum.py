"""Vacuum and analyze of our own tables when the server's autovacuum does not: the
thresholds are autovacuum's, and an analyze gives a statement prepared against an
empty table the plan its grown table needs."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.persistence.vacuum import TableStats, Vacuuming, Work, due


def test_the_thresholds_are_autovacuums() -> None:
    # 1,000 rows: vacuum past 50 + 20 % dead, analyze past 50 + 10 % changed.
    assert due([TableStats("t", 1000, dead=250, changed=150)]) == []
    assert due([TableStats("t", 1000, dead=251, changed=150)]) == [Work("t", True, False)]
    assert due([TableStats("t", 1000, dead=0, changed=151)]) == [Work("t", False, True)]
    # Never vacuumed nor analyzed (reltuples -1): the base thresholds alone.
    assert due([TableStats("t", -1, dead=51, changed=51)]) == [Work("t", True, True)]
    # The furthest past its threshold first.
    assert due(
        [TableStats("a", 1000, dead=300, changed=0), TableStats("b", 0, dead=0, changed=500)]
    ) == [Work("b", False, True), Work("a", True, False)]
    assert Work("outbox", True, True).statement == 'VACUUM (ANALYZE) "outbox"'
    assert Work("orders", False, True).statement == 'ANALYZE "orders"'


async def _scalar(engine: AsyncEngine, sql: str) -> object:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql))


def _dsn(engine: AsyncEngine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _stats(conn: asyncpg.Connection, table: str) -> tuple[int, int]:
    row = await conn.fetchrow(
        "SELECT vacuum_count + autovacuum_count, analyze_count + autoanalyze_count"
        " FROM pg_stat_user_tables WHERE relname = $1",
        table,
    )
    assert row is not None
    return int(row[0]), int(row[1])


async def test_a_plan_made_on_an_empty_table_is_made_again_once_analyzed(
    pg_engine: AsyncEngine,
) -> None:
    conn = await asyncpg.connect(_dsn(pg_engine))
    try:
        # Whatever the server does, this table is ours to vacuum in this test.
        await conn.execute("ALTER TABLE outbox SET (autovacuum_enabled = false)")
        await conn.execute("ANALYZE outbox")  # empty, as a new installation's
        await conn.execute("PREPARE look(bigint[]) AS SELECT id FROM outbox WHERE id = ANY($1)")
        for _ in range(6):  # past the custom plans: the generic plan is cached
            await conn.execute("EXECUTE look('{1,2,3}')")
        await conn.execute(
            "INSERT INTO outbox (topic, payload, qos, retain, created_at)"
            " SELECT 't', repeat('x', 200), 1, false, now() FROM generate_series(1, 20000)"
        )
        await conn.execute("UPDATE outbox SET published_at = now() WHERE id % 2 = 0")
        # A backend hands its table statistics over at most once a second; now.
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await conn.execute("SELECT 1")

        def plan(rows: list[asyncpg.Record]) -> str:
            return "\n".join(r[0] for r in rows)

        stale = plan(await conn.fetch("EXPLAIN EXECUTE look('{1,2,3}')"))
        assert "Seq Scan" in stale, stale
        vacuums, analyzes = await _stats(conn, "outbox")

        vacuuming = Vacuuming(pg_engine, "on")
        done: list[Work] = []
        for _ in range(20):  # other tables of the session may be due too
            done += await vacuuming.run_once()
            if Work("outbox", True, True) in done:
                break

        assert Work("outbox", True, True) in done
        for _ in range(50):  # the statistics arrive a moment after the command ends
            if await _stats(conn, "outbox") == (vacuums + 1, analyzes + 1):
                break
            await asyncio.sleep(0.05)
        assert await _stats(conn, "outbox") == (vacuums + 1, analyzes + 1)
        fresh = plan(await conn.fetch("EXPLAIN EXECUTE look('{1,2,3}')"))
        assert "Index" in fresh, fresh
        # Nothing more is due until the table changes again.
        assert Work("outbox", True, True) not in await vacuuming.run_once()
    finally:
        await conn.execute("ALTER TABLE outbox RESET (autovacuum_enabled)")
        await conn.close()


async def test_auto_follows_the_servers_autovacuum(pg_engine: AsyncEngine) -> None:
    async with pg_engine.connect() as conn:
        server_does_it = await conn.scalar(text("SELECT current_setting('autovacuum')")) == "on"
    async with Vacuuming(pg_engine, "auto", interval_s=0.05) as vacuuming:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if vacuuming.stats.rounds > 0 or (server_does_it and vacuuming.finished):
                break
            await asyncio.sleep(0.05)
        if server_does_it:
            assert vacuuming.finished and vacuuming.stats.rounds == 0
        else:
            assert vacuuming.stats.rounds > 0 and not vacuuming.finished


async def test_off_never_looks(pg_engine: AsyncEngine) -> None:
    async with Vacuuming(pg_engine, "off", interval_s=0.05) as vacuuming:
        await asyncio.sleep(0.3)
        assert vacuuming.stats.rounds == 0 and vacuuming.finished


async def test_leaving_mid_vacuum_ends_the_task_and_pools_no_altered_connection(
    pg_engine: AsyncEngine,
) -> None:
    # A lock held elsewhere keeps the vacuum waiting inside its statement, where a
    # process stopping cancels it; the block must still end at once.
    holder = await asyncpg.connect(_dsn(pg_engine))
    try:
        await holder.execute("ALTER TABLE outbox SET (autovacuum_enabled = false)")
        await holder.execute("ANALYZE outbox")  # its thresholds from a few rows, not 20,000
        await holder.execute(
            "INSERT INTO outbox (topic, payload, qos, retain, created_at)"
            " SELECT 't', 'x', 1, false, now() FROM generate_series(1, 500)"
        )
        await holder.execute("DELETE FROM outbox WHERE topic = 't'")
        await holder.execute("SELECT pg_stat_force_next_flush()")
        await holder.execute("SELECT 1")  # the flush comes at the end of a statement
        tx = holder.transaction()
        await tx.start()
        await holder.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
        vacuuming = Vacuuming(pg_engine, "on", interval_s=0.05)
        async with asyncio.timeout(10):
            async with vacuuming:
                # (pg_stat_activity as of now: the holder's transaction sees a snapshot)
                while not await _scalar(
                    pg_engine,
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE '%VACUUM%outbox%'",
                ):
                    await asyncio.sleep(0.05)
        assert vacuuming.finished
        await tx.rollback()
        # Every connection the pool holds now, the vacuum's own among them if it went back.
        async with contextlib.AsyncExitStack() as stack:
            pooled = [
                await stack.enter_async_context(pg_engine.connect())
                for _ in range(pg_engine.pool.checkedin())  # type: ignore[attr-defined]
            ]
            for conn in pooled:
                assert await conn.scalar(text("SHOW vacuum_cost_delay")) == "0"
                assert await conn.scalar(text("SHOW default_statistics_target")) == "100"
    finally:
        await holder.execute("ALTER TABLE outbox RESET (autovacuum_enabled)")
        await holder.close()
