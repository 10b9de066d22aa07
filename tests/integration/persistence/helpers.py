"""Seeding helpers shared by persistence and API tests."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.contract.topics import Topics
from wcs.services.catalog import LocationData, SkuData, upsert_location, upsert_sku
from wcs.services.orders import NewOrder, receive_stock


async def seed_catalogue(
    engine: AsyncEngine, topics: Topics, stock: dict[str, list[tuple[str, int]]]
) -> None:
    """SKUs with stock per pick location, e.g. {"SKU-1": [("A-01-01-1", 5)]}."""
    for sku, piles in stock.items():
        await upsert_sku(engine, SkuData(sku, f"item {sku}", 250.0, 100, 80, 50, None))
        for code, qty in piles:
            _, aisle, bay, level = code.split("-")
            await upsert_location(
                engine, LocationData(code, "pick", int(aisle), int(bay), int(level))
            )
            if qty:
                await receive_stock(engine, topics, sku, code, qty, actor="test")


def new_order(external_id: str, lines: list[tuple[str, int]], **changes: object) -> NewOrder:
    base: dict[str, object] = {
        "external_id": external_id,
        "customer_name": "Li Wei",
        "phone": "+86 138 0013 8000",
        "email": "li.wei@example.cn",
        "line1": "88 Century Avenue",
        "line2": None,
        "city": "Shanghai",
        "postal_code": "200120",
        "country": "CN",
        "lines": lines,
    }
    base.update(changes)
    return NewOrder(**base)  # type: ignore[arg-type]
