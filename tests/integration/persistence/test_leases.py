"""Leased jobs on both databases: one holder at a time, handed over when it stops,
taken over when it dies, and stopped when it finds the lease gone."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.persistence.leases import Lease
from wcs.persistence.tables import leases
from wcs.tasks import background
from wcs.timeutil import utcnow

TTL = timedelta(seconds=0.9)  # renewed every 0.3 s


class Job:
    """A job that records when it runs and otherwise waits for ever."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.runs = 0
        self.cancelled = 0

    async def __call__(self) -> None:
        self.runs += 1
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def holder_of(engine: AsyncEngine, name: str) -> str | None:
    async with engine.connect() as conn:
        holder: str | None = await conn.scalar(select(leases.c.holder).where(leases.c.name == name))
    return holder


async def test_one_holder_runs_the_job_and_a_standby_takes_over_when_it_stops(
    engine: AsyncEngine,
) -> None:
    first, second = Lease(engine, "job", ttl=TTL), Lease(engine, "job", ttl=TTL)
    job_a, job_b = Job(), Job()
    async with background("job-a", first.run(job_a)) as task_a:
        await asyncio.wait_for(job_a.started.wait(), 5)
        async with background("job-b", second.run(job_b)):
            await asyncio.sleep(1.2)  # past the ttl: renewed, not lost
            assert first.held and not second.held and job_b.runs == 0
            assert await holder_of(engine, "job") == first.holder
            task_a.cancel()  # stopping gives the lease up: the standby has it in one poll
            started = time.monotonic()
            await asyncio.wait_for(job_b.started.wait(), 2)
            assert time.monotonic() - started < 0.6
            assert job_a.cancelled == 1 and not first.held and second.held
    assert await holder_of(engine, "job") is None  # given up on leaving


async def test_a_holder_that_died_loses_the_lease_when_it_runs_out(engine: AsyncEngine) -> None:
    dead = Lease(engine, "job", ttl=TTL)
    assert await dead.take()  # and never renewed: the process is gone
    taken_at = time.monotonic()
    job = Job()
    async with background("job", Lease(engine, "job", ttl=TTL).run(job)):
        await asyncio.wait_for(job.started.wait(), 5)
    waited = time.monotonic() - taken_at
    assert TTL.total_seconds() - 0.05 <= waited < TTL.total_seconds() + 1.0


async def test_a_holder_that_finds_the_lease_taken_stops_its_job_and_waits(
    engine: AsyncEngine,
) -> None:
    lease = Lease(engine, "job", ttl=TTL)
    job = Job()
    async with background("job", lease.run(job)):
        await asyncio.wait_for(job.started.wait(), 5)
        # Another process took it over (this one looked stalled past the ttl).
        async with engine.begin() as conn:
            await conn.execute(
                update(leases)
                .where(leases.c.name == "job")
                .values(holder="other", expires_at=utcnow() + TTL)
            )
        async with asyncio.timeout(2):
            while job.cancelled == 0:
                await asyncio.sleep(0.02)
        assert not lease.held
        job.started.clear()
        # The other holder never renews: once its lease runs out, the job runs again.
        await asyncio.wait_for(job.started.wait(), 3)
        assert lease.held and job.runs == 2


async def test_a_failing_job_raises_its_own_error_and_gives_the_lease_up(
    engine: AsyncEngine,
) -> None:
    lease = Lease(engine, "job", ttl=TTL)

    async def broken() -> None:
        raise LookupError("bug in the job")

    with pytest.raises(LookupError, match="bug in the job"):
        await lease.run(broken)
    assert not lease.held and await holder_of(engine, "job") is None


async def test_take_and_give_up_are_single_steps(engine: AsyncEngine) -> None:
    a, b = Lease(engine, "step", ttl=TTL), Lease(engine, "step", ttl=TTL)
    assert await a.take() and await a.take()  # renewing is taking again
    assert not await b.take() and not b.held
    await b.give_up()  # not the holder: changes nothing
    assert await holder_of(engine, "step") == a.holder
    await a.give_up()
    assert await b.take()
    with pytest.raises(ValueError, match="positive"):
        Lease(engine, "x", ttl=timedelta(0))
