"""The customer's answer to a backorder: wait, substitute or cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import EngineDep, TopicsDep, require
from api.params import OrderId
from api.routes.delivery_access import check_order_reader
from wcs.services.auth import Principal
from wcs.services.backorders import choices_of, record_choice

router = APIRouter(prefix="/api/v1", tags=["orders"])

ChoiceRole = Annotated[Principal, Depends(require("customer", "customer_service"))]
# Reading the answers: staff and the order's customer (check_order_reader decides).
Reader = Annotated[
    Principal,
    Depends(require("customer", "customer_service", "supervisor", "dispatcher", "after_sales")),
]


class BackorderChoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    choice: Literal["wait", "cancel", "substitute"]
    substitute_sku: str | None = Field(default=None, min_length=1, max_length=64)
    replace_sku: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="which short SKU the substitute replaces (needed when several are short)",
    )


class BackorderChoiceOut(BaseModel):
    id: int
    order_id: str
    choice: str
    replaced_sku: str | None
    substitute_sku: str | None
    state: str = Field(description="the order's state afterwards")
    at: datetime


@router.post(
    "/orders/{order_id}/backorder-choice",
    response_model=BackorderChoiceOut,
    status_code=201,
    description=(
        "Roles: customer (own orders only), customer_service. While an order is "
        "backordered: `wait` for stock, `cancel` it, or `substitute` another SKU for the "
        "short one (the order is reserved at once if the substitute is in stock, "
        "otherwise it waits for the substitute)."
    ),
    responses={409: {"description": "the order is not backordered"}},
)
async def post_backorder_choice(
    order_id: OrderId,
    body: BackorderChoiceIn,
    engine: EngineDep,
    topics: TopicsDep,
    principal: ChoiceRole,
    request: Request,
) -> dict[str, Any]:
    await check_order_reader(engine, principal, order_id)
    result = await record_choice(
        engine,
        topics,
        order_id,
        body.choice,
        actor=principal.name,
        substitute_sku=body.substitute_sku,
        replace_sku=body.replace_sku,
    )
    request.app.state.wake_relay()
    return result


@router.get(
    "/orders/{order_id}/backorder-choices",
    response_model=list[BackorderChoiceOut],
    description=(
        "Roles: staff (customer_service, supervisor, dispatcher, after_sales); the "
        "customer of the order. Every answer given, oldest first."
    ),
)
async def list_backorder_choices(
    order_id: OrderId, engine: EngineDep, principal: Reader
) -> list[dict[str, Any]]:
    await check_order_reader(engine, principal, order_id)
    return await choices_of(engine, order_id)
