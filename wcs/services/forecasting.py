"""Peak forecasting for staffing and waves: order history in, hourly plan out.

Reads hourly order counts (by ``orders.created_at``) since the first order, at most
``forecast_history_days`` back, fits ``wcs.domain.forecast`` in a worker thread (it
is CPU work; the event loop keeps serving) and turns the forecast into pickers and
waves per hour with ``suggest_staffing``. The current, unfinished hour is left out of
the history: counting it would read as a sudden drop in demand.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.domain import forecast as model
from wcs.domain.kpis import floor_hour
from wcs.domain.waves import WavePolicy
from wcs.errors import Conflict
from wcs.persistence.tables import order_lines, orders
from wcs.services.kpis import hourly_counts
from wcs.settings import MonitoringSettings
from wcs.timeutil import as_utc, utcnow


class NotEnoughHistory(Conflict):
    code = "not_enough_history"

    def __init__(self, message: str, *, have_hours: int = 0) -> None:
        super().__init__(message)
        # For the status page, which says it in the reader's language.
        self.have_hours = have_hours
        self.need_hours = model.MIN_HISTORY_HOURS


@dataclass(frozen=True, slots=True)
class History:
    start: datetime  # first hour (UTC)
    counts: tuple[int, ...]
    lines_per_order: float


async def order_history(engine: AsyncEngine, now: datetime, max_days: int) -> History | None:
    """Hourly order counts from the first order (or ``max_days`` back) to the last full hour."""
    end = floor_hour(now)
    earliest = end - timedelta(days=max_days)
    async with engine.connect() as conn:
        first = await conn.scalar(
            select(func.min(orders.c.created_at)).where(
                and_(orders.c.created_at >= earliest, orders.c.created_at < end)
            )
        )
        if first is None:
            return None
        start = floor_hour(as_utc(first))
        window = and_(orders.c.created_at >= start, orders.c.created_at < end)
        counts = await hourly_counts(conn, orders.c.created_at, window)
        n_orders = await conn.scalar(select(func.count()).select_from(orders).where(window))
        n_lines = await conn.scalar(
            select(func.count())
            .select_from(order_lines.join(orders, orders.c.id == order_lines.c.order_id))
            .where(window)
        )
    hours = int((end - start) / timedelta(hours=1))
    series = tuple(counts.get(start + timedelta(hours=i), 0) for i in range(hours))
    per_order = (n_lines or 0) / n_orders if n_orders else 1.0
    return History(start, series, max(per_order, 1.0))


def _local_start(start: datetime, zone: str) -> datetime:
    local = start.astimezone(ZoneInfo(zone))
    # Zones off the whole hour (UTC+5:30) cannot label UTC hours as local hours.
    return local if local.minute == 0 else start


def plan(
    history: History,
    hours: int,
    settings: MonitoringSettings,
    *,
    level: float = 0.8,
    plan_for: Literal["expected", "high"] = "expected",
    wave_size: int | None = None,
) -> dict[str, Any]:
    """Fit, forecast ``hours`` ahead and suggest staffing; plain values for the API."""
    if len(history.counts) < model.MIN_HISTORY_HOURS:
        raise NotEnoughHistory(
            f"forecasting needs {model.MIN_HISTORY_HOURS} hours of order history, there are "
            f"{len(history.counts)}; it becomes available after a day of operation",
            have_hours=len(history.counts),
        )
    start = _local_start(history.start, settings.timezone)
    fitted = model.fit(history.counts, start)
    # Staffing is planned on the figures the page shows (two decimals): planned on
    # the unrounded ones, an "expected 6.0" that was 6.004 would call for a 7th order
    # and a picker nobody reading the page could account for.
    raw = fitted.forecast(hours, level=level)
    shown = tuple(
        model.ForecastPoint(p.at, round(p.expected, 2), round(p.low, 2), round(p.high, 2))
        for p in raw.points
    )
    outlook = replace(raw, points=shown)
    size = wave_size or WavePolicy().max_orders
    staffing = model.suggest_staffing(
        outlook,
        settings.picks_per_picker_hour,
        size,
        lines_per_order=history.lines_per_order,
        plan_for=plan_for,
    )
    points = [
        {
            "hour": p.at,
            "expected": round(p.expected, 2),
            "low": round(p.low, 2),
            "high": round(p.high, 2),
            "pickers": s.pickers,
            "waves": s.waves,
            "orders_per_wave": s.orders_per_wave,
        }
        for p, s in zip(outlook.points, staffing.hours, strict=True)
    ]
    peak = max(outlook.points, key=lambda p: p.expected)
    return {
        "generated_at": utcnow(),
        "timezone": settings.timezone,
        "history_hours": fitted.history_hours,
        "level": level,
        "plan_for": plan_for,
        "lines_per_order": round(history.lines_per_order, 2),
        "picks_per_picker_hour": settings.picks_per_picker_hour,
        "wave_size": size,
        "total_expected": round(outlook.total, 1),
        "peak": {"hour": peak.at, "expected": round(peak.expected, 2), "high": round(peak.high, 2)},
        "peak_pickers": staffing.peak_pickers,
        "picker_hours": staffing.picker_hours,
        "points": points,
    }


async def forecast_plan(
    engine: AsyncEngine,
    settings: MonitoringSettings,
    hours: int,
    *,
    level: float = 0.8,
    plan_for: Literal["expected", "high"] = "expected",
    now: datetime | None = None,
) -> dict[str, Any]:
    history = await order_history(engine, now or utcnow(), settings.forecast_history_days)
    if history is None:
        raise NotEnoughHistory(
            "no orders before the current hour yet: forecasting starts after a day of operation"
        )
    return await asyncio.to_thread(plan, history, hours, settings, level=level, plan_for=plan_for)
