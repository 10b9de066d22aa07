"""Feedback loop: suggestions and complaints from staff and customers, tagged with the
process stage they concern (``wcs.domain.states.STAGE_OF``), triaged by supervisors.

Triage moves: open -> accepted | rejected | done; accepted -> done | rejected | open;
rejected -> open; done -> open. Rejecting needs a note (the author deserves a reason).
Every step is kept in ``history``, so a reopened item shows how it got there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.domain.states import Stage
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.persistence.db import transaction
from wcs.persistence.tables import feedback, orders
from wcs.timeutil import as_utc, utcnow

Kind = Literal["suggestion", "complaint"]
Status = Literal["open", "accepted", "rejected", "done"]
KINDS: tuple[str, ...] = get_args(Kind)
STATUSES: tuple[str, ...] = get_args(Status)
STAGES: tuple[str, ...] = get_args(Stage)
TEXT_MAX = 4000

MOVES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "open": frozenset({"accepted", "rejected", "done"}),
        "accepted": frozenset({"done", "rejected", "open"}),
        "rejected": frozenset({"open"}),
        "done": frozenset({"open"}),
    }
)


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValidationFailed(f"{what} {value!r} is not one of {', '.join(allowed)}")


def view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "stage": row.stage,
        "text": row.text,
        "order_id": row.order_id,
        "author": row.author,
        "author_role": row.author_role,
        "status": row.status,
        "triage_note": row.triage_note,
        "triaged_by": row.triaged_by,
        "triaged_at": as_utc(row.triaged_at) if row.triaged_at else None,
        "history": row.history,
        "created_at": as_utc(row.created_at),
        "updated_at": as_utc(row.updated_at),
    }


async def submit(
    engine: AsyncEngine,
    *,
    kind: str,
    stage: str,
    text: str,
    author: str,
    author_role: str,
    order_id: str | None = None,
) -> dict[str, Any]:
    _check(kind, KINDS, "kind")
    _check(stage, STAGES, "stage")
    text = text.strip()
    if not text:
        raise ValidationFailed("feedback text is empty")
    if len(text) > TEXT_MAX:
        raise ValidationFailed(f"feedback text is longer than {TEXT_MAX} characters")
    now = utcnow()
    async with transaction(engine) as conn:
        if order_id is not None and (
            await conn.scalar(select(orders.c.id).where(orders.c.id == order_id)) is None
        ):
            raise NotFound(f"order {order_id} does not exist", order_id=order_id)
        new_id = (
            await conn.execute(
                insert(feedback)
                .values(
                    kind=kind,
                    stage=stage,
                    text=text,
                    order_id=order_id,
                    author=author[:64],
                    author_role=author_role[:32],
                    status="open",
                    history=[{"status": "open", "by": author[:64], "at": now.isoformat()}],
                    created_at=now,
                    updated_at=now,
                )
                .returning(feedback.c.id)
            )
        ).scalar_one()
        row = (await conn.execute(select(feedback).where(feedback.c.id == new_id))).one()
    return view(row)


async def triage(
    engine: AsyncEngine, feedback_id: int, status: str, note: str | None, *, actor: str
) -> dict[str, Any]:
    _check(status, STATUSES, "status")
    note = (note or "").strip() or None
    if status == "rejected" and not note:
        raise ValidationFailed("say why in 'note' when rejecting feedback")
    now = utcnow()
    async with transaction(engine) as conn:
        row = (
            await conn.execute(
                select(feedback).where(feedback.c.id == feedback_id).with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound(f"feedback {feedback_id} does not exist", feedback_id=feedback_id)
        if status != row.status and status not in MOVES[row.status]:
            raise Conflict(
                f"feedback {feedback_id} is {row.status}; it can go to "
                f"{', '.join(sorted(MOVES[row.status]))}",
                feedback_id=feedback_id,
            )
        step = {"status": status, "by": actor[:64], "at": now.isoformat(), "note": note}
        await conn.execute(
            update(feedback)
            .where(feedback.c.id == feedback_id)
            .values(
                status=status,
                triage_note=note if note is not None else row.triage_note,
                triaged_by=actor[:64],
                triaged_at=now,
                history=[*row.history, step],
                updated_at=now,
            )
        )
        row = (await conn.execute(select(feedback).where(feedback.c.id == feedback_id))).one()
    return view(row)


async def list_feedback(
    engine: AsyncEngine,
    *,
    status: str | None = None,
    stage: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    conditions = []
    if status is not None:
        _check(status, STATUSES, "status")
        conditions.append(feedback.c.status == status)
    if stage is not None:
        _check(stage, STAGES, "stage")
        conditions.append(feedback.c.stage == stage)
    if kind is not None:
        _check(kind, KINDS, "kind")
        conditions.append(feedback.c.kind == kind)
    query = select(feedback).where(and_(*conditions)) if conditions else select(feedback)
    query = query.order_by(feedback.c.created_at.desc(), feedback.c.id.desc()).limit(limit)
    async with engine.connect() as conn:
        return [view(r) for r in await conn.execute(query)]


async def summary(
    engine: AsyncEngine, start: datetime, end: datetime
) -> dict[tuple[str, str, str], int]:
    """Feedback created in [start, end): count per (stage, kind, status)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(feedback.c.stage, feedback.c.kind, feedback.c.status, func.count())
            .where(and_(feedback.c.created_at >= start, feedback.c.created_at < end))
            .group_by(feedback.c.stage, feedback.c.kind, feedback.c.status)
        )
        return {(stage, kind, status): int(n) for stage, kind, status, n in rows}
