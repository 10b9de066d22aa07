"""A controller batch is one transaction, also for what it sends straight to asyncpg.

The pick hot path on PostgreSQL bypasses SQLAlchemy for its statements. If they ran
before the transaction had begun they would each commit on their own, and a batch
that rolls back - a process killed mid-batch, a replay with savepoints - would leave
its inbox claims behind: the redelivered events would then be skipped as duplicates
and their effects lost. The fault drills found exactly that; these tests pin it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.store import LateClaimConflict, open_store
from wcs.persistence.db import transaction
from wcs.persistence.tables import activity, processed_messages
from wcs.timeutil import utcnow


class Crash(Exception):
    pass


def fact(kind: str) -> dict[str, object]:
    return {
        "at": utcnow(),
        "kind": kind,
        "ok": True,
        "order_id": None,
        "device_id": "scan-1",
        "station": "S1",
        "detail": {"qty": 1},
    }


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        inbox = await conn.scalar(select(func.count()).select_from(processed_messages))
        facts = await conn.scalar(select(func.count()).select_from(activity))
    return int(inbox or 0), int(facts or 0)


async def crash_mid_batch(engine: AsyncEngine) -> None:
    """Claim and write like a batch does, then die before the commit."""
    async with transaction(engine) as conn:
        store, fresh = await open_store(conn, ["scan-1/m1", "scan-1/m2"], utcnow())
        assert fresh == {"scan-1/m1", "scan-1/m2"}
        await store.flush(utcnow(), [], [], [], [fact("pick")])
        raise Crash


async def test_a_batch_that_rolls_back_leaves_no_inbox_claim(pg_engine: AsyncEngine) -> None:
    with pytest.raises(Crash):
        await crash_mid_batch(pg_engine)
    assert await counts(pg_engine) == (0, 0)
    # The redelivery is therefore new, and its effect is written with its claim.
    async with transaction(pg_engine) as conn:
        store, fresh = await open_store(conn, ["scan-1/m1"], utcnow())
        assert fresh == {"scan-1/m1"}
        await store.flush(utcnow(), [], [], [], [fact("pick")])
    assert await counts(pg_engine) == (1, 1)


async def test_claims_of_a_committed_batch_stop_the_redelivery(pg_engine: AsyncEngine) -> None:
    async with transaction(pg_engine) as conn:
        await open_store(conn, ["scan-1/m1"], utcnow())
    async with transaction(pg_engine) as conn:
        _, fresh = await open_store(conn, ["scan-1/m1", "scan-1/m2"], utcnow())
        assert fresh == {"scan-1/m2"}


async def crash_after_late_claim(engine: AsyncEngine) -> None:
    async with transaction(engine) as conn:
        store, fresh = await open_store(conn, ["scan-1/m1"], utcnow(), claim_late=True)
        assert fresh == {"scan-1/m1"}
        await store.flush(utcnow(), [], [], [], [fact("pick")])  # claim + fact
        raise Crash


async def late_claim(engine: AsyncEngine, keys: list[str]) -> None:
    async with transaction(engine) as conn:
        store, fresh = await open_store(conn, keys, utcnow(), claim_late=True)
        assert fresh == set(keys)  # optimistic until the flush
        await store.flush(utcnow(), [], [], [], [fact("pick")])


async def test_a_late_claim_is_written_with_the_batch_or_not_at_all(pg_engine: AsyncEngine) -> None:
    with pytest.raises(Crash):
        await crash_after_late_claim(pg_engine)
    assert await counts(pg_engine) == (0, 0)
    await late_claim(pg_engine, ["scan-1/m1"])
    assert await counts(pg_engine) == (1, 1)


async def test_a_late_claim_of_a_seen_message_rolls_the_batch_back(pg_engine: AsyncEngine) -> None:
    async with transaction(pg_engine) as conn:
        await open_store(conn, ["scan-1/m1"], utcnow())
    with pytest.raises(LateClaimConflict):
        await late_claim(pg_engine, ["scan-1/m1", "scan-1/m2"])
    assert await counts(pg_engine) == (1, 0)  # neither m2's claim nor the fact stayed
