"""Asking the owner of floor state to act (cancel, QC verdicts, wave release).

Floor state has one writer: the controller instance holding the station an order is
at. Whoever else wants it changed writes a request row naming that station; the owner
applies it in order with its device events, in the same transaction writes the
result, and the asker reads it back (or follows the request later: the API answers
202 with the request's URL when the owner takes longer than the asker waits).

Which station an order is at: the pick station of its unfinished pick tasks, the QC
bench counting it, the pack station packing it; an order at none of them (not on the
floor yet, or in transit between stations) belongs to the floor's own owner
(``floor``), which holds wave release and QC resolutions too.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.domain.floor.machines import PackageState, TaskState
from wcs.ids import new_id
from wcs.persistence.db import reading, transaction
from wcs.persistence.notices import notify
from wcs.persistence.tables import floor_requests, packages, pick_batches, pick_tasks, qc_checks
from wcs.timeutil import utcnow

FLOOR = "floor"
# Rung with every request written, the station as its payload: the owner wakes at once
# instead of at its next look (wcs.persistence.notices).
CHANNEL = "wcs_floor_requests"
KINDS = ("cancel", "qc_verdict", "qc_resolve", "wave", "count_create", "count_key", "count_accept")
OPEN_PACKAGE = (PackageState.WEIGHING, PackageState.LABELLING, PackageState.AWAITING_SCAN)


@dataclass(frozen=True)
class Answer:
    id: str
    station: str
    kind: str
    state: str  # pending, done, refused
    result: dict[str, Any] | None

    @property
    def done(self) -> bool:
        return self.state != "pending"


async def locate(conn: AsyncConnection, order_id: str) -> str:
    """The station the order is at now (``floor`` when it is at none)."""
    station = await conn.scalar(
        select(pick_batches.c.station)
        .join(pick_tasks, pick_tasks.c.batch_id == pick_batches.c.id)
        .where(
            and_(
                pick_tasks.c.order_id == order_id,
                pick_tasks.c.state.in_((TaskState.OPEN, TaskState.LIT)),
                pick_batches.c.station.is_not(None),
            )
        )
        .limit(1)
    )
    if station is None:
        station = await conn.scalar(
            select(qc_checks.c.station).where(
                and_(
                    qc_checks.c.order_id == order_id,
                    qc_checks.c.result.is_(None),
                    qc_checks.c.station.is_not(None),
                )
            )
        )
    if station is None:
        station = await conn.scalar(
            select(packages.c.station)
            .where(and_(packages.c.order_id == order_id, packages.c.state.in_(OPEN_PACKAGE)))
            .limit(1)
        )
    return str(station) if station is not None else FLOOR


async def ask(
    engine: AsyncEngine,
    kind: str,
    *,
    actor: str,
    order_id: str | None = None,
    station: str | None = None,
    body: dict[str, Any] | None = None,
) -> str:
    """Write a request for the station the order is at (or ``station``); its id."""
    if kind not in KINDS:
        raise ValueError(f"unknown floor request {kind!r}")
    request_id = new_id("r")
    async with transaction(engine) as conn:
        target = station or (await locate(conn, order_id) if order_id else FLOOR)
        await conn.execute(
            insert(floor_requests).values(
                id=request_id,
                station=target,
                kind=kind,
                order_id=order_id,
                body=body or {},
                actor=actor,
                state="pending",
                result=None,
                created_at=utcnow(),
                done_at=None,
            )
        )
        await notify(conn, CHANNEL, target)
    return request_id


async def answer(engine: AsyncEngine, request_id: str) -> Answer | None:
    async with reading(engine).connect() as conn:
        row = (
            await conn.execute(select(floor_requests).where(floor_requests.c.id == request_id))
        ).first()
    if row is None:
        return None
    return Answer(row.id, row.station, row.kind, row.state, row.result)


async def wait(engine: AsyncEngine, request_id: str, timeout_s: float) -> Answer:
    """The request's answer once its owner applied it, or as it is after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        current = await answer(engine, request_id)
        assert current is not None
        if current.done or time.monotonic() >= deadline:
            return current
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
