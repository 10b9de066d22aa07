"""The end-of-shift report: KPIs from the system's own records, as a table.

Processing time, pick accuracy, pack pass rate and inventory accuracy are the
monitoring definitions (``wcs.services.kpis``), so the table says what ``GET
/api/v1/kpis`` would; intake to ``allocated`` is added because a shift here ends with
the carrier booking, and the replenishment moves the pick station made. Counts of
caught mistakes come from the floor activity log, next to what the simulated people
actually did, so a mistake the system missed shows as a difference.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from rich.table import Table
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from demo.delivery import DeliveryStats
from device_sim.people import ShiftStats
from wcs.domain.kpis import percentile
from wcs.domain.states import OrderState
from wcs.persistence.tables import activity, move_tasks, order_events
from wcs.services.kpis import kpi_report, orders_by_state
from wcs.timeutil import as_utc

# The order a reader walks the states in, final ones last.
STATE_ORDER = (
    "received",
    "validated",
    "backordered",
    "reserved",
    "pick_planned",
    "picking",
    "picked",
    "qc_failed",
    "qc_passed",
    "packing",
    "packed",
    "allocated",
    "shipped",
    "in_transit",
    "out_for_delivery",
    "delivery_failed",
    "delayed",
    "delivered",
    "closed",
    "exception",
    "cancelled",
)
FINAL = frozenset({"allocated", "exception", "cancelled"})


@dataclass
class ShiftReport:
    orders: int
    wall_s: float
    by_state: dict[str, int]
    to_packed_p50_s: float | None
    to_packed_p95_s: float | None
    to_allocated_p50_s: float | None
    to_allocated_p95_s: float | None
    pick_accuracy: float | None
    pack_pass_rate: float | None
    qc_pass_rate: float | None
    caught: Counter[str] = field(default_factory=Counter)
    backordered: int = 0
    device_events: int = 0
    # None: not checked (the shift did not finish, so the books are still moving).
    findings: list[str] | None = None
    people: ShiftStats | None = None
    on_time_shipping: float | None = None
    on_time_delivery: float | None = None
    satisfaction: float | None = None
    ratings: int = 0
    returns_rate: float | None = None
    delivered: DeliveryStats | None = None
    # Counts closed, and of them those whose book matched; the units booked (net and
    # gross); replenishment moves by state; piles a count closed (checked on shelves).
    counts_closed: int = 0
    counts_matched: int = 0
    adjusted_units: int = 0
    adjusted_gross: int = 0
    moves: Counter[str] = field(default_factory=Counter)
    counted_piles: int = 0

    @property
    def inventory_accuracy(self) -> float | None:
        return self.counts_matched / self.counts_closed if self.counts_closed else None

    @property
    def events_per_s(self) -> float:
        return self.device_events / self.wall_s if self.wall_s > 0 else 0.0


async def collect(
    engine: AsyncEngine,
    *,
    start: datetime,
    end: datetime,
    orders: int,
    wall_s: float,
    device_events: int,
    people: ShiftStats | None,
    findings: list[str] | None,
    delivered: DeliveryStats | None = None,
) -> ShiftReport:
    kpis = await kpi_report(engine, start, end)
    async with engine.connect() as conn:
        by_state = await orders_by_state(conn)
        first = order_events.alias("first_event")
        allocated = (
            select(order_events.c.order_id, func.min(order_events.c.at).label("at"))
            .where(order_events.c.to_state == OrderState.ALLOCATED)
            .group_by(order_events.c.order_id)
            .subquery()
        )
        rows = await conn.execute(
            select(first.c.at, allocated.c.at).join(
                first, and_(first.c.order_id == allocated.c.order_id, first.c.seq == 1)
            )
        )
        to_allocated = [max(0.0, (as_utc(b) - as_utc(a)).total_seconds()) for a, b in rows]
        caught = Counter(
            {
                str(kind): int(n)
                for kind, n in await conn.execute(
                    select(activity.c.kind, func.count())
                    .where(
                        activity.c.kind.in_(("mispick", "short_pick", "weight_mismatch", "qc_fail"))
                    )
                    .group_by(activity.c.kind)
                )
            }
        )
        moves = Counter(
            {
                str(state): int(n)
                for state, n in await conn.execute(
                    select(move_tasks.c.state, func.count()).group_by(move_tasks.c.state)
                )
            }
        )
        backordered = await conn.scalar(
            select(func.count(func.distinct(order_events.c.order_id))).where(
                order_events.c.to_state == OrderState.BACKORDERED
            )
        )
    pt = kpis.processing_time
    return ShiftReport(
        orders=orders,
        wall_s=wall_s,
        by_state=by_state,
        to_packed_p50_s=pt.p50_s,
        to_packed_p95_s=pt.p95_s,
        to_allocated_p50_s=percentile(to_allocated, 0.5) if to_allocated else None,
        to_allocated_p95_s=percentile(to_allocated, 0.95) if to_allocated else None,
        pick_accuracy=kpis.pick_accuracy.rate,
        pack_pass_rate=kpis.pack_pass_rate.rate,
        qc_pass_rate=kpis.qc_pass_rate.rate,
        caught=caught,
        backordered=int(backordered or 0),
        device_events=device_events,
        findings=findings,
        people=people,
        on_time_shipping=kpis.on_time_shipping.rate,
        on_time_delivery=kpis.on_time_delivery.rate,
        satisfaction=kpis.satisfaction.average if kpis.satisfaction else None,
        ratings=kpis.satisfaction.count if kpis.satisfaction else 0,
        returns_rate=kpis.returns_rate.rate if kpis.returns_rate else None,
        delivered=delivered,
        counts_closed=kpis.inventory_accuracy.total,
        counts_matched=kpis.inventory_accuracy.good,
        adjusted_units=kpis.adjustments.units_net,
        adjusted_gross=kpis.adjustments.units_gross,
        moves=moves,
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def kpi_table(report: ShiftReport) -> Table:
    people = report.people
    table = Table(title=f"Shift KPIs: {report.orders} orders in {report.wall_s:.0f} s")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    table.add_column("note")

    def did(n: int | None) -> str:
        return f"people made {n}" if n is not None else ""

    table.add_row(
        "order processing time p50 / p95",
        f"{_seconds(report.to_packed_p50_s)} / {_seconds(report.to_packed_p95_s)}",
        "intake to packed",
    )
    table.add_row(
        "intake to allocated p50 / p95",
        f"{_seconds(report.to_allocated_p50_s)} / {_seconds(report.to_allocated_p95_s)}",
        "carrier booked",
    )
    table.add_row("pick accuracy", _pct(report.pick_accuracy), "picks / (picks + mispicks)")
    table.add_row("pack pass rate", _pct(report.pack_pass_rate), "weight right first time")
    table.add_row("QC pass rate", _pct(report.qc_pass_rate), "")
    table.add_row(
        "mispicks caught",
        str(report.caught["mispick"]),
        did(people.mispicks if people else None),
    )
    table.add_row(
        "weight mismatches caught",
        str(report.caught["weight_mismatch"]),
        did(people.weight_mismatches if people else None),
    )
    table.add_row(
        "short picks re-planned",
        str(report.caught["short_pick"]),
        did(people.short_picks if people else None),
    )
    table.add_row(
        "replenishment moves",
        str(report.moves["done"] + report.moves["short"]),
        f"{report.moves['short']} found the reserve short"
        + (f"; {people.moved_units} units moved" if people else ""),
    )
    table.add_row(
        "inventory accuracy",
        _pct(report.inventory_accuracy),
        f"{report.counts_matched} of {report.counts_closed} counts matched the book",
    )
    table.add_row(
        "stock adjusted by counts",
        f"{report.adjusted_units:+d} units" if report.adjusted_units else "0 units",
        f"{report.adjusted_gross} units found or lost",
    )
    table.add_row(
        "QC failures",
        str(report.caught["qc_fail"]),
        did(people.qc_failures if people else None),
    )
    table.add_row("orders backordered, then filled", str(report.backordered), "goods-in receipts")
    table.add_row("shipped on time", _pct(report.on_time_shipping), "by the ship-by deadline")
    d = report.delivered
    table.add_row(
        "delivered on time",
        _pct(report.on_time_delivery),
        f"{d.delivered} delivered ({d.carrier} carrier, {d.own_fleet} own fleet), "
        f"{d.failed_attempts} failed attempts tried again"
        if d
        else "",
    )
    table.add_row(
        "customer satisfaction",
        "-" if report.satisfaction is None else f"{report.satisfaction:.2f} / 5",
        f"{report.ratings} ratings",
    )
    table.add_row("returns rate", _pct(report.returns_rate), "of the orders delivered")
    final = ", ".join(
        f"{state} {report.by_state[state]}" for state in STATE_ORDER if report.by_state.get(state)
    )
    table.add_row("orders by final state", final, "")
    table.add_row("device events / s", f"{report.events_per_s:.0f}", "through the controller")
    findings = report.findings
    table.add_row(
        "books balance",
        "not checked" if findings is None else "yes" if not findings else f"NO ({len(findings)})",
        f"stock vs shelves (drift not yet counted aside; {report.counted_piles} "
        "counted piles exact), event logs gap-free",
    )
    return table
