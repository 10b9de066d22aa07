"""A controller batch is one transaction: its inbox claims, its effects and its fence.

A batch that rolls back (a process killed mid-batch, a replay with savepoints) must
leave no inbox claim behind, or the redelivered events would be skipped as
duplicates and their effects lost. A batch of an instance whose lease on a station
has moved on must not commit at all, and an instance taking a station over must wait
for a batch of the previous holder that is still being committed.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.store import LostStations, Unit
from wcs.contract.topics import Topics
from wcs.domain.floor.effects import Record
from wcs.persistence.db import transaction
from wcs.persistence.tables import activity, processed_messages, stations
from wcs.timeutil import utcnow

TOPICS = Topics("t")


class Crash(Exception):
    pass


def pick_record() -> Record:
    return Record("pick", True, None, "scan-1", {"station": "S1", "qty": 1})


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        inbox = await conn.scalar(select(func.count()).select_from(processed_messages))
        facts = await conn.scalar(select(func.count()).select_from(activity))
    return int(inbox or 0), int(facts or 0)


async def batch(
    engine: AsyncEngine, keys: list[str], held: dict[str, int], *, crash: bool = False
) -> set[str]:
    async with transaction(engine) as conn:
        unit = Unit(conn, TOPICS, "controller:i1", utcnow())
        fresh = await unit.claim(keys, held, "i1")
        unit.apply([pick_record() for _ in fresh])
        await unit.finish()
        if crash:
            raise Crash
        return fresh


async def station(engine: AsyncEngine, epoch: int, holder: str = "i1") -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(stations).values(
                id="S1", kind="pick", holder=holder, epoch=epoch, expires_at=None, down=False,
                updated_at=utcnow(),
            )
        )  # fmt: skip


async def test_a_batch_that_rolls_back_leaves_no_inbox_claim(engine: AsyncEngine) -> None:
    with pytest.raises(Crash):
        await batch(engine, ["scan-1/m1", "scan-1/m2"], {}, crash=True)
    assert await counts(engine) == (0, 0)
    # The redelivery is therefore new, and its effect is written with its claim.
    assert await batch(engine, ["scan-1/m1"], {}) == {"scan-1/m1"}
    assert await counts(engine) == (1, 1)


async def test_claims_of_a_committed_batch_stop_the_redelivery(engine: AsyncEngine) -> None:
    await batch(engine, ["scan-1/m1"], {})
    assert await batch(engine, ["scan-1/m1", "scan-1/m2"], {}) == {"scan-1/m2"}
    assert await counts(engine) == (2, 2)


async def test_a_batch_of_a_station_taken_over_does_not_commit(engine: AsyncEngine) -> None:
    await station(engine, epoch=1)
    assert await batch(engine, ["scan-1/m1"], {"S1": 1}) == {"scan-1/m1"}
    async with engine.begin() as conn:  # another instance took the station over
        await conn.execute(update(stations).values(holder="i2", epoch=2))
    with pytest.raises(LostStations) as lost:
        await batch(engine, ["scan-1/m2"], {"S1": 1})
    assert lost.value.lost == {"S1"}
    assert await counts(engine) == (1, 1)


@pytest.mark.postgres
async def test_a_takeover_waits_for_the_batch_being_committed(pg_engine: AsyncEngine) -> None:
    await station(pg_engine, epoch=1)
    async with pg_engine.connect() as conn:
        tx = await conn.begin()
        unit = Unit(conn, TOPICS, "controller:i1", utcnow())
        await unit.claim(["scan-1/m1"], {"S1": 1}, "i1")

        async def take_over() -> None:
            async with pg_engine.begin() as other:
                await other.execute(
                    update(stations).values(holder="i2", epoch=stations.c.epoch + 1)
                )

        taking = asyncio.create_task(take_over())
        await asyncio.sleep(0.5)
        assert not taking.done()  # the lease row is read FOR SHARE by the batch
        unit.apply([pick_record()])
        await unit.finish()
        await tx.commit()
        await asyncio.wait_for(taking, 10)
    assert await counts(pg_engine) == (1, 1)
