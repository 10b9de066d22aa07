"""The numbers of a periodic review, read for the days [first, last].

- Daily KPIs: ``wcs.services.kpis.kpi_report`` for each UTC day, plus one for the
  whole period (so period rates are true ratios, not averages of daily rates).
- Stages: time orders spent in each stage's states (the gap between an order's event
  and its next one; an order still sitting in a state counts up to the period end),
  contingency transitions leaving the stage, and the feedback about it.
- Alerts raised per code, and feedback per stage, kind and status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.domain.kpis import KpiReport, percentile
from wcs.domain.states import STAGE_OF, TERMINAL, Stage, find_transition
from wcs.errors import ValidationFailed
from wcs.persistence.tables import alerts, feedback, order_events
from wcs.services import feedback as feedback_service
from wcs.services.kpis import kpi_report
from wcs.timeutil import as_utc, utcnow

STAGES: tuple[Stage, ...] = (
    "intake",
    "reservation",
    "picking",
    "qc",
    "packing",
    "outbound",
    "delivery",
    "after_sales",
)
# Waiting for the customer is not the warehouse being slow.
NOT_DWELL = frozenset({"delivered", *TERMINAL})
MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class DayKpis:
    day: date
    report: KpiReport
    received: int
    packed: int


@dataclass
class StageStats:
    stage: str
    visits: int = 0
    total_s: float = 0.0
    durations: list[float] = field(default_factory=list)
    exceptions: int = 0
    complaints: int = 0
    suggestions: int = 0

    @property
    def mean_s(self) -> float | None:
        return self.total_s / self.visits if self.visits else None

    @property
    def p95_s(self) -> float | None:
        return percentile(self.durations, 0.95) if self.durations else None


@dataclass(frozen=True, slots=True)
class ReviewData:
    first: date
    last: date
    start: datetime
    end: datetime
    period: KpiReport
    days: tuple[DayKpis, ...]
    stages: tuple[StageStats, ...]  # worst first
    alerts_by_code: tuple[tuple[str, str, int], ...]  # code, severity, count; most first
    feedback: dict[tuple[str, str, str], int]
    open_complaints: tuple[dict[str, object], ...]


async def _day_report(engine: AsyncEngine, start: datetime, end: datetime) -> KpiReport:
    # A window that has not begun yet (a day after today) is an empty report.
    return await kpi_report(engine, start, max(end, start + timedelta(microseconds=1)))


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    if last < first:
        raise ValidationFailed(f"--to {last} is before --from {first}")
    if (last - first).days >= MAX_DAYS:
        raise ValidationFailed(f"a review covers at most {MAX_DAYS} days")
    return (
        datetime.combine(first, time(), UTC),
        datetime.combine(last + timedelta(days=1), time(), UTC),
    )


async def _stage_times(
    engine: AsyncEngine, start: datetime, end: datetime
) -> dict[str, StageStats]:
    stats: dict[str, StageStats] = {s: StageStats(s) for s in STAGES}
    following = (
        func.lead(order_events.c.at, type_=order_events.c.at.type)
        .over(partition_by=order_events.c.order_id, order_by=order_events.c.seq)
        .label("next_at")
    )
    inner = (
        select(
            order_events.c.from_state,
            order_events.c.to_state,
            order_events.c.at,
            following,
        )
        .where(order_events.c.at < end)
        .subquery()
    )
    # Stays that overlap the period: they end inside it, or have not ended by its end.
    query = select(inner).where(inner.c.next_at.is_(None) | (inner.c.next_at > start))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    for r in rows:
        at = as_utc(r.at)
        if r.from_state is not None and at >= start:
            move = find_transition(r.from_state, r.to_state)
            if move is not None and move.kind == "contingency":
                stats[STAGE_OF[r.from_state]].exceptions += 1
        if r.to_state in NOT_DWELL:
            continue
        left = as_utc(r.next_at) if r.next_at is not None else end
        entered = max(at, start)
        left = min(left, end)
        if left <= entered:
            continue
        seconds = (left - entered).total_seconds()
        s = stats[STAGE_OF[r.to_state]]
        s.visits += 1
        s.total_s += seconds
        s.durations.append(seconds)
    return stats


async def _alerts(
    engine: AsyncEngine, start: datetime, end: datetime
) -> list[tuple[str, str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(alerts.c.code, alerts.c.severity, func.count())
            .where(and_(alerts.c.created_at >= start, alerts.c.created_at < end))
            .group_by(alerts.c.code, alerts.c.severity)
        )
        found = [(code, severity, int(n)) for code, severity, n in rows]
    return sorted(found, key=lambda t: (-t[2], t[0]))


async def _open_complaints(
    engine: AsyncEngine, start: datetime, end: datetime, limit: int = 10
) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(feedback.c.id, feedback.c.stage, feedback.c.text, feedback.c.created_at)
            .where(
                and_(
                    feedback.c.kind == "complaint",
                    feedback.c.status.in_(("open", "accepted")),
                    feedback.c.created_at >= start,
                    feedback.c.created_at < end,
                )
            )
            .order_by(feedback.c.created_at)
            .limit(limit)
        )
        return [
            {"id": r.id, "stage": r.stage, "text": r.text[:300], "at": as_utc(r.created_at)}
            for r in rows
        ]


def rank_stages(stats: Sequence[StageStats]) -> list[StageStats]:
    """Worst first: by the sum of each stage's rank in total stuck time, exceptions and
    complaints (so one huge number does not hide two bad ones); ties by stuck time."""

    def ranks(key: str) -> dict[str, int]:
        ordered = sorted(stats, key=lambda s: -float(getattr(s, key)))
        return {s.stage: i for i, s in enumerate(ordered)}

    by_time, by_exc, by_fb = ranks("total_s"), ranks("exceptions"), ranks("complaints")
    return sorted(
        stats,
        key=lambda s: (by_time[s.stage] + by_exc[s.stage] + by_fb[s.stage], -s.total_s),
    )


async def review_data(
    engine: AsyncEngine, first: date, last: date, *, now: datetime | None = None
) -> ReviewData:
    """The period never reaches past ``now``: an order still sitting in a state has
    sat there until now, not until the end of today (a day not begun counts nothing)."""
    start, end = day_bounds(first, last)
    end = max(start, min(end, now or utcnow()))
    days = []
    day = first
    while day <= last:
        day_start = datetime.combine(day, time(), UTC)
        day_end = min(day_start + timedelta(days=1), end)
        report = await _day_report(engine, day_start, day_end)
        days.append(
            DayKpis(
                day,
                report,
                received=sum(h.count for h in report.received_per_hour),
                packed=sum(h.count for h in report.packed_per_hour),
            )
        )
        day += timedelta(days=1)
    period = await _day_report(engine, start, end)
    stats = await _stage_times(engine, start, end)
    fb = await feedback_service.summary(engine, start, end)
    per_kind: Counter[tuple[str, str]] = Counter()
    for (stage, kind, _status), n in fb.items():
        per_kind[(stage, kind)] += n
    for s in stats.values():
        s.complaints = per_kind[(s.stage, "complaint")]
        s.suggestions = per_kind[(s.stage, "suggestion")]
    return ReviewData(
        first=first,
        last=last,
        start=start,
        end=end,
        period=period,
        days=tuple(days),
        stages=tuple(rank_stages(list(stats.values()))),
        alerts_by_code=tuple(await _alerts(engine, start, end)),
        feedback=fb,
        open_complaints=tuple(await _open_complaints(engine, start, end)),
    )
