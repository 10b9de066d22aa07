"""Floor views and actions for supervisors and QC operators (design §6).

Actions change floor state, which only its owner writes: they are requests the
controller instance holding the station (or the floor) applies; each answers with
the result once applied, or 202 and ``GET /floor/requests/{id}`` to follow it.

- ``POST /waves``: release a wave now (automatic release also runs in the controller).
- ``GET /tasks``: pick tasks, filterable by station, order and state (what a picker's
  handheld shows).
- ``POST /qc/{order_id}/result`` and ``POST /qc/{order_id}/resolve``: the QC operator's
  packaging/appearance verdict and what to do with a failed order.
- ``POST /parcels/{sscc}/reprint``: a damaged label printed again.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, select

from api.asking import pending, raise_refusal, view
from api.deps import STAFF, EngineDep, PrincipalDep, SettingsDep, TopicsDep, require
from api.params import FloorRequestId, OrderId, Word
from wcs.domain.states import OrderState
from wcs.errors import Conflict, Forbidden, IllegalTransition, NotFound
from wcs.persistence.db import reading
from wcs.persistence.tables import orders, pick_batches, pick_tasks, totes
from wcs.services import floor_requests
from wcs.services.auth import Principal
from wcs.services.labels import reprint_label

router = APIRouter(prefix="/api/v1", tags=["floor"])

Supervisor = Annotated[Principal, Depends(require("supervisor"))]
QcOperator = Annotated[Principal, Depends(require("supervisor", "device", "qc_operator"))]
PackOperator = Annotated[Principal, Depends(require("supervisor", "pack_operator"))]


class WaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_orders: int = Field(default=200, ge=1, le=5000)


class QcResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    packaging_ok: bool
    appearance_ok: bool
    note: str | None = Field(default=None, max_length=500)


class QcResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["repick", "write_off"]


@router.post(
    "/waves",
    status_code=201,
    responses={202: {"description": "Asked; the floor's controller has not applied it yet"}},
)
async def post_wave(
    engine: EngineDep,
    settings: SettingsDep,
    principal: Supervisor,
    body: WaveIn | None = None,
) -> Any:
    """Release reserved orders now: batches with their orders, stops in walking order
    and walking distance (metres), plus the order-by-order S-shape distance of the
    same orders for comparison. Applied by the controller that owns the floor.
    Roles: supervisor."""
    request_id = await floor_requests.ask(
        engine,
        "wave",
        actor=principal.name,
        station=floor_requests.FLOOR,
        body={"max_orders": body.max_orders if body else 200},
    )
    return await _answered(engine, settings, request_id)


async def _answered(engine: Any, settings: Any, request_id: str) -> Any:
    answer = await floor_requests.wait(engine, request_id, settings.controller.answer_wait_s)
    if answer.state == "pending":
        return pending(answer)
    if answer.state == "refused":
        raise_refusal(answer)
    return answer.result


@router.get("/floor/requests/{request_id}")
async def get_floor_request(
    request_id: FloorRequestId, engine: EngineDep, principal: PrincipalDep
) -> dict[str, Any]:
    """A request to the floor's owner: pending, done (with its result) or refused (with
    the reason). Roles: staff."""
    if not principal.has_any(STAFF):
        raise Forbidden("floor requests are for staff")
    answer = await floor_requests.answer(engine, request_id)
    if answer is None:
        raise NotFound(f"no floor request {request_id}")
    return view(answer)


@router.get("/tasks")
async def get_tasks(
    engine: EngineDep,
    principal: PrincipalDep,
    station: Annotated[str | None, Query(max_length=64)] = None,
    order_id: Annotated[str | None, Query(max_length=40)] = None,
    state: Annotated[list[Word] | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[dict[str, Any]]:
    """Pick tasks with their batch, station, slot and tote. Roles: staff, device."""
    if not principal.has_any(STAFF | {"device"}):
        raise Forbidden(f"'{principal.name}' may not read pick tasks")
    query = (
        select(
            pick_tasks,
            pick_batches.c.station,
            pick_batches.c.state.label("batch_state"),
            totes.c.code.label("tote"),
        )
        .join(pick_batches, pick_batches.c.id == pick_tasks.c.batch_id)
        .outerjoin(totes, and_(totes.c.order_id == pick_tasks.c.order_id, totes.c.state != "free"))
        .order_by(pick_tasks.c.batch_id, pick_tasks.c.seq, pick_tasks.c.id)
        .limit(limit)
    )
    if station:
        query = query.where(pick_batches.c.station == station)
    if order_id:
        query = query.where(pick_tasks.c.order_id == order_id)
    if state:
        query = query.where(pick_tasks.c.state.in_(state))
    async with reading(engine).connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        {
            "id": r["id"],
            "batch_id": r["batch_id"],
            "batch_state": r["batch_state"],
            "station": r["station"],
            "seq": r["seq"],
            "order_id": r["order_id"],
            "sku": r["sku"],
            "location": r["location"],
            "qty": r["qty"],
            "qty_picked": r["qty_picked"],
            "state": r["state"],
            "ptl_device": r["ptl_device"],
            "ptl_slot": r["ptl_slot"],
            "tote": r["tote"],
        }
        for r in rows
    ]


@router.post(
    "/qc/{order_id}/result",
    responses={202: {"description": "Asked; the QC bench's controller has not applied it yet"}},
)
async def post_qc_result(
    order_id: OrderId,
    body: QcResultIn,
    engine: EngineDep,
    settings: SettingsDep,
    principal: QcOperator,
) -> Any:
    """The QC operator's packaging and appearance verdict. A failure fails QC at once;
    with both fine, QC passes when the item count is complete. Applied by the
    controller owning the order's QC bench. Roles: supervisor, device,
    qc_operator (the QC bench's screen sends the same verdict with a photo)."""
    await _expect_state(
        engine, order_id, OrderState.PICKED, "qc_passed", "QC results are for picked orders"
    )
    request_id = await floor_requests.ask(
        engine,
        "qc_verdict",
        actor=principal.name,
        order_id=order_id,
        body={
            "packaging_ok": body.packaging_ok,
            "appearance_ok": body.appearance_ok,
            "note": body.note,
        },
    )
    return await _answered(engine, settings, request_id)


@router.post(
    "/qc/{order_id}/resolve",
    responses={202: {"description": "Asked; the floor's controller has not applied it yet"}},
)
async def post_qc_resolve(
    order_id: OrderId,
    body: QcResolveIn,
    engine: EngineDep,
    settings: SettingsDep,
    principal: Supervisor,
) -> Any:
    """After a failed QC: ``repick`` (units back to their shelves, picked anew) or
    ``write_off`` (damaged units written off, order to exception). Applied by the
    controller owning the floor. Roles: supervisor."""
    await _expect_state(
        engine, order_id, OrderState.QC_FAILED, body.action, "only a failed QC can be resolved"
    )
    request_id = await floor_requests.ask(
        engine, "qc_resolve", actor=principal.name, order_id=order_id,
        station=floor_requests.FLOOR, body={"action": body.action},
    )  # fmt: skip
    return await _answered(engine, settings, request_id)


async def _expect_state(engine: Any, order_id: str, state: str, target: str, why: str) -> None:
    """Refuse at once what the owner would refuse (the owner checks again)."""
    async with reading(engine).connect() as conn:
        current = await conn.scalar(select(orders.c.state).where(orders.c.id == order_id))
    if current is None:
        raise NotFound(f"order {order_id} does not exist", order_id=order_id)
    if current != state:
        raise IllegalTransition(order_id, current, target, why)


class ReprintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Literal["sscc", "carrier"] = Field(
        default="sscc", description="the GS1 logistic label (SSCC) or the carrier's label"
    )
    printer: str | None = Field(
        default=None, max_length=64, description="a printer of the floor; default: the station's"
    )


@router.post("/parcels/{sscc}/reprint", status_code=202)
async def post_reprint(
    sscc: Annotated[
        str,
        Path(min_length=18, max_length=18, pattern=r"^[0-9]{18}$", description="the SSCC-18"),
    ],
    body: ReprintIn,
    engine: EngineDep,
    topics: TopicsDep,
    settings: SettingsDep,
    principal: PackOperator,
    request: Request,
) -> dict[str, str]:
    """Print a damaged label again: the parcel's GS1 logistic label (same SSCC) or its
    carrier label, at its pack station's printer (the backup when that one is down) or
    the printer named. Answers which printer got the job. Roles: supervisor,
    pack_operator."""
    floor = request.app.state.floor
    if floor is None:
        raise Conflict("no floor file is configured (WCS_FLOOR_FILE): printers are unknown")
    job = await reprint_label(
        engine,
        topics,
        floor,
        settings.pack,
        sscc,
        which=body.label,
        printer=body.printer,
        actor=principal.name,
    )
    request.app.state.wake_relay()
    return {"sscc": sscc, "label": job.kind, "printer": job.printer, "cmd_id": job.cmd_id}
