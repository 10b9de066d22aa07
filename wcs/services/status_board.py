"""What the live status page shows, read in one go.

The board may be shown on an open wall display, so it carries no personal data by
construction: order ids and states, counts, device ids and states, alert codes with
their catalogue titles (never the free-text message, which can quote an address or a
customer's note), KPI numbers and the forecast. Event reasons and actors are left
out for the same reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.domain.alert_rules import ALERT_CATALOGUE, SEVERITY_RANK
from wcs.domain.states import TERMINAL
from wcs.floor import Floor
from wcs.persistence.db import reading
from wcs.persistence.tables import alert_resolutions, alerts, order_events
from wcs.services.alerting import open_alert_counts
from wcs.services.devices import list_devices
from wcs.services.kpis import kpi_report, orders_by_state, report_as_dict, state_counts_with_zeros
from wcs.services.supervisor_board import (
    at_risk_orders,
    devices_down,
    floor_live,
    station_states,
    zone_throughput,
)
from wcs.timeutil import as_utc, utcnow

KPI_WINDOW = timedelta(hours=24)
DEFAULT_SLA_MARGIN = timedelta(minutes=60)
RECENT_EVENTS = 20
BOARD_ALERTS = 20


def subject_link(kind: str, subject: str | None) -> str | None:
    """The status page that shows an alert's subject: an order's timeline or a device's
    history; None for summaries ("orders", "state:picking") and other subjects."""
    if not subject or subject == "orders" or ":" in subject:
        return None
    if kind.startswith("order id"):
        return f"/status/orders/{quote(subject, safe='')}"
    if "device id" in kind:
        return f"/status/devices/{quote(subject, safe='')}"
    return None


def public_alert(
    alert_id: int,
    code: str,
    severity: str,
    subject: str | None,
    at: datetime,
    *,
    acked_by: str | None = None,
    assigned_to: str | None = None,
) -> dict[str, Any]:
    spec = ALERT_CATALOGUE.get(code)
    return {
        "id": alert_id,
        "code": code,
        "severity": severity,
        "title": spec.title if spec else code.replace("_", " "),
        "subject": subject,
        "subject_link": subject_link(spec.subject if spec else "", subject),
        "at": as_utc(at),
        "acked_by": acked_by,
        "assigned_to": assigned_to,
    }


async def open_alerts_public(
    engine: AsyncEngine, limit: int = BOARD_ALERTS
) -> list[dict[str, Any]]:
    """Unresolved alerts: nobody on them first, then those in hand; each group most
    severe first, then newest."""
    async with reading(engine).connect() as conn:
        rows = await conn.execute(
            select(
                alerts.c.id,
                alerts.c.code,
                alerts.c.severity,
                alerts.c.subject,
                alerts.c.created_at,
                alerts.c.acked_by,
                alerts.c.assigned_to,
            )
            .outerjoin(alert_resolutions, alert_resolutions.c.alert_id == alerts.c.id)
            .where(alert_resolutions.c.alert_id.is_(None))
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(500)
        )
        found = [
            public_alert(
                r.id,
                r.code,
                r.severity,
                r.subject,
                r.created_at,
                acked_by=r.acked_by,
                assigned_to=r.assigned_to,
            )
            for r in rows
        ]
    found.sort(key=lambda a: (a["acked_by"] is not None, -SEVERITY_RANK.get(a["severity"], 0)))
    return found[:limit]


async def recent_events(engine: AsyncEngine, limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
    async with reading(engine).connect() as conn:
        rows = await conn.execute(
            select(
                order_events.c.order_id,
                order_events.c.seq,
                order_events.c.from_state,
                order_events.c.to_state,
                order_events.c.at,
            )
            .order_by(order_events.c.id.desc())
            .limit(limit)
        )
        return [
            {
                "order_id": r.order_id,
                "seq": r.seq,
                "from": r.from_state,
                "to": r.to_state,
                "at": as_utc(r.at),
            }
            for r in rows
        ]


async def board(
    engine: AsyncEngine,
    *,
    now: datetime | None = None,
    with_kpis: bool = True,
    floor: Floor | None = None,
    sla_margin: timedelta = DEFAULT_SLA_MARGIN,
    planned_per_hour: float | None = None,
) -> dict[str, Any]:
    now = now or utcnow()
    async with reading(engine).connect() as conn:
        counts = state_counts_with_zeros(await orders_by_state(conn))
        alert_counts = await open_alert_counts(conn)
        risk = await at_risk_orders(conn, now, sla_margin)
        throughput = await zone_throughput(conn, now, planned_per_hour)
        stations = await station_states(conn, floor)
        live_floor = await floor_live(conn, floor)
    all_devices = [d.as_dict() for d in await list_devices(engine)]
    result: dict[str, Any] = {
        "generated_at": now,
        "counts": counts,
        "active_orders": sum(n for state, n in counts.items() if state not in TERMINAL),
        "alert_counts": alert_counts,
        "alerts": await open_alerts_public(engine),
        "devices": all_devices,
        "devices_down": devices_down(all_devices, now),
        "risk": risk,
        "zones": throughput,
        "stations": stations,
        "floor": live_floor,
    }
    if with_kpis:
        report = report_as_dict(await kpi_report(engine, now - KPI_WINDOW, now))
        report.pop("orders_by_state")
        result["kpis"] = report
    return result
