"""KPIs, alerts, devices and the peak forecast (design §1 step 9, §6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import STAFF, EngineDep, SettingsDep, require
from api.params import AlertId, IsoDateTime
from wcs.domain.alert_rules import ALERT_CATALOGUE, ORDER_CODES
from wcs.errors import Forbidden
from wcs.services.alerting import ack_alert, assign_alert, list_alerts, resolve_alert
from wcs.services.auth import Principal
from wcs.services.devices import list_devices
from wcs.services.forecasting import forecast_plan
from wcs.services.kpis import kpi_report, report_as_dict
from wcs.timeutil import utcnow

router = APIRouter(prefix="/api/v1", tags=["monitoring"])

Staff = Annotated[Principal, Depends(require(*sorted(STAFF)))]
Supervisor = Annotated[Principal, Depends(require("supervisor"))]
# Customer service handles the alerts about orders; supervisors every alert.
AlertHandler = Annotated[Principal, Depends(require("supervisor", "customer_service"))]


async def _may_handle(engine: Any, principal: Principal, alert_id: int) -> None:
    if principal.has_any({"supervisor"}):
        return
    code = next((a["code"] for a in await list_alerts(engine, ids=[alert_id])), None)
    if code is not None and code not in ORDER_CODES:
        raise Forbidden(
            f"alert {alert_id} ({code}) is not about an order: a supervisor handles it; "
            f"customer service handles {', '.join(sorted(ORDER_CODES))}"
        )


class RatioOut(BaseModel):
    good: int
    total: int
    rate: float | None = Field(description="good / total; null when nothing was measured")


class DurationOut(BaseModel):
    count: int
    p50_s: float | None
    p95_s: float | None
    mean_s: float | None
    max_s: float | None


class SatisfactionOut(BaseModel):
    count: int
    average: float | None
    distribution: dict[str, int]


class AdjustmentValueOut(BaseModel):
    currency: str = Field(description="ISO 4217 of the SKUs' price; XXX: a price without one")
    net_minor: int = Field(description="value of the units found less those lost, minor units")
    gross_minor: int = Field(description="value of every unit found or lost, minor units")


class AdjustmentsOut(BaseModel):
    count: int = Field(description="count differences booked in the window")
    units_net: int = Field(description="units found less units lost")
    units_gross: int = Field(description="units found plus units lost")
    value: list[AdjustmentValueOut] = Field(
        description="per currency; SKUs without a price count in units only"
    )


class ThroughputOut(BaseModel):
    hour: datetime
    received: int
    packed: int


class KpisOut(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    processing_time: DurationOut = Field(description="first event -> packed, per order")
    pick_accuracy: RatioOut = Field(description="correct picks / (picks + mispicks)")
    pack_pass_rate: RatioOut = Field(description="weight_ok / (weight_ok + weight_mismatch)")
    qc_pass_rate: RatioOut
    on_time_shipping: RatioOut = Field(description="shipped by the order's ship-by deadline")
    on_time_delivery: RatioOut = Field(description="delivered by the carrier's promised time")
    customer_satisfaction: SatisfactionOut | None = Field(
        description="sign-off ratings (1-5) given in the window"
    )
    returns_rate: RatioOut | None = Field(
        description="orders delivered in the window with a return requested so far"
    )
    inventory_accuracy: RatioOut = Field(
        description="cycle counts closed in the window whose book matched / counts closed"
    )
    stock_adjustments: AdjustmentsOut = Field(
        description="count differences booked in the window, in units and value"
    )
    orders_by_state: dict[str, int] = Field(description="now, not limited to the window")
    throughput: list[ThroughputOut] = Field(description="orders received and packed per hour")

    model_config = {"populate_by_name": True}


class AlertOut(BaseModel):
    id: int
    code: str
    severity: str
    title: str
    message: str
    subject: str | None
    runbook: str | None
    created_at: datetime
    acked_by: str | None
    acked_at: datetime | None
    assigned_to: str | None = None
    assigned_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None
    open: bool


class AlertSpecOut(BaseModel):
    code: str
    severity: str
    title: str
    subject: str
    meaning: str
    runbook: str
    auto_resolve: bool


class DeviceOut(BaseModel):
    id: str
    kind: str
    zone: str
    station: str | None
    state: str
    detail: str | None
    updated_at: datetime = Field(description="when state or detail last changed")


class ForecastPointOut(BaseModel):
    hour: datetime
    expected: float
    low: float
    high: float
    pickers: int
    waves: int
    orders_per_wave: int


class PeakOut(BaseModel):
    hour: datetime
    expected: float
    high: float


class ForecastOut(BaseModel):
    generated_at: datetime
    timezone: str
    history_hours: int
    level: float = Field(description="coverage of [low, high]")
    plan_for: str
    lines_per_order: float
    picks_per_picker_hour: float
    wave_size: int
    total_expected: float
    peak: PeakOut
    peak_pickers: int
    picker_hours: int
    points: list[ForecastPointOut]


@router.get("/kpis", response_model=KpisOut, response_model_by_alias=True)
async def read_kpis(
    engine: EngineDep,
    _: Staff,
    start: Annotated[
        IsoDateTime | None, Query(alias="from", description="RFC 3339; default 24 h before 'to'")
    ] = None,
    end: Annotated[
        IsoDateTime | None, Query(alias="to", description="RFC 3339; default now")
    ] = None,
) -> dict[str, Any]:
    """KPIs over [from, to) from the event log and floor activity."""
    end = end or utcnow()
    start = start or end - timedelta(hours=24)
    return report_as_dict(await kpi_report(engine, start, end))


@router.get("/alerts", response_model=list[AlertOut])
async def read_alerts(
    engine: EngineDep,
    _: Staff,
    open_: Annotated[
        bool, Query(alias="open", description="only alerts neither acknowledged nor resolved")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Alerts, newest first."""
    return await list_alerts(engine, open_only=open_, limit=limit)


@router.get("/alerts/catalogue", response_model=list[AlertSpecOut])
async def read_alert_catalogue(_: Staff) -> list[dict[str, Any]]:
    """Every alert code: severity, meaning and what to do (the operator runbook)."""
    return [
        {
            "code": s.code,
            "severity": s.severity,
            "title": s.title,
            "subject": s.subject,
            "meaning": s.meaning,
            "runbook": s.runbook,
            "auto_resolve": s.auto_resolve,
        }
        for s in ALERT_CATALOGUE.values()
    ]


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut)
async def acknowledge_alert(
    alert_id: AlertId, engine: EngineDep, principal: AlertHandler
) -> dict[str, Any]:
    """Someone is on it: the alert leaves the open list and is not raised again while
    its condition lasts. Acknowledging twice keeps the first acknowledgement. Roles:
    supervisor; customer_service for alerts about an order."""
    await _may_handle(engine, principal, alert_id)
    return await ack_alert(engine, alert_id, principal.name)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str = Field(min_length=1, max_length=64, description="who deals with it")


@router.post("/alerts/{alert_id}/assign", response_model=AlertOut)
async def assign(
    alert_id: AlertId, body: AssignIn, engine: EngineDep, principal: Supervisor
) -> dict[str, Any]:
    """Name who deals with the alert (it counts as acknowledged). Roles: supervisor."""
    return await assign_alert(engine, alert_id, body.assignee, principal.name)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
async def resolve(alert_id: AlertId, engine: EngineDep, principal: AlertHandler) -> dict[str, Any]:
    """Close the alert. A rule alert whose condition still holds is raised again at the
    next evaluation. Roles: supervisor; customer_service for alerts about an order."""
    await _may_handle(engine, principal, alert_id)
    return await resolve_alert(engine, alert_id, principal.name)


@router.get("/devices", response_model=list[DeviceOut])
async def read_devices(engine: EngineDep, _: Staff) -> list[dict[str, Any]]:
    """Floor devices and what they last reported (from their MQTT status)."""
    return [d.as_dict() for d in await list_devices(engine)]


@router.get(
    "/forecast",
    response_model=ForecastOut,
    responses={409: {"description": "not enough order history yet (needs a day)"}},
)
async def read_forecast(
    engine: EngineDep,
    settings: SettingsDep,
    _: Supervisor,
    hours: Annotated[int, Query(ge=1, le=168)] = 48,
    level: Annotated[float, Query(gt=0.5, lt=1)] = 0.8,
    plan_for: Annotated[
        Literal["expected", "high"],
        Query(description="staff for the expected volume or the interval's upper end"),
    ] = "expected",
) -> dict[str, Any]:
    """Hourly order forecast with intervals, and pickers and waves per hour."""
    return await forecast_plan(engine, settings.monitoring, hours, level=level, plan_for=plan_for)
