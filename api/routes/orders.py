"""Order intake and order views (design §6)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from api.asking import pending, raise_refusal
from api.deps import STAFF, EngineDep, PrincipalDep, SettingsDep, TopicsDep, require
from api.metrics import ORDERS_SUBMITTED
from api.params import OrderId
from api.problems import problem
from api.schemas import CancelIn, EventOut, OrderIn, OrderOut, OrderPage
from wcs.domain.states import OrderState
from wcs.errors import Forbidden, ValidationFailed
from wcs.persistence.db import reading
from wcs.services import floor_requests
from wcs.services.auth import Principal
from wcs.services.intake import IntakeDesk, NewOrder, Submission
from wcs.services.order_views import (
    customer_ref_of,
    get_order,
    list_orders,
    order_events_of,
)
from wcs.services.orders import cancel_order

router = APIRouter(prefix="/api/v1", tags=["orders"])

IntakeRole = Annotated[Principal, Depends(require("customer_service", "supervisor", "customer"))]
CancelRole = Annotated[Principal, Depends(require("customer_service", "supervisor", "customer"))]

IDEMPOTENCY_KEY_MAX = 200


def _request_hash(body: OrderIn) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _check_owner(engine: Any, principal: Principal, order_id: str) -> None:
    """A customer sees only their own orders; staff see all."""
    if principal.has_any(STAFF):
        return
    if "customer" in principal.roles:
        if await customer_ref_of(engine, order_id) == principal.subject:
            return
        # Same answer as for a missing order: do not confirm other customers' ids.
        from wcs.errors import NotFound

        raise NotFound(f"order {order_id} does not exist", order_id=order_id)
    raise Forbidden(f"'{principal.name}' may not read orders")


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    responses={
        200: {"description": "replay of an earlier request with the same Idempotency-Key"},
        409: {"description": "Idempotency-Key reused with a different body"},
        422: {"description": "invalid body, or an order kept in 'exception' (see order_id)"},
    },
)
async def create_order(
    body: OrderIn,
    request: Request,
    principal: IntakeRole,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=IDEMPOTENCY_KEY_MAX,
            description="client key; without it the shop's external_id is the key",
        ),
    ] = None,
) -> Response:
    """Take an order: validate, reserve stock, or keep it in exception/backordered."""
    customer_ref = body.customer.ref
    if not principal.has_any(STAFF) and "customer" in principal.roles:
        customer_ref = principal.subject  # a customer orders for themself only
    key = idempotency_key.strip() if idempotency_key else f"external:{body.external_id}"
    if not key:
        raise ValidationFailed("Idempotency-Key header is empty")
    new = NewOrder(
        external_id=body.external_id,
        customer_name=body.customer.name,
        phone=body.customer.phone,
        email=body.customer.email,
        line1=body.address.line1,
        line2=body.address.line2,
        city=body.address.city,
        postal_code=body.address.postal_code,
        country=body.address.country,
        lines=[(line.sku, line.qty) for line in body.lines],
        priority=body.priority,
        service=body.service,
        lat=body.address.lat,
        lon=body.address.lon,
        customer_ref=customer_ref,
        lang=body.lang,
    )
    # Committed together with the orders other requests are sending meanwhile.
    # (The desk and the engine come from app.state, not as dependencies: each
    # dependency FastAPI resolves costs every order some CPU.)
    intake: IntakeDesk = request.app.state.intake
    result = await intake.submit(Submission(new, key, _request_hash(body), principal.name))
    if result.created:
        ORDERS_SUBMITTED.labels(state=result.state).inc()
    headers = {"Location": f"/api/v1/orders/{result.order_id}"}
    if not result.created:
        headers["Idempotent-Replayed"] = "true"
    if result.state == OrderState.EXCEPTION:
        return problem(
            422,
            f"order {result.order_id} was kept in 'exception' for customer service: "
            + "; ".join(result.problems),
            code="order-invalid",
            title="Order needs attention",
            headers=headers,
            extra={"order_id": result.order_id, "state": result.state, "errors": result.problems},
        )
    order = result.order or await get_order(request.app.state.engine, result.order_id)
    return Response(
        OrderOut.model_validate(order).model_dump_json(),
        media_type="application/json",
        status_code=201 if result.created else 200,
        headers=headers,
    )


@router.get("/orders/{order_id}", response_model=OrderOut)
async def read_order(
    order_id: OrderId, engine: EngineDep, principal: PrincipalDep
) -> dict[str, Any]:
    await _check_owner(engine, principal, order_id)
    return await get_order(engine, order_id)


@router.get("/orders", response_model=OrderPage)
async def read_orders(
    engine: EngineDep,
    principal: PrincipalDep,
    state: Annotated[
        list[OrderState] | None, Query(description="repeat for several", max_length=40)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    customer_ref: str | None = None
    if not principal.has_any(STAFF):
        if "customer" not in principal.roles:
            raise Forbidden(f"'{principal.name}' may not list orders")
        customer_ref = principal.subject or ""
    items, next_cursor = await list_orders(
        engine,
        states=[s.value for s in state] if state else None,
        customer_ref=customer_ref,
        limit=limit,
        cursor=cursor,
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/orders/{order_id}/events", response_model=list[EventOut], response_model_by_alias=True
)
async def read_order_events(
    order_id: OrderId, engine: EngineDep, principal: PrincipalDep
) -> list[dict[str, Any]]:
    await _check_owner(engine, principal, order_id)
    return await order_events_of(engine, order_id)


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderOut,
    responses={202: {"description": "Asked; the station the order is at has not applied it yet"}},
)
async def cancel(
    order_id: OrderId,
    engine: EngineDep,
    topics: TopicsDep,
    settings: SettingsDep,
    principal: CancelRole,
    request: Request,
    body: CancelIn | None = None,
) -> Any:
    """Cancel before shipping; reserved stock is released at once. An order at a
    station (being picked, counted or packed) is cancelled by that station's
    controller, which also switches off its lights."""
    await _check_owner(engine, principal, order_id)
    reason = body.reason if body else None
    async with reading(engine).connect() as conn:
        station = await floor_requests.locate(conn, order_id)
    if station == floor_requests.FLOOR:
        await cancel_order(engine, topics, order_id, actor=principal.name, reason=reason)
        request.app.state.wake_relay()
        return await get_order(engine, order_id)
    request_id = await floor_requests.ask(
        engine, "cancel", actor=principal.name, order_id=order_id, station=station,
        body={"reason": reason},
    )  # fmt: skip
    answer = await floor_requests.wait(engine, request_id, settings.controller.answer_wait_s)
    if answer.state == "pending":
        return pending(answer)
    if answer.state == "refused":
        raise_refusal(answer)
    return await get_order(engine, order_id)
