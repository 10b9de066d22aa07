"""Pick faces, cycle counts, replenishment moves and stock adjustments.

Counts are floor state: creating, keying and accepting one are requests the
controller owning the location's station applies (202 and ``GET
/floor/requests/{id}`` when it takes longer than the API waits). Counts are blind:
whoever counts is never shown the book; supervisors see the differences found.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.asking import pending, raise_refusal
from api.deps import STAFF, EngineDep, PrincipalDep, SettingsDep, require
from api.params import MAX_ROW_ID, IsoDateTime, Word
from wcs.errors import Forbidden
from wcs.services import floor_requests
from wcs.services.auth import Principal
from wcs.services.stock_counts import (
    FaceData,
    adjustments_view,
    count_station,
    counts_view,
    faces,
    moves_view,
    put_face,
    station_of,
)

router = APIRouter(prefix="/api/v1", tags=["inventory"])

Supervisor = Annotated[Principal, Depends(require("supervisor"))]
Counter = Annotated[Principal, Depends(require("supervisor", "device", "stock_controller"))]
Code = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$")]
CountId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the count's number")]
FLOOR_READERS = STAFF | {"device", "stock_controller"}


class FaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=64)
    min_qty: int = Field(ge=0, le=100_000)
    max_qty: int = Field(ge=1, le=100_000)


class CountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: str = Field(min_length=1, max_length=32)
    sku: str = Field(min_length=1, max_length=64)


class CountResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qty: int = Field(ge=0, le=1_000_000, description="the units found at the location")


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qty: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="units the supervisor counted now; omitted: the difference last found",
    )


def _reader(principal: Principal) -> None:
    if not principal.has_any(FLOOR_READERS):
        raise Forbidden(f"'{principal.name}' may not read counts and moves")


@router.put("/faces/{location}", responses={201: {"description": "face created"}})
async def put_pick_face(
    location: Code, body: FaceIn, engine: EngineDep, _: Supervisor, response: Response
) -> dict[str, Any]:
    """Make a pick location a face of one SKU, replenished from reserve when it falls
    below ``min_qty``, up to ``max_qty``. Roles: supervisor."""
    created = await put_face(engine, FaceData(location, body.sku, body.min_qty, body.max_qty))
    response.status_code = 201 if created else 200
    return {"location": location, **body.model_dump()}


@router.get("/faces")
async def get_faces(engine: EngineDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """Every pick face with its SKU, minimum, maximum and book. Roles: staff, device,
    stock_controller."""
    _reader(principal)
    return await faces(engine)


@router.get("/counts")
async def get_counts(
    engine: EngineDep,
    principal: PrincipalDep,
    station: Annotated[str | None, Query(max_length=80)] = None,
    location: Annotated[str | None, Query(max_length=32)] = None,
    state: Annotated[list[Word] | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[dict[str, Any]]:
    """Counts, newest first: location, SKU, why, state. Never the book; supervisors
    also see the differences found. Roles: staff, device, stock_controller."""
    _reader(principal)
    return await counts_view(
        engine,
        station=station,
        states=state,
        location=location,
        limit=limit,
        differences=principal.has_any({"supervisor"}),
    )


async def _ask(
    engine: Any, settings: Any, kind: str, station: str, actor: str, body: dict[str, Any]
) -> Any:
    request_id = await floor_requests.ask(engine, kind, actor=actor, station=station, body=body)
    answer = await floor_requests.wait(engine, request_id, settings.controller.answer_wait_s)
    if answer.state == "pending":
        return pending(answer)
    if answer.state == "refused":
        raise_refusal(answer)
    return answer.result


@router.post(
    "/counts",
    status_code=201,
    responses={202: {"description": "Asked; the station's controller has not applied it yet"}},
)
async def post_count(
    body: CountIn, engine: EngineDep, settings: SettingsDep, principal: Supervisor, request: Request
) -> Any:
    """Ask for a count of one SKU at one location (a pile already being counted answers
    with that count). Applied by the controller owning the location's station.
    Roles: supervisor."""
    station = station_of(request.app.state.floor, body.location)
    return await _ask(engine, settings, "count_create", station, principal.name, body.model_dump())


@router.post(
    "/counts/{count_id}/result",
    responses={202: {"description": "Asked; the station's controller has not applied it yet"}},
)
async def post_count_result(
    count_id: CountId,
    body: CountResultIn,
    engine: EngineDep,
    settings: SettingsDep,
    principal: Counter,
) -> Any:
    """Key what a count found. The answer says whether the count closed, needs a
    recount by someone else (a recount by the first counter is refused with 409) or
    waits for a supervisor; never the book. Roles: supervisor, device,
    stock_controller."""
    station = await count_station(engine, count_id)
    return await _ask(
        engine,
        settings,
        "count_key",
        station,
        principal.name,
        {"count_id": count_id, "qty": body.qty},
    )


@router.post(
    "/counts/{count_id}/accept",
    responses={202: {"description": "Asked; the station's controller has not applied it yet"}},
)
async def post_count_accept(
    count_id: CountId,
    engine: EngineDep,
    settings: SettingsDep,
    principal: Supervisor,
    body: AcceptIn | None = None,
) -> Any:
    """Book a count's difference: the one last found, or ``qty`` counted now. The
    stock never falls below what is reserved: the orders holding the missing units
    are planned again (elsewhere, or backordered). Roles: supervisor."""
    station = await count_station(engine, count_id)
    return await _ask(
        engine,
        settings,
        "count_accept",
        station,
        principal.name,
        {"count_id": count_id, "qty": body.qty if body else None},
    )


@router.get("/moves")
async def get_moves(
    engine: EngineDep,
    principal: PrincipalDep,
    station: Annotated[str | None, Query(max_length=80)] = None,
    state: Annotated[list[Word] | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[dict[str, Any]]:
    """Replenishment moves, newest first: SKU, from reserve, to face, units asked and
    moved, state. Roles: staff, device, stock_controller."""
    _reader(principal)
    return await moves_view(engine, station=station, states=state, limit=limit)


@router.get("/adjustments")
async def get_adjustments(
    engine: EngineDep,
    _: Supervisor,
    since: Annotated[IsoDateTime | None, Query(description="booked at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[dict[str, Any]]:
    """Booked count differences, newest first: pile, book, counted, difference, value,
    reason, who counted and who accepted, when, and the orders planned again.
    Roles: supervisor."""
    return await adjustments_view(engine, since=since, limit=limit)
