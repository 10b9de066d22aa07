"""Core statements run straight on the driver: the same rows and effects as through
SQLAlchemy, in one transaction with the statements SQLAlchemy still runs, and the
driver's errors raised as SQLAlchemy's."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.persistence.db import is_outage
from wcs.persistence.direct import Direct
from wcs.persistence.tables import activity, stations
from wcs.timeutil import utcnow

RENAME = (
    update(stations)
    .where(stations.c.id == bindparam("b_id"))
    .values(down_reason=bindparam("b_reason"))
    .returning(stations.c.id, stations.c.epoch)
)
SET_DOWN = update(stations).where(stations.c.id == bindparam("b_id"))  # SET from the params


async def _stations(engine: AsyncEngine, n: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(stations),
            [
                {"id": f"S{i}", "kind": "pick", "epoch": i, "down": False, "updated_at": utcnow()}
                for i in range(n)
            ],
        )


async def test_statements_give_what_sqlalchemy_gives(engine: AsyncEngine) -> None:
    await _stations(engine, 3)
    async with engine.connect() as conn:
        db = await Direct.of(conn)
        async with db.transaction():
            moved = await db.execute(RENAME, {"b_id": "S2", "b_reason": "jam"})
            assert [tuple(r) for r in moved.rows] == [("S2", 2)] and moved.rowcount == 1
            missing = await db.execute(SET_DOWN, {"b_id": "nope", "down": True})
            assert missing.rows == [] and missing.rowcount == 0
            hit = await db.execute(SET_DOWN, {"b_id": "S1", "down": True})
            assert hit.rowcount == 1
            one = await db.execute(  # a statement with a single parameter
                select(stations.c.epoch).where(stations.c.id == bindparam("b_id")), {"b_id": "S2"}
            )
            assert [tuple(r) for r in one.rows] == [(2,)]
            await db.executemany(
                insert(activity),
                [
                    {"at": utcnow(), "kind": "pick", "ok": True, "order_id": None,
                     "device_id": "scan-1", "station": "S0", "detail": detail}
                    for detail in ({"qty": 2, "note": "引き"}, None)
                ],
            )  # fmt: skip
            # A column with a Python-side default left out: SQLAlchemy computes it.
            await db.executemany(insert(activity), [{"at": utcnow(), "kind": "mispick"}])
    async with engine.connect() as conn:
        rows = (await conn.execute(select(stations).order_by(stations.c.id))).all()
        assert [(r.id, r.down, r.down_reason) for r in rows] == [
            ("S0", False, None),
            ("S1", True, None),
            ("S2", False, "jam"),
        ]
        facts = (await conn.execute(select(activity).order_by(activity.c.id))).all()
        assert [(f.kind, f.ok, f.detail) for f in facts] == [
            ("pick", True, {"qty": 2, "note": "引き"}),
            ("pick", True, None),
            ("mispick", True, None),
        ]


async def test_one_transaction_with_the_statements_sqlalchemy_runs(engine: AsyncEngine) -> None:
    await _stations(engine, 2)
    async with engine.connect() as conn:
        db = await Direct.of(conn)

        async def failing() -> None:
            async with db.transaction():
                await db.execute(RENAME, {"b_id": "S0", "b_reason": "gone"})
                await conn.execute(update(stations).values(epoch=99))
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await failing()
        async with db.transaction():
            await db.execute(RENAME, {"b_id": "S1", "b_reason": "kept"})
            savepoint = await conn.begin_nested()
            await db.execute(RENAME, {"b_id": "S0", "b_reason": "undone"})
            await savepoint.rollback()
    async with engine.connect() as conn:
        rows = (await conn.execute(select(stations).order_by(stations.c.id))).all()
        assert [(r.down_reason, r.epoch) for r in rows] == [(None, 0), ("kept", 1)]


@pytest.mark.postgres
async def test_driver_errors_are_sqlalchemys(pg_engine: AsyncEngine) -> None:
    await _stations(pg_engine, 1)
    async with pg_engine.connect() as conn:
        db = await Direct.of(conn)
        with pytest.raises(DBAPIError) as refused:
            async with db.transaction():
                await db.executemany(
                    insert(stations),
                    [{"id": "S0", "kind": "pick", "epoch": 0, "down": False,
                      "updated_at": utcnow()}],
                )  # fmt: skip
        assert getattr(refused.value.orig, "sqlstate", None) == "23505"
        assert not is_outage(refused.value)
        pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        async with pg_engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with pytest.raises(DBAPIError) as lost:
            async with db.transaction():
                await db.execute(RENAME, {"b_id": "S0", "b_reason": "x"})
        assert is_outage(lost.value)
        await conn.invalidate()
    async with pg_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(stations)) == 1
