"""Periodic delivery housekeeping, run by the API process (its lifespan owns the task).

Every ``interval_s``: close delivered orders nobody signed off
(``signoff.auto_close_due``), alert on parcels past their delivery promise
(``tracking.flag_late_deliveries``), finish interrupted reshipments
(``tracking.complete_open_claims``) and void carrier bookings of orders cancelled
after allocation (``shipments.void_cancelled_bookings``). With several API processes,
the one holding the ``delivery-housekeeping`` lease does it; each step is safe to
run twice.

    async with DeliveryHousekeeping(engine, topics, auto_close_days=7):
        ...  # one named task, "delivery-housekeeping"; cancelled on exit
"""

from __future__ import annotations

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
from wcs.persistence.db import OUTAGE_ERRORS
from wcs.persistence.leases import Lease
from wcs.retry import Outage
from wcs.services.shipments import CarrierDesk, void_cancelled_bookings
from wcs.services.signoff import auto_close_due
from wcs.services.tracking import complete_open_claims, flag_late_deliveries
from wcs.tasks import background, every
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
        self._lease = Lease(
            engine,
            self.LEASE,
            ttl=timedelta(seconds=max(30.0, 3 * interval_s)),
            holder=new_id("housekeeping-"),
        )
        self._outage = Outage("delivery housekeeping", log, expected=OUTAGE_ERRORS)
        self._stack = contextlib.AsyncExitStack()
        self.rounds = 0

    @property
    def failures(self) -> int:
        return self._outage.total

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

    async def _rounds(self) -> None:
        await every(self._interval, self.run_once, self._outage, wait_first=True)

    async def __aenter__(self) -> Self:
        await self._stack.enter_async_context(background(TASK_NAME, self._lease.run(self._rounds)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
