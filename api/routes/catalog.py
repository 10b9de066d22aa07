"""SKUs, locations and stock (design §6)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from api.deps import STAFF, EngineDep, PrincipalDep, TopicsDep, require
from api.params import LocationCode
from api.schemas import (
    InventoryOut,
    LocationIn,
    LocationOut,
    ReceiptIn,
    ReceiptOut,
    SkuIn,
    SkuOut,
)
from wcs.errors import Forbidden
from wcs.services.auth import Principal
from wcs.services.catalog import (
    LocationData,
    SkuData,
    get_location,
    get_sku,
    stock_view,
    upsert_location,
    upsert_sku,
)
from wcs.services.orders import receive_stock

router = APIRouter(prefix="/api/v1", tags=["catalogue"])

Supervisor = Annotated[Principal, Depends(require("supervisor"))]
PathCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _sku_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "sku": row["sku"],
        "name": row["name"],
        "weight_g": row["weight_g"],
        "dims_mm": (row["length_mm"], row["width_mm"], row["height_mm"]),
        "barcode": row["barcode"],
        "gtins": row["gtins"],
        "min_shelf_life_days": row["min_shelf_life_days"],
        "category": row.get("category"),
        "price": None if row.get("price_minor") is None else Decimal(row["price_minor"]) / 100,
        "currency": row.get("currency"),
        "product": row.get("product"),
        "variant": row.get("variant"),
    }


@router.put("/skus/{sku}", response_model=SkuOut, responses={201: {"model": SkuOut}})
async def put_sku(
    sku: PathCode, body: SkuIn, engine: EngineDep, _: Supervisor, response: Response
) -> dict[str, Any]:
    length, width, height = body.dims_mm
    created = await upsert_sku(
        engine,
        SkuData(
            sku,
            body.name,
            body.weight_g,
            length,
            width,
            height,
            body.barcode,
            tuple(body.gtins),
            body.min_shelf_life_days,
            category=body.category,
            price_minor=None if body.price is None else int(body.price * 100),
            currency=body.currency,
            product=body.product,
            variant=body.variant,
        ),
    )
    response.status_code = 201 if created else 200
    return _sku_out(await get_sku(engine, sku))


@router.get("/skus/{sku}", response_model=SkuOut)
async def read_sku(sku: PathCode, engine: EngineDep, _: PrincipalDep) -> dict[str, Any]:
    return _sku_out(await get_sku(engine, sku))


@router.put(
    "/locations/{code}", response_model=LocationOut, responses={201: {"model": LocationOut}}
)
async def put_location(
    code: LocationCode, body: LocationIn, engine: EngineDep, _: Supervisor, response: Response
) -> dict[str, Any]:
    created = await upsert_location(
        engine, LocationData(code, body.zone, body.aisle, body.bay, body.level)
    )
    response.status_code = 201 if created else 200
    row = await get_location(engine, code)
    return {k: row[k] for k in ("code", "zone", "aisle", "bay", "level")}


@router.get("/inventory/{sku}", response_model=InventoryOut)
async def read_inventory(
    sku: PathCode, engine: EngineDep, principal: PrincipalDep
) -> dict[str, Any]:
    if not principal.has_any(STAFF | {"device"}):
        raise Forbidden(f"'{principal.name}' may not read inventory")
    return await stock_view(engine, sku)


@router.post("/inventory/receipts", response_model=ReceiptOut, status_code=201)
async def post_receipt(
    body: ReceiptIn,
    engine: EngineDep,
    topics: TopicsDep,
    principal: Annotated[Principal, Depends(require("supervisor", "device"))],
    request: Request,
) -> dict[str, Any]:
    """Book arriving stock; backordered orders for the SKU are reserved oldest first."""
    pile, filled = await receive_stock(
        engine, topics, body.sku, body.location, body.qty, actor=principal.name
    )
    request.app.state.wake_relay()
    return {
        "sku": body.sku,
        "location": body.location,
        "on_hand": pile["on_hand"],
        "reserved": pile["reserved"],
        "backorders_reserved": filled,
    }
