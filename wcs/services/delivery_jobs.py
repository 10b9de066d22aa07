"""Periodic delivery housekeeping, run by the API process (its lifespan owns the task).

Every ``interval_s``: close delivered orders nobody signed off
(``signoff.auto_close_due``), alert on parcels past their delivery promise
(``tracking.flag_late_deliveries``), finish interrupted reshipments
(``tracking.complete_open_claims``) and void carrier bookings of orders cancelled
after allocation (``shipments.void_cancelled_bookings``). With several API processes,
a database lease lets one of them do it per round; each step is safe to run twice.

    async with DeliveryHousekeeping(engine, topics, auto_close_days=7):
        ...  # one named task, "delivery-housekeeping"; cancelled on exit
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.contract.topics import Topics
from wcs.ids import new_id
from wcs.persistence.leases import acquire_lease, release_lease
from wcs.services.shipments import CarrierDesk, void_cancelled_bookings
from wcs.services.signoff import auto_close_due
from wcs.services.tracking import complete_open_claims, flag_late_deliveries
from wcs.timeutil import utcnow

log = logging.getLogger(__name__)

TASK_NAME = "delivery-housekeeping"


@dataclass
class RoundReport:
    closed: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    reshipped: list[str] = field(default_factory=list)
    voided: list[str] = field(default_factory=list)


class DeliveryHousekeeping:
    LEASE = "delivery-housekeeping"

    def __init__(
        self,
        engine: AsyncEngine,
        topics: Topics,
        *,
        auto_close_days: int,
        desk: CarrierDesk | None = None,
        interval_s: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
        after_round: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._topics = topics
        self._days = auto_close_days
        self._desk = desk
        self._interval = interval_s
        self._clock = clock
        self._after_round = after_round  # e.g. wake the outbox relay
        self._holder = new_id("housekeeping-")
        self._lease_ttl = timedelta(seconds=max(30.0, 3 * interval_s))
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        self.failures = 0

    async def run_once(self) -> RoundReport:
        now = self._clock()
        report = RoundReport(
            closed=await auto_close_due(self._engine, self._topics, now, after_days=self._days),
            late=await flag_late_deliveries(self._engine, self._topics, now),
            reshipped=await complete_open_claims(self._engine, self._topics),
        )
        if self._desk is not None:
            report.voided = await void_cancelled_bookings(self._engine, self._topics, self._desk)
        self.rounds += 1
        if report.closed or report.late or report.reshipped or report.voided:
            log.info(
                "delivery housekeeping: %d auto-closed, %d late, %d reshipped, %d voided",
                len(report.closed),
                len(report.late),
                len(report.reshipped),
                len(report.voided),
            )
            self._after_round()
        return report

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                if await acquire_lease(self._engine, self.LEASE, self._holder, self._lease_ttl):
                    await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: try again next round
                self.failures += 1
                log.warning("delivery housekeeping round failed: %s", exc)

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name=TASK_NAME)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await release_lease(self._engine, self.LEASE, self._holder)
