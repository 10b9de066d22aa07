"""Customer sign-off, returns and the order timeline.

Roles per endpoint are in each endpoint's description.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from api.deps import EngineDep, PrincipalDep, SettingsDep, TopicsDep, require
from api.params import OrderId, ReturnId
from api.routes.delivery_access import check_order_reader, is_staff
from api.schemas_delivery import (
    ConfirmIn,
    ConfirmOut,
    InspectionIn,
    ResolveIn,
    ReturnIn,
    ReturnOut,
    TimelineEntryOut,
)
from wcs.domain.delivery import ReturnWish, to_minor_units
from wcs.errors import Forbidden
from wcs.services.auth import Principal
from wcs.services.returns import (
    get_return,
    inspect_return,
    mark_in_transit,
    mark_received,
    order_of_return,
    request_return,
    resolve_return,
)
from wcs.services.signoff import confirm_receipt
from wcs.services.timeline import order_timeline

router = APIRouter(prefix="/api/v1", tags=["after-sales"])

CustomerRole = Annotated[Principal, Depends(require("customer"))]
ReturnRequester = Annotated[Principal, Depends(require("customer", "after_sales"))]
AfterSales = Annotated[Principal, Depends(require("after_sales"))]


@router.post(
    "/orders/{order_id}/confirm-receipt",
    response_model=ConfirmOut,
    description=(
        "Roles: customer, for their own orders only. Sign off a delivered order with a "
        "rating (1-5) and an optional comment: delivered -> closed."
    ),
    responses={409: {"description": "order not delivered (or already closed)"}},
)
async def confirm(
    order_id: OrderId,
    body: ConfirmIn,
    engine: EngineDep,
    topics: TopicsDep,
    principal: CustomerRole,
    request: Request,
) -> dict[str, Any]:
    await check_order_reader(engine, principal, order_id)
    result = await confirm_receipt(
        engine, topics, order_id, rating=body.rating, comment=body.comment, actor=principal.name
    )
    request.app.state.wake_relay()
    return result


@router.post(
    "/returns",
    response_model=ReturnOut,
    status_code=201,
    description=(
        "Roles: customer (own orders only), after_sales. Return some lines of a delivered "
        "order (quantity at most what was delivered and not already returned), each with a "
        "reason. Answers the return with its label (ZPL, RMA number as barcode)."
    ),
    responses={
        409: {"description": "order not delivered yet"},
        422: {"description": "unknown line, or more than delivered"},
    },
)
async def create_return(
    body: ReturnIn,
    engine: EngineDep,
    topics: TopicsDep,
    settings: SettingsDep,
    principal: ReturnRequester,
) -> Response:
    await check_order_reader(engine, principal, body.order_id)
    return_id = await request_return(
        engine,
        topics,
        body.order_id,
        [ReturnWish(line.line_no, line.qty, line.reason) for line in body.lines],
        actor=principal.name,
        returns_address=settings.returns.lines(),
    )
    view = await get_return(engine, return_id)
    return JSONResponse(
        ReturnOut.model_validate(view).model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/api/v1/returns/{return_id}"},
    )


async def _check_return_reader(engine: Any, principal: Principal, return_id: str) -> None:
    if is_staff(principal):
        return
    if "customer" not in principal.roles:  # refused before the lookup: no existence oracle
        raise Forbidden(f"'{principal.name}' may not read returns")
    await check_order_reader(engine, principal, await order_of_return(engine, return_id))


@router.get(
    "/returns/{return_id}",
    response_model=ReturnOut,
    description="Roles: staff; the customer of the order.",
)
async def read_return(
    return_id: ReturnId, engine: EngineDep, principal: PrincipalDep
) -> dict[str, Any]:
    await _check_return_reader(engine, principal, return_id)
    return await get_return(engine, return_id)


@router.post(
    "/returns/{return_id}/in-transit",
    response_model=ReturnOut,
    description="Roles: after_sales. The return parcel is on its way back to us.",
)
async def post_in_transit(
    return_id: ReturnId, engine: EngineDep, principal: AfterSales
) -> dict[str, Any]:
    await mark_in_transit(engine, return_id, actor=principal.name)
    return await get_return(engine, return_id)


@router.post(
    "/returns/{return_id}/received",
    response_model=ReturnOut,
    description=(
        "Roles: after_sales. The returns desk has the goods (sent back or brought in person)."
    ),
)
async def post_received(
    return_id: ReturnId, engine: EngineDep, principal: AfterSales
) -> dict[str, Any]:
    await mark_received(engine, return_id, actor=principal.name)
    return await get_return(engine, return_id)


@router.post(
    "/returns/{return_id}/inspection",
    response_model=ReturnOut,
    description=(
        "Roles: after_sales. Grade the returned goods: resellable, refurbish or scrap "
        "(`grade` for all lines, `lines` per line)."
    ),
)
async def post_inspection(
    return_id: ReturnId, body: InspectionIn, engine: EngineDep, principal: AfterSales
) -> dict[str, Any]:
    await inspect_return(
        engine,
        return_id,
        grade=body.grade,
        line_grades={line.line_no: line.grade for line in body.lines},
        note=body.note,
        actor=principal.name,
    )
    return await get_return(engine, return_id)


@router.post(
    "/returns/{return_id}/resolve",
    response_model=ReturnOut,
    description=(
        "Roles: after_sales. Refund (`amount` recorded), exchange (a replacement order "
        "linked to the original goes through normal intake and is reserved) or reject an "
        "inspected return. Resellable goods go back into stock at the RETURNS location "
        "(zone returns) on refund or exchange. Repeating the same resolution is harmless."
    ),
    responses={409: {"description": "not inspected yet, or resolved another way"}},
)
async def post_resolve(
    return_id: ReturnId,
    body: ResolveIn,
    engine: EngineDep,
    topics: TopicsDep,
    principal: AfterSales,
    request: Request,
) -> dict[str, Any]:
    result = await resolve_return(
        engine,
        topics,
        return_id,
        body.resolution,
        actor=principal.name,
        refund_minor=to_minor_units(body.amount) if body.amount is not None else None,
        currency=body.currency,
        note=body.note,
    )
    request.app.state.wake_relay()
    return result


@router.get(
    "/orders/{order_id}/timeline",
    response_model=list[TimelineEntryOut],
    description=(
        "Roles: staff; the customer of the order. Everything that happened to the order in "
        "time order: state changes, shipments and tracking events (refused ones marked), "
        "proof of delivery, sign-off, returns, claims, customer notices and notifications "
        "with their delivery state (a customer sees those addressed to customers only)."
    ),
)
async def read_timeline(
    order_id: OrderId, engine: EngineDep, principal: PrincipalDep
) -> list[dict[str, Any]]:
    await check_order_reader(engine, principal, order_id)
    return await order_timeline(engine, order_id, staff_view=is_staff(principal))
