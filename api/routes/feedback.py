"""Feedback loop: suggestions and complaints per process stage, triaged by supervisors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import EngineDep, PrincipalDep, require
from api.params import FeedbackId, FreeText
from api.routes.delivery_access import check_order_reader, is_staff
from wcs.domain.states import Stage
from wcs.services import feedback as service
from wcs.services.auth import Principal

router = APIRouter(prefix="/api/v1", tags=["feedback"])

Readers = Annotated[Principal, Depends(require("supervisor", "customer_service"))]
Triage = Annotated[Principal, Depends(require("supervisor"))]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind: Literal["suggestion", "complaint"]
    stage: Stage = Field(description="the process stage it concerns")
    text: FreeText = Field(min_length=1, max_length=service.TEXT_MAX)
    order_id: str | None = Field(default=None, max_length=40)


class TriageIn(BaseModel):
    # A rejection says why: a note with something besides spaces.
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "if": {"properties": {"status": {"const": "rejected"}}},
            "then": {
                "required": ["note"],
                "properties": {"note": {"type": "string", "pattern": r"\S"}},
            },
        },
    )
    status: Literal["open", "accepted", "rejected", "done"]
    note: str | None = Field(default=None, max_length=2000)


class FeedbackOut(BaseModel):
    id: int
    kind: str
    stage: str
    text: str
    order_id: str | None
    author: str
    author_role: str
    status: str
    triage_note: str | None
    triaged_by: str | None
    triaged_at: datetime | None
    history: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


def _role_of(principal: Principal) -> str:
    if "customer" in principal.roles and not is_staff(principal):
        return "customer"
    return ",".join(sorted(principal.roles))[:32]


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    status_code=201,
    description=(
        "Roles: any authenticated user. A suggestion or complaint about one stage "
        "(intake, reservation, picking, qc, packing, outbound, delivery, after_sales); a "
        "customer may link one of their own orders."
    ),
)
async def post_feedback(body: FeedbackIn, engine: EngineDep, principal: PrincipalDep) -> Response:
    if body.order_id is not None:
        await check_order_reader(engine, principal, body.order_id)
    created = await service.submit(
        engine,
        kind=body.kind,
        stage=body.stage,
        text=body.text,
        order_id=body.order_id,
        author=principal.name,
        author_role=_role_of(principal),
    )
    return JSONResponse(
        FeedbackOut.model_validate(created).model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/api/v1/feedback/{created['id']}"},
    )


@router.get(
    "/feedback",
    response_model=list[FeedbackOut],
    description="Roles: supervisor, customer_service. Newest first, filtered.",
)
async def get_feedback(
    engine: EngineDep,
    _: Readers,
    status: Annotated[Literal["open", "accepted", "rejected", "done"] | None, Query()] = None,
    stage: Annotated[Stage | None, Query()] = None,
    kind: Annotated[Literal["suggestion", "complaint"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return await service.list_feedback(engine, status=status, stage=stage, kind=kind, limit=limit)


@router.post(
    "/feedback/{feedback_id}/triage",
    response_model=FeedbackOut,
    description=(
        "Roles: supervisor. Move feedback to open, accepted, rejected (needs a note) or "
        "done, with a note; every step is kept in its history."
    ),
    responses={409: {"description": "that move is not allowed from the current status"}},
)
async def triage_feedback(
    feedback_id: FeedbackId, body: TriageIn, engine: EngineDep, principal: Triage
) -> dict[str, Any]:
    return await service.triage(engine, feedback_id, body.status, body.note, actor=principal.name)
