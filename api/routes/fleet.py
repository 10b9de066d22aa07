"""Own-fleet dispatch: couriers, day plans, routes, locks, drop-outs (design §1 step 6).

All endpoints: roles dispatcher, supervisor. Planning and the rules it follows are
described in ``wcs.services.fleet_plans`` (which parcels, which couriers, locks,
re-plans) and ``wcs.services.fleet`` (the solver). Dates are the site's local days
(``WCS_MONITORING__TIMEZONE``); without ``date`` it is today.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from api.deps import EngineDep, require
from api.params import CourierId, IsoDate, NameText, Number, RouteId, ShipmentId
from api.problems import problem
from wcs.errors import ValidationFailed
from wcs.services.auth import Principal
from wcs.services.fleet import PlanningFailed
from wcs.services.fleet_couriers import (
    CourierSpec,
    delete_courier,
    get_courier,
    list_couriers,
    parse_hhmm,
    put_courier,
)
from wcs.services.fleet_plans import (
    PlanningConfig,
    courier_unavailable,
    day_view,
    get_route,
    plan_day,
    set_lock,
    set_parcel,
)

router = APIRouter(prefix="/api/v1/fleet", tags=["own fleet"])

Dispatcher = Annotated[Principal, Depends(require("dispatcher", "supervisor"))]


async def get_planning(request: Request) -> PlanningConfig:
    return PlanningConfig.from_settings(request.app.state.settings)


PlanningDep = Annotated[PlanningConfig, Depends(get_planning)]

# Plans are for the days around now; far dates are typos (and out of the clock's range).
PLAN_HORIZON = dt.timedelta(days=366)


def _day(planning: PlanningConfig, day: dt.date | None) -> dt.date:
    today = planning.today()
    if day is None:
        return today
    if abs(day - today) > PLAN_HORIZON:
        raise ValidationFailed(
            f"{day.isoformat()} is more than a year from today ({today.isoformat()}); "
            "plan days within a year"
        )
    return day


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatLon(_In):
    lat: Number = Field(ge=-90, le=90)
    lon: Number = Field(ge=-180, le=180)


class CourierIn(_In):
    name: NameText = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    capacity_kg: Number = Field(gt=0, le=50_000, description="payload of the vehicle")
    capacity_m3: Number = Field(gt=0, le=200, description="load space of the vehicle")
    shift_start: str = Field(pattern=r"^\d{1,2}:\d{2}$", examples=["08:00"])
    shift_end: str = Field(
        pattern=r"^\d{1,2}:\d{2}$", examples=["17:00"], description="up to 48:00 past midnight"
    )
    depot: LatLon = Field(description="where the shift starts")
    end: LatLon | None = Field(default=None, description="where it ends; default the depot")
    active: bool = Field(default=True, strict=True)


class CourierOut(BaseModel):
    id: str
    name: str
    phone: str | None
    capacity_kg: float
    capacity_m3: float
    shift_start: str
    shift_end: str
    depot: LatLon
    end: LatLon | None
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class PlanIn(_In):
    date: dt.date | None = Field(default=None, description="the day to plan; default today")


class UnavailableIn(_In):
    date: dt.date | None = Field(default=None, description="default today")
    reason: str = Field(min_length=1, max_length=500)


class ParcelIn(_In):
    window_start: AwareDatetime | None = Field(
        default=None, description="earliest delivery promised to the customer"
    )
    window_end: AwareDatetime | None = Field(default=None, description="latest delivery")
    note: str | None = Field(default=None, max_length=500, description="shown to the courier")

    @field_validator("window_start", "window_end")
    @classmethod
    def _plausible(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and not 2000 <= value.year <= 2100:
            raise ValueError("a delivery window is a time in this century")
        return value


class ParcelOut(BaseModel):
    shipment_id: str
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    note: str | None


class Address(BaseModel):
    name: str
    phone: str | None
    line1: str
    line2: str | None
    postal_code: str
    city: str
    country: str


class StopOut(BaseModel):
    id: int
    seq: int
    shipment_id: str
    order_id: str
    tracking_no: str | None
    eta: dt.datetime = Field(description="when service starts at the door")
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    lat: float
    lon: float
    geo_source: str = Field(description="order (its own lat/lon), postal_code or postal_area")
    weight_kg: float
    volume_l: float
    outcome: str | None = Field(description="delivered, failed or none yet")
    outcome_at: dt.datetime | None
    outcome_note: str | None
    shipment_status: str
    order_state: str
    note: str | None
    deliver_to: Address


class RouteOut(BaseModel):
    id: str
    plan_id: str
    date: dt.date
    courier_id: str
    courier_name: str
    status: str = Field(description="active, or replaced by a later plan")
    locked: bool
    locked_by: str | None
    locked_at: dt.datetime | None
    started_at: dt.datetime | None
    depart_at: dt.datetime
    return_at: dt.datetime
    distance_km: float
    load_kg: float
    load_m3: float
    stops: list[StopOut]


class Unassigned(BaseModel):
    shipment_id: str
    order_id: str
    reason: str


class PlanOut(BaseModel):
    id: str
    version: int
    trigger: str = Field(description="plan, new_parcels or courier_unavailable")
    note: str | None
    solver: str
    solve_ms: int
    parts: int
    stops: int
    distance_km: float
    unassigned: list[Unassigned]
    created_by: str
    created_at: dt.datetime


class Absent(BaseModel):
    courier_id: str
    reason: str


class DayOut(BaseModel):
    date: dt.date
    plan: PlanOut | None
    routes: list[RouteOut]
    absent: list[Absent]


class UnavailableOut(DayOut):
    courier_id: str
    replanned: bool


def _planning_problem(exc: PlanningFailed) -> JSONResponse:
    return problem(
        503,
        exc.message,
        code="planning-failed",
        title="Route planning failed",
        headers={"Retry-After": "10"},
    )


# -- couriers ----------------------------------------------------------------------------


@router.get(
    "/couriers", response_model=list[CourierOut], description="Roles: dispatcher, supervisor."
)
async def read_couriers(
    engine: EngineDep,
    _: Dispatcher,
    active: Annotated[bool | None, Query(description="only active (or inactive) ones")] = None,
) -> list[dict[str, Any]]:
    return await list_couriers(engine, active=active)


@router.get(
    "/couriers/{courier_id}",
    response_model=CourierOut,
    description="Roles: dispatcher, supervisor.",
)
async def read_courier(courier_id: CourierId, engine: EngineDep, _: Dispatcher) -> dict[str, Any]:
    return await get_courier(engine, courier_id)


@router.put(
    "/couriers/{courier_id}",
    response_model=CourierOut,
    description=(
        "Roles: dispatcher, supervisor. Create (201) or replace (200) a courier of the own "
        "fleet: vehicle capacity, shift, start and end depot. The id is the subject of the "
        "courier's token (`wcs users create --roles courier --subject <id>`)."
    ),
    responses={201: {"description": "created"}},
)
async def write_courier(
    courier_id: CourierId, body: CourierIn, engine: EngineDep, _: Dispatcher
) -> Response:
    spec = CourierSpec(
        name=body.name,
        phone=body.phone,
        capacity_kg=body.capacity_kg,
        capacity_m3=body.capacity_m3,
        shift_start_min=parse_hhmm(body.shift_start),
        shift_end_min=parse_hhmm(body.shift_end),
        depot_lat=body.depot.lat,
        depot_lon=body.depot.lon,
        end_lat=body.end.lat if body.end else None,
        end_lon=body.end.lon if body.end else None,
        active=body.active,
    )
    created, view = await put_courier(engine, courier_id, spec)
    return JSONResponse(
        CourierOut.model_validate(view).model_dump(mode="json"), status_code=201 if created else 200
    )


@router.delete(
    "/couriers/{courier_id}",
    status_code=204,
    description=(
        "Roles: dispatcher, supervisor. Delete a courier entered by mistake: one no route, "
        "absence, shipment or proof of delivery names. A courier with a history is kept "
        "(409): retire them with PUT and `active: false` (no longer planned; `active: "
        "true` brings them back)."
    ),
    responses={409: {"description": "the courier has a history; retire them instead"}},
)
async def remove_courier(courier_id: CourierId, engine: EngineDep, _: Dispatcher) -> Response:
    await delete_courier(engine, courier_id)
    return Response(status_code=204)


@router.post(
    "/couriers/{courier_id}/unavailable",
    response_model=UnavailableOut,
    description=(
        "Roles: dispatcher, supervisor. The courier drops out for a day (sick, van broken): "
        "the absence is recorded, their route of that day is dropped even when locked, and "
        "a planned day is re-planned with the others; locked routes stay as they are."
    ),
    responses={503: {"description": "the solver failed; the absence is recorded, plan again"}},
)
async def post_unavailable(
    courier_id: CourierId,
    body: UnavailableIn,
    engine: EngineDep,
    planning: PlanningDep,
    principal: Dispatcher,
) -> Response:
    day = _day(planning, body.date)
    try:
        view = await courier_unavailable(
            engine, planning, courier_id, day, body.reason, actor=principal.name
        )
    except PlanningFailed as exc:
        return _planning_problem(exc)
    return JSONResponse(UnavailableOut.model_validate(view).model_dump(mode="json"))


# -- plans and routes --------------------------------------------------------------------


@router.post(
    "/plan",
    response_model=DayOut,
    status_code=201,
    description=(
        "Roles: dispatcher, supervisor. Plan (or re-plan) a day: every own-fleet parcel "
        "due, every available courier, routes with delivery windows, vehicle capacity and "
        "shifts respected (checked before anything is stored). Locked routes are kept. "
        "Parcels that fit nowhere are listed under `plan.unassigned` with the reason."
    ),
    responses={
        409: {"description": "the day changed twice while it was being planned; plan again"},
        503: {"description": "the route solver failed"},
    },
)
async def post_plan(
    engine: EngineDep,
    planning: PlanningDep,
    principal: Dispatcher,
    body: PlanIn | None = None,
) -> Response:
    day = _day(planning, body.date if body else None)
    try:
        view = await plan_day(engine, planning, day, actor=principal.name)
    except PlanningFailed as exc:
        return _planning_problem(exc)
    return JSONResponse(DayOut.model_validate(view).model_dump(mode="json"), status_code=201)


@router.get(
    "/routes",
    response_model=DayOut,
    description=(
        "Roles: dispatcher, supervisor. The day's current plan and active routes, stops in "
        "driving order with times, addresses and outcomes."
    ),
)
async def read_routes(
    engine: EngineDep,
    planning: PlanningDep,
    _: Dispatcher,
    date: Annotated[IsoDate | None, Query(description="default today")] = None,
) -> dict[str, Any]:
    return await day_view(engine, date or planning.today())


@router.get(
    "/routes/{route_id}", response_model=RouteOut, description="Roles: dispatcher, supervisor."
)
async def read_route(route_id: RouteId, engine: EngineDep, _: Dispatcher) -> dict[str, Any]:
    return await get_route(engine, route_id)


@router.post(
    "/routes/{route_id}/lock",
    response_model=RouteOut,
    description=(
        "Roles: dispatcher, supervisor. Keep this route as it is through re-plans (its "
        "courier and parcels are left out of them). A courier starting the route locks it."
    ),
    responses={409: {"description": "the route was replaced by a later plan"}},
)
async def lock_route(route_id: RouteId, engine: EngineDep, principal: Dispatcher) -> dict[str, Any]:
    return await set_lock(engine, route_id, actor=principal.name, locked=True)


@router.post(
    "/routes/{route_id}/unlock",
    response_model=RouteOut,
    description="Roles: dispatcher, supervisor. Let re-plans change this route again.",
    responses={409: {"description": "the route was replaced by a later plan"}},
)
async def unlock_route(
    route_id: RouteId, engine: EngineDep, principal: Dispatcher
) -> dict[str, Any]:
    return await set_lock(engine, route_id, actor=principal.name, locked=False)


@router.put(
    "/parcels/{shipment_id}",
    response_model=ParcelOut,
    description=(
        "Roles: dispatcher, supervisor. The delivery window promised to the customer and a "
        "note for the courier, for an own-fleet shipment; used from the next plan on."
    ),
)
async def put_parcel(
    shipment_id: ShipmentId, body: ParcelIn, engine: EngineDep, principal: Dispatcher
) -> dict[str, Any]:
    return await set_parcel(
        engine,
        shipment_id,
        window_start=body.window_start,
        window_end=body.window_end,
        note=body.note,
        actor=principal.name,
    )
