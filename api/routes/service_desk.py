"""Customer service over the API: correct an order in exception, the queue of orders
waiting for a person, an order's corrections (``wcs.services.corrections``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import EngineDep, TopicsDep, require
from api.params import OrderId
from api.problems import problem
from api.schemas import LineIn, OrderOut
from wcs.services.auth import Principal
from wcs.services.corrections import Correction, CorrectionRefused, correct_order, corrections_of
from wcs.services.service_queue import WAITING, service_queue

router = APIRouter(prefix="/api/v1", tags=["customer service"])

CustomerService = Annotated[Principal, Depends(require("customer_service", "supervisor"))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerFix(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)


class AddressFix(_In):
    line1: str | None = Field(default=None, min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")


class CorrectionIn(_In):
    # A correction changes something: the customer, the address or the lines.
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "anyOf": [
                {"required": [part], "properties": {part: {"not": {"type": "null"}}}}
                for part in ("customer", "address", "lines")
            ]
        },
    )
    reason: str = Field(min_length=1, max_length=1000, description="why, for the history")
    customer: CustomerFix | None = None
    address: AddressFix | None = None
    lines: list[LineIn] | None = Field(default=None, min_length=1, max_length=200)


def correction_of(body: CorrectionIn) -> Correction:
    return Correction(
        reason=body.reason,
        customer=body.customer.model_dump(exclude_unset=True) if body.customer else None,
        address=body.address.model_dump(exclude_unset=True) if body.address else None,
        lines=[(ln.sku, ln.qty) for ln in body.lines] if body.lines is not None else None,
    )


def refused(exc: CorrectionRefused) -> Response:
    return problem(
        422,
        exc.message,
        code="correction-invalid",
        title="Correction refused",
        extra={"order_id": exc.context.get("order_id"), "errors": exc.problems},
    )


@router.patch(
    "/orders/{order_id}",
    response_model=OrderOut,
    responses={
        409: {"description": "the order is not in exception (or already took stock)"},
        422: {"description": "the corrected order still fails the checks; nothing changed"},
    },
)
async def correct(
    order_id: OrderId,
    body: CorrectionIn,
    engine: EngineDep,
    topics: TopicsDep,
    principal: CustomerService,
) -> Any:
    """Correct an order kept in ``exception``: its contact, address and/or lines, with
    the reason. The corrected order is checked again as at intake; if it passes it
    moves to ``validated`` and on to ``reserved`` (or ``backordered``), its
    ``order_invalid`` alert closes and the timeline shows the correction. Roles:
    customer_service, supervisor."""
    try:
        order = await correct_order(
            engine, topics, order_id, correction_of(body), actor=principal.name
        )
    except CorrectionRefused as exc:
        return refused(exc)
    return JSONResponse(OrderOut.model_validate(order).model_dump(mode="json"))


@router.get("/orders/{order_id}/corrections")
async def read_corrections(
    order_id: OrderId, engine: EngineDep, _: CustomerService
) -> list[dict[str, Any]]:
    """Who corrected the order, when, why and what changed (before, after)."""
    return await corrections_of(engine, order_id)


@router.get("/service/queue")
async def queue(
    engine: EngineDep,
    _: CustomerService,
    state: Annotated[
        list[Literal["exception", "backordered", "delivery_failed"]] | None, Query(max_length=3)
    ] = None,
) -> list[dict[str, Any]]:
    """Orders waiting for customer service (exception, backordered, delivery_failed),
    oldest first, each with its reason, age in seconds and open alerts."""
    wanted = tuple(s for s in (state or WAITING) if s in WAITING) or WAITING
    return await service_queue(engine, states=wanted)
