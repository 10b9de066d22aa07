"""Named leases in the database: one holder at a time for singleton jobs.

Works the same on SQLite and PostgreSQL (a conditional update, then an insert that
loses cleanly on a primary-key race), so it needs no advisory locks. :class:`Lease`
runs a job for as long as this process holds the lease (the outbox relay, the alert
evaluator, the notifier, delivery housekeeping, the fleet re-planner).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import and_, delete, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.ids import new_id
from wcs.persistence.tables import leases
from wcs.retry import Outage
from wcs.tasks import first_leaf
from wcs.timeutil import utcnow

log = logging.getLogger(__name__)


async def acquire_lease(engine: AsyncEngine, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew ``name`` for ``holder``; False when someone else holds it."""
    now = utcnow()
    async with engine.begin() as conn:
        result = await conn.execute(
            update(leases)
            .where(
                and_(
                    leases.c.name == name,
                    or_(leases.c.holder == holder, leases.c.expires_at < now),
                )
            )
            .values(holder=holder, expires_at=now + ttl)
        )
        if result.rowcount == 1:
            return True
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(leases).values(name=name, holder=holder, expires_at=now + ttl)
            )
    except IntegrityError:
        return False
    return True


async def release_lease(engine: AsyncEngine, name: str, holder: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            delete(leases).where(and_(leases.c.name == name, leases.c.holder == holder))
        )


class LeaseLost(Exception):
    """The lease is no longer this process's: its job must stop."""


class Lease:
    """A named lease that this process holds for as long as a job runs on it.

    ``run(job)`` waits until the lease is free (trying every ``poll_s``, a third of
    ``ttl`` by default), then runs ``job`` while holding it and renews it every third
    of ``ttl`` beside the job. If a renewal finds the lease taken (this process stalled
    past ``ttl`` and another one took over) or cannot reach the database before the
    lease would run out, the job is cancelled and the wait starts again: two holders
    never run the job side by side for longer than that. Leaving ``run`` (the job
    ended, or the task was cancelled) gives the lease up, so a standby takes over
    within one ``poll_s``; a process that dies without giving it up loses it once
    ``ttl`` has run out.

        lease = Lease(engine, "alert-evaluator", ttl=timedelta(seconds=45))
        async with background("alert-evaluator", lease.run(evaluate_every_15_s)):
            ...

    ``take()`` and ``give_up()`` are the single steps, for work done one round at a
    time by its caller (``Notifier.run_once``)."""

    def __init__(
        self,
        engine: AsyncEngine,
        name: str,
        *,
        ttl: timedelta,
        holder: str | None = None,
        poll_s: float | None = None,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"lease {name}: the time to live must be positive")
        self.name = name
        self.holder = holder or new_id(f"{name}-")
        self.ttl = ttl
        self.held = False
        self._engine = engine
        self._renew_s = ttl.total_seconds() / 3
        self._poll_s = self._renew_s if poll_s is None else poll_s
        self._expires = 0.0  # monotonic: when the lease last taken runs out
        self._outage = Outage(f"lease {name}", log)

    async def take(self) -> bool:
        """Take the lease or renew it; False when another process holds it."""
        started = time.monotonic()
        self.held = await acquire_lease(self._engine, self.name, self.holder, self.ttl)
        if self.held:
            self._expires = started + self.ttl.total_seconds()
        return self.held

    async def give_up(self) -> None:
        """Release the lease if this process holds it (a failure only logs: it runs
        out by itself)."""
        self.held = False
        try:
            await release_lease(self._engine, self.name, self.holder)
        except Exception as exc:
            log.debug("lease %s not released (%s); it runs out by itself", self.name, exc)

    async def run(self, job: Callable[[], Awaitable[None]]) -> None:
        try:
            while True:
                await self._until_taken()
                try:
                    async with asyncio.TaskGroup() as group:
                        keeper = group.create_task(self._keep(), name=f"lease:{self.name}")
                        await job()
                        keeper.cancel()
                    return
                except BaseExceptionGroup as errors:
                    lost, others = errors.split(LeaseLost)
                    if others is not None:
                        raise first_leaf(others) from None
                    assert lost is not None
                    self.held = False
                    log.warning(
                        "lease %s: %s; its work stops until the lease is free again",
                        self.name,
                        first_leaf(lost),
                    )
        finally:
            await self.give_up()

    async def _until_taken(self) -> None:
        while True:
            try:
                taken = await self.take()
            except Exception as exc:  # the database is away: wait for it quietly
                self._outage.failed(exc)
            else:
                self._outage.ok()
                if taken:
                    return
            await asyncio.sleep(self._poll_s)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._renew_s)
            try:
                if not await self.take():
                    raise LeaseLost("another process took it over")
            except LeaseLost:
                raise
            except Exception as exc:
                self._outage.failed(exc)
                if time.monotonic() + self._renew_s >= self._expires:
                    raise LeaseLost("it could not be renewed before running out") from exc
            else:
                self._outage.ok()
