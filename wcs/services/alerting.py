"""The alert engine: read a floor snapshot, apply ``wcs.domain.alert_rules``, raise
and resolve alerts; plus the alert list and acknowledgement behind the API.

One evaluation is: read the snapshot and the unresolved rule alerts, ``plan()``,
then one transaction that raises the new ones (``raise_alert``: table row + MQTT
``alert/{severity}`` through the outbox) and records the resolutions. Only the
holder of the ``alert-evaluator`` lease evaluates, so several API processes never
raise the same alert twice.

Alert lifecycle: *open* (raised, nobody acknowledged, condition holds), *acked*
(someone is on it; no new alert for the same code and subject while it lasts),
*resolved* (rule alerts: the condition cleared). ``GET /alerts?open=true`` lists
alerts neither acknowledged nor resolved.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.topics import Topics
from wcs.domain.alert_rules import (
    ALERT_CATALOGUE,
    BEFORE_SHIPPING,
    IN_DELIVERY,
    AlertPlan,
    DeviceSnapshot,
    FloorSnapshot,
    OpenAlert,
    OrderSnapshot,
    RuleConfig,
    evaluate,
    plan,
    stuck_limits,
)
from wcs.domain.kpis import MISPICK, PICK_OK, WEIGHT_MISMATCH, WEIGHT_OK, Ratio
from wcs.domain.states import OrderState
from wcs.errors import ConfigError, Conflict, NotFound, ValidationFailed
from wcs.ids import new_id
from wcs.persistence.db import OUTAGE_ERRORS, transaction
from wcs.persistence.leases import Lease
from wcs.persistence.orders import raise_alert
from wcs.persistence.tables import activity, alert_resolutions, alerts, devices, orders, shipments
from wcs.retry import Outage
from wcs.services.shipments import IN_FLIGHT
from wcs.settings import Settings
from wcs.tasks import background, every
from wcs.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

CARRIER_FAILED = "carrier_failed"
# A streak older than a shift says nothing about the station or carrier now.
STREAK_LOOKBACK = timedelta(hours=12)
CARRIER_ROWS = 500
# Bounds one evaluation's read; beyond it the summary alerts say "many" anyway.
MAX_ORDER_ROWS = 5_000
RULE_CODES = tuple(code for code, spec in ALERT_CATALOGUE.items() if spec.auto_resolve)
RESOLVED_BY_RULE = "condition cleared"


def rule_config(settings: Settings) -> RuleConfig:
    m = settings.monitoring
    try:
        limits = stuck_limits(m.stuck_after_min)
    except ValueError as exc:
        raise ConfigError(f"WCS_MONITORING__STUCK_AFTER_MIN: {exc}") from None
    return RuleConfig(
        stuck_after=limits,
        sla_margin=timedelta(minutes=m.sla_margin_min),
        device_grace=timedelta(seconds=m.device_grace_s),
        weight_mismatch_streak=settings.pack.mismatch_streak_alert,
        pick_accuracy_min=m.pick_accuracy_min,
        pick_accuracy_min_picks=m.pick_accuracy_min_picks,
        carrier_failure_streak=m.carrier_failure_streak,
        per_order_max=m.per_order_max,
    )


# -- snapshot -------------------------------------------------------------------------


async def _orders(conn: AsyncConnection, now: datetime, config: RuleConfig) -> list[OrderSnapshot]:
    stuck = [
        and_(orders.c.state == state, orders.c.updated_at <= now - limit)
        for state, limit in config.stuck_after.items()
    ]
    sla = and_(
        orders.c.state.in_(sorted(BEFORE_SHIPPING)),
        orders.c.sla_deadline <= now + config.sla_margin,
    )
    # Only parcels on their way: the (status, delivery_due) index keeps this small.
    due = (
        select(shipments.c.order_id, func.min(shipments.c.delivery_due).label("due"))
        .where(and_(shipments.c.status.in_(IN_FLIGHT), shipments.c.delivery_due.is_not(None)))
        .group_by(shipments.c.order_id)
        .subquery()
    )
    overdue = and_(orders.c.state.in_(sorted(IN_DELIVERY)), due.c.due < now)
    delayed = orders.c.state == OrderState.DELAYED
    rows = await conn.execute(
        select(orders.c.id, orders.c.state, orders.c.updated_at, orders.c.sla_deadline, due.c.due)
        .outerjoin(due, due.c.order_id == orders.c.id)
        .where(or_(*stuck, sla, overdue, delayed))
        .order_by(orders.c.updated_at)
        .limit(MAX_ORDER_ROWS)
    )
    return [
        OrderSnapshot(
            order_id=r.id,
            state=r.state,
            since=as_utc(r.updated_at),
            sla_deadline=as_utc(r.sla_deadline) if r.sla_deadline else None,
            delivery_due=as_utc(r.due) if r.due else None,
        )
        for r in rows
    ]


async def _devices(conn: AsyncConnection) -> list[DeviceSnapshot]:
    rows = await conn.execute(select(devices).where(devices.c.state != "online"))
    return [
        DeviceSnapshot(r.id, r.kind, r.zone, r.state, r.detail, as_utc(r.updated_at)) for r in rows
    ]


async def _weights(conn: AsyncConnection, now: datetime, keep: int) -> dict[str, list[bool]]:
    station = func.coalesce(activity.c.station, activity.c.device_id, "unknown").label("station")
    rank = (
        func.row_number()
        .over(partition_by=station, order_by=(activity.c.at.desc(), activity.c.id.desc()))
        .label("rank")
    )
    recent = (
        select(station, activity.c.kind, rank)
        .where(
            and_(
                activity.c.kind.in_((WEIGHT_OK, WEIGHT_MISMATCH)),
                activity.c.at >= now - STREAK_LOOKBACK,
            )
        )
        .subquery()
    )
    rows = await conn.execute(
        select(recent.c.station, recent.c.kind)
        .where(recent.c.rank <= keep)
        .order_by(recent.c.station, recent.c.rank)
    )
    result: dict[str, list[bool]] = {}
    for name, kind in rows:
        result.setdefault(name, []).append(kind == WEIGHT_OK)
    return result


async def _picks(conn: AsyncConnection, since: datetime) -> Ratio:
    rows = await conn.execute(
        select(activity.c.kind, activity.c.ok, func.count())
        .where(and_(activity.c.kind.in_((PICK_OK, MISPICK)), activity.c.at >= since))
        .group_by(activity.c.kind, activity.c.ok)
    )
    good = total = 0
    for kind, ok, n in rows:
        total += int(n)
        if kind == PICK_OK and ok:
            good += int(n)
    return Ratio(good, total)


async def _carriers(conn: AsyncConnection, now: datetime) -> dict[str, list[bool]]:
    """Booking outcomes per carrier, newest first, from two sources: shipments (booked,
    or still pending with the carrier's error) and ``carrier_*`` floor activity, where
    ``carrier_failed`` is a failure and any other kind a booking that went through."""
    since = now - STREAK_LOOKBACK
    outcomes: list[tuple[datetime, str, bool]] = []
    booked = await conn.execute(
        select(shipments.c.carrier, shipments.c.booked_at, shipments.c.updated_at)
        .where(
            and_(
                shipments.c.own_fleet.is_(False),
                shipments.c.updated_at >= since,
                or_(shipments.c.booked_at.is_not(None), shipments.c.last_error.is_not(None)),
            )
        )
        .order_by(shipments.c.updated_at.desc())
        .limit(CARRIER_ROWS)
    )
    for carrier, booked_at, updated_at in booked:
        outcomes.append((as_utc(updated_at), carrier, booked_at is not None))
    facts = await conn.execute(
        select(activity.c.at, activity.c.kind, activity.c.station, activity.c.detail)
        .where(and_(activity.c.kind.like("carrier\\_%", escape="\\"), activity.c.at >= since))
        .order_by(activity.c.at.desc(), activity.c.id.desc())
        .limit(CARRIER_ROWS)
    )
    for at, kind, station, detail in facts:
        named = detail.get("carrier") if isinstance(detail, dict) else None
        outcomes.append((as_utc(at), str(named or station or "carrier"), kind != CARRIER_FAILED))
    outcomes.sort(key=lambda o: o[0], reverse=True)
    result: dict[str, list[bool]] = {}
    for _, carrier, ok in outcomes:
        result.setdefault(carrier, []).append(ok)
    return result


async def floor_snapshot(
    engine: AsyncEngine, now: datetime, config: RuleConfig, settings: Settings
) -> FloorSnapshot:
    window = timedelta(minutes=settings.monitoring.pick_accuracy_window_min)
    async with engine.connect() as conn:
        return FloorSnapshot(
            orders=await _orders(conn, now, config),
            devices=await _devices(conn),
            weights=await _weights(conn, now, config.weight_mismatch_streak),
            picks=await _picks(conn, now - window),
            carriers=await _carriers(conn, now),
        )


# -- alerts ---------------------------------------------------------------------------


def _unresolved_query() -> Any:
    return (
        select(alerts.c.id, alerts.c.code, alerts.c.subject)
        .outerjoin(alert_resolutions, alert_resolutions.c.alert_id == alerts.c.id)
        .where(alert_resolutions.c.alert_id.is_(None))
    )


async def unresolved_rule_alerts(conn: AsyncConnection) -> list[OpenAlert]:
    rows = await conn.execute(_unresolved_query().where(alerts.c.code.in_(RULE_CODES)))
    return [OpenAlert(r.id, r.code, r.subject) for r in rows]


async def apply_plan(
    engine: AsyncEngine, topics: Topics, decided: AlertPlan, now: datetime
) -> list[int]:
    """Raise and resolve as planned in one transaction; the ids of the raised alerts."""
    raised: list[int] = []
    if not decided.to_raise and not decided.to_resolve:
        return raised
    async with transaction(engine) as conn:
        for finding in decided.to_raise:
            raised.append(
                await raise_alert(
                    conn,
                    topics,
                    code=finding.code,
                    severity=finding.severity,
                    message_text=finding.message,
                    subject=finding.subject,
                    at=now,
                )
            )
        if decided.to_resolve:
            await conn.execute(
                insert(alert_resolutions),
                [
                    {"alert_id": alert_id, "resolved_at": now, "resolved_by": RESOLVED_BY_RULE}
                    for alert_id in decided.to_resolve
                ],
            )
    return raised


@dataclass(frozen=True, slots=True)
class Evaluation:
    raised: tuple[int, ...]
    resolved: tuple[int, ...]


async def evaluate_once(
    engine: AsyncEngine,
    topics: Topics,
    settings: Settings,
    *,
    now: datetime | None = None,
    config: RuleConfig | None = None,
) -> Evaluation:
    """One round of the engine (the periodic task calls this; so can tests and tools)."""
    now = now or utcnow()
    config = config or rule_config(settings)
    snapshot = await floor_snapshot(engine, now, config, settings)
    async with engine.connect() as conn:
        unresolved = await unresolved_rule_alerts(conn)
    decided = plan(evaluate(snapshot, now, config), unresolved)
    raised = await apply_plan(engine, topics, decided, now)
    return Evaluation(tuple(raised), decided.to_resolve)


class AlertEvaluator:
    """The periodic evaluation: ``async with AlertEvaluator(...)`` runs it as the named
    task ``alert-evaluator`` while this process holds the lease of that name; leaving
    the block cancels it and gives the lease up."""

    LEASE = "alert-evaluator"

    def __init__(
        self,
        engine: AsyncEngine,
        topics: Topics,
        settings: Settings,
        *,
        on_raised: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._topics = topics
        self._settings = settings
        self._config = rule_config(settings)  # a bad setting fails at start, not later
        self._interval = settings.monitoring.alert_interval_s
        self._on_raised = on_raised
        self._lease = Lease(
            engine,
            self.LEASE,
            ttl=timedelta(seconds=max(3 * self._interval, 30.0)),
            holder=new_id("alerts-"),
        )
        self._outage = Outage("alert evaluation", log, expected=OUTAGE_ERRORS)
        self._stack = contextlib.AsyncExitStack()
        self.rounds = 0

    @property
    def failures(self) -> int:
        return self._outage.total

    async def __aenter__(self) -> AlertEvaluator:
        await self._stack.enter_async_context(
            background("alert-evaluator", self._lease.run(self._every_interval))
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _every_interval(self) -> None:
        await every(self._interval, self._round, self._outage)

    async def _round(self) -> None:
        result = await evaluate_once(
            self._engine, self._topics, self._settings, config=self._config
        )
        self.rounds += 1
        if result.raised:
            self._on_raised()


def _alert_dict(row: Any) -> dict[str, Any]:
    spec = ALERT_CATALOGUE.get(row.code)
    return {
        "id": row.id,
        "code": row.code,
        "severity": row.severity,
        "title": spec.title if spec else row.code,
        "message": row.message,
        "subject": row.subject,
        "runbook": spec.runbook if spec else None,
        "created_at": as_utc(row.created_at),
        "acked_by": row.acked_by,
        "acked_at": as_utc(row.acked_at) if row.acked_at else None,
        "assigned_to": row.assigned_to,
        "assigned_at": as_utc(row.assigned_at) if row.assigned_at else None,
        "resolved_by": row.resolved_by,
        "resolved_at": as_utc(row.resolved_at) if row.resolved_at else None,
        "open": row.acked_at is None and row.resolved_at is None,
    }


def _alerts_query() -> Any:
    return select(
        alerts.c.id,
        alerts.c.code,
        alerts.c.severity,
        alerts.c.message,
        alerts.c.subject,
        alerts.c.created_at,
        alerts.c.acked_by,
        alerts.c.acked_at,
        alerts.c.assigned_to,
        alerts.c.assigned_at,
        alert_resolutions.c.resolved_at,
        alert_resolutions.c.resolved_by,
    ).outerjoin(alert_resolutions, alert_resolutions.c.alert_id == alerts.c.id)


def _open() -> Any:
    return and_(alerts.c.acked_at.is_(None), alert_resolutions.c.alert_id.is_(None))


async def list_alerts(
    engine: AsyncEngine,
    *,
    open_only: bool = False,
    limit: int = 100,
    ids: list[int] | None = None,
    subject: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first."""
    query = _alerts_query()
    if open_only:
        query = query.where(_open())
    if ids is not None:
        query = query.where(alerts.c.id.in_(ids))
    if subject is not None:
        query = query.where(alerts.c.subject == subject)
    query = query.order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(limit)
    async with engine.connect() as conn:
        return [_alert_dict(r) for r in await conn.execute(query)]


async def open_alert_counts(conn: AsyncConnection) -> dict[str, int]:
    """Open alerts per severity (every severity present, zeros included)."""
    rows = await conn.execute(
        select(alerts.c.severity, func.count())
        .outerjoin(alert_resolutions, alert_resolutions.c.alert_id == alerts.c.id)
        .where(_open())
        .group_by(alerts.c.severity)
    )
    counts = {"info": 0, "warning": 0, "critical": 0}
    for severity, n in rows:
        counts[severity] = int(n)
    return counts


async def ack_alert(engine: AsyncEngine, alert_id: int, actor: str) -> dict[str, Any]:
    """Acknowledge; acknowledging again keeps the first acknowledgement (idempotent)."""
    async with transaction(engine) as conn:
        result = await conn.execute(
            update(alerts)
            .where(and_(alerts.c.id == alert_id, alerts.c.acked_at.is_(None)))
            .values(acked_by=actor, acked_at=utcnow())
        )
        row = (await conn.execute(_alerts_query().where(alerts.c.id == alert_id))).first()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist", alert_id=alert_id)
    if result.rowcount == 0:
        log.info("alert %s was already acknowledged by %s", alert_id, row.acked_by)
    return _alert_dict(row)


async def _one(conn: AsyncConnection, alert_id: int) -> Any:
    row = (await conn.execute(_alerts_query().where(alerts.c.id == alert_id))).first()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist", alert_id=alert_id)
    return row


async def assign_alert(
    engine: AsyncEngine, alert_id: int, assignee: str, actor: str
) -> dict[str, Any]:
    """Name who deals with it. Assigning also acknowledges (someone is on it); a later
    assignment replaces the earlier one. A resolved alert cannot be assigned."""
    assignee = assignee.strip()
    if not assignee or len(assignee) > 64:
        raise ValidationFailed("name the person to assign (1-64 characters)")
    now = utcnow()
    async with transaction(engine) as conn:
        row = await _one(conn, alert_id)
        if row.resolved_at is not None:
            raise Conflict(f"alert {alert_id} is already resolved", alert_id=alert_id)
        values: dict[str, Any] = {"assigned_to": assignee, "assigned_by": actor, "assigned_at": now}
        if row.acked_at is None:
            values |= {"acked_by": actor, "acked_at": now}
        await conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))
        return _alert_dict(await _one(conn, alert_id))


async def resolve_alert(engine: AsyncEngine, alert_id: int, actor: str) -> dict[str, Any]:
    """A person closes the alert. A rule alert whose condition still holds is raised
    anew at the next evaluation; resolving twice keeps the first resolution."""
    now = utcnow()
    async with transaction(engine) as conn:
        row = await _one(conn, alert_id)
        if row.resolved_at is None:
            await conn.execute(
                insert(alert_resolutions).values(
                    alert_id=alert_id, resolved_at=now, resolved_by=actor
                )
            )
            if row.acked_at is None:
                await conn.execute(
                    update(alerts)
                    .where(alerts.c.id == alert_id)
                    .values(acked_by=actor, acked_at=now)
                )
        return _alert_dict(await _one(conn, alert_id))
