"""Floor views and actions for supervisors and QC operators (design §6).

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

from api.deps import STAFF, EngineDep, PrincipalDep, SettingsDep, TopicsDep, require
from api.params import OrderId, Word
from wcs.domain.waves import WavePolicy
from wcs.errors import Conflict, Forbidden
from wcs.persistence.db import reading
from wcs.persistence.tables import pick_batches, pick_tasks, totes
from wcs.services import qc
from wcs.services.auth import Principal
from wcs.services.labels import reprint_label
from wcs.services.waves import release_wave

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


@router.post("/waves", status_code=201)
async def post_wave(
    engine: EngineDep,
    topics: TopicsDep,
    settings: SettingsDep,
    principal: Supervisor,
    request: Request,
    body: WaveIn | None = None,
) -> dict[str, Any]:
    """Release reserved orders now: batches with their orders, stops in walking order
    and walking distance (metres), plus the order-by-order S-shape distance of the
    same orders for comparison. Roles: supervisor."""
    floor = getattr(request.app.state, "floor", None)
    wave = await release_wave(
        engine,
        topics,
        floor,
        actor=principal.name,
        policy=WavePolicy(max_orders=body.max_orders if body else 200),
    )
    request.app.state.wake_relay()
    return {
        "wave_id": wave.id,
        "distance_m": round(wave.distance_m, 1),
        "baseline_s_shape_m": round(wave.baseline_m, 1),
        "batches": [
            {
                "id": b.id,
                "station": b.station,
                "orders": b.orders,
                "stops": b.stops,
                "distance_m": round(b.distance_m, 1),
            }
            for b in wave.batches
        ],
        "held": wave.held,
        "at_risk": wave.at_risk,
    }


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


@router.post("/qc/{order_id}/result")
async def post_qc_result(
    order_id: OrderId,
    body: QcResultIn,
    engine: EngineDep,
    topics: TopicsDep,
    settings: SettingsDep,
    principal: QcOperator,
    request: Request,
) -> dict[str, str]:
    """The QC operator's packaging and appearance verdict. A failure fails QC at once;
    with both fine, QC passes when the item count is complete. Roles: supervisor, device,
    qc_operator (the QC bench's screen sends the same verdict with a photo)."""
    result = await qc.record_operator_result(
        engine,
        topics,
        order_id,
        packaging_ok=body.packaging_ok,
        appearance_ok=body.appearance_ok,
        note=body.note,
        actor=principal.name,
        require_operator=settings.controller.qc_require_operator,
    )
    request.app.state.wake_relay()
    return {"order_id": order_id, "qc": result}


@router.post("/qc/{order_id}/resolve")
async def post_qc_resolve(
    order_id: OrderId,
    body: QcResolveIn,
    engine: EngineDep,
    topics: TopicsDep,
    principal: Supervisor,
    request: Request,
) -> dict[str, str]:
    """After a failed QC: ``repick`` (units back to their shelves, picked anew) or
    ``write_off`` (damaged units written off, order to exception). Roles: supervisor."""
    state = await qc.resolve_failure(
        engine, topics, order_id, action=body.action, actor=principal.name
    )
    request.app.state.wake_relay()
    return {"order_id": order_id, "state": state}


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
