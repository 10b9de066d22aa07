"""Who may see which order or shipment, and carrier errors as problems.

Staff (customer_service, supervisor, dispatcher, after_sales) see everything. A
customer sees only orders whose ``customer_ref`` is their token's subject, and is
told "does not exist" about any other (no confirmation that an id is real). A
courier sees only shipments assigned to them.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from api.deps import STAFF
from api.problems import problem
from wcs.errors import (
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    Forbidden,
    NoCarrierAvailable,
    NotFound,
)
from wcs.services.auth import Principal
from wcs.services.order_views import customer_ref_of
from wcs.services.shipments import Parties, shipment_parties


def is_staff(principal: Principal) -> bool:
    return principal.has_any(STAFF)


def is_customer(principal: Principal) -> bool:
    return "customer" in principal.roles and not is_staff(principal)


async def check_order_reader(engine: AsyncEngine, principal: Principal, order_id: str) -> None:
    if is_staff(principal):
        return
    if "customer" in principal.roles:
        ref = await customer_ref_of(engine, order_id)
        if principal.subject is not None and ref == principal.subject:
            return
        raise NotFound(f"order {order_id} does not exist", order_id=order_id)
    raise Forbidden(f"'{principal.name}' may not read orders")


def courier_owns(principal: Principal, parties: Parties) -> bool:
    return (
        "courier" in principal.roles
        and principal.subject is not None
        and parties.courier_id == principal.subject
    )


async def check_shipment_reader(
    engine: AsyncEngine, principal: Principal, shipment_id: str, *, customers: bool = True
) -> Parties:
    """``customers``: whether the order's customer may read it too. A role that may
    never read it is refused before the lookup: a 404 would tell it what exists."""
    may = is_staff(principal) or "courier" in principal.roles
    if not may and not (customers and "customer" in principal.roles):
        raise Forbidden(f"'{principal.name}' may not read shipments")
    parties = await shipment_parties(engine, shipment_id)
    if is_staff(principal) or courier_owns(principal, parties):
        return parties
    if "customer" in principal.roles:
        if principal.subject is not None and parties.customer_ref == principal.subject:
            return parties
        raise NotFound(f"shipment {shipment_id} does not exist", shipment_id=shipment_id)
    if "courier" in principal.roles:
        raise Forbidden(
            f"shipment {shipment_id} is not assigned to you; couriers see their own shipments"
        )
    raise Forbidden(f"'{principal.name}' may not read shipments")


def carrier_problem(exc: CarrierError) -> JSONResponse:
    """Carrier trouble: 503 to retry later, 502 when the carrier refused, 422 when none fits."""
    extra = {k: v for k, v in exc.context.items() if isinstance(v, str | int | float | list)}
    if isinstance(exc, CarrierUnavailable):
        return problem(
            503,
            exc.message,
            code="carrier-unavailable",
            title="Carrier unavailable",
            headers={"Retry-After": "30"},
            extra=extra,
        )
    if isinstance(exc, NoCarrierAvailable):
        return problem(422, exc.message, code="no-carrier", title="No carrier fits", extra=extra)
    if isinstance(exc, CarrierRejected):
        return problem(
            502, exc.message, code="carrier-rejected", title="Carrier refused", extra=extra
        )
    return problem(502, exc.message, code="carrier", title="Carrier error", extra=extra)
