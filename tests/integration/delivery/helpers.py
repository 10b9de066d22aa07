"""Helpers for delivery tests: tokens per role, orders driven to a state, images, webhooks.

The floor controller (picking, QC, packing) is not part of these tests: orders are
brought from ``reserved`` to ``packed`` (or further) by calling
``wcs.persistence.orders.transition`` the way the controller will.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.carriers.signing import SIGNATURE_HEADER, sign
from wcs.contract.topics import Topics
from wcs.persistence.db import transaction
from wcs.persistence.orders import transition
from wcs.persistence.tables import order_events
from wcs.services.auth import issue_token

WEBHOOK_SECRET = "delivery-webhook-secret-3c9e"
PROBLEM = "application/problem+json"

FLOOR_PATH = ("pick_planned", "picking", "picked", "qc_passed", "packing", "packed")
DELIVERY_PATH = ("allocated", "shipped", "in_transit", "out_for_delivery", "delivered")


@dataclass(frozen=True)
class Tokens:
    dispatcher: str
    supervisor: str
    customer_service: str
    after_sales: str
    device: str
    customer: str  # subject cust-1
    other_customer: str  # subject cust-2
    courier: str  # subject courier-1
    other_courier: str  # subject courier-2

    def by_role(self) -> dict[str, str]:
        return {
            "dispatcher": self.dispatcher,
            "supervisor": self.supervisor,
            "customer_service": self.customer_service,
            "after_sales": self.after_sales,
            "device": self.device,
            "customer": self.customer,
            "courier": self.courier,
        }


async def issue_tokens(engine: AsyncEngine) -> Tokens:
    async def one(name: str, role: str, subject: str | None = None) -> str:
        return await issue_token(engine, name, [role], subject)

    return Tokens(
        dispatcher=await one("dispatch-desk", "dispatcher"),
        supervisor=await one("floor-lead", "supervisor"),
        customer_service=await one("cs-agent", "customer_service"),
        after_sales=await one("returns-desk", "after_sales"),
        device=await one("scanner-7", "device"),
        customer=await one("shopper-1", "customer", "cust-1"),
        other_customer=await one("shopper-2", "customer", "cust-2"),
        courier=await one("van-1", "courier", "courier-1"),
        other_courier=await one("van-2", "courier", "courier-2"),
    )


BERLIN = {"line1": "Invalidenstr. 117", "city": "Berlin", "postal_code": "10115", "country": "DE"}
MUNICH = {"line1": "Marienplatz 8", "city": "Munich", "postal_code": "80331", "country": "DE"}
CUSTOMER = {
    "name": "Ada Lovelace",
    "phone": "+49 30 1234567",
    "email": "ada@example.org",
    "ref": "cust-1",
}


def order_body(
    external_id: str,
    lines: list[tuple[str, int]],
    *,
    address: dict[str, str] | None = None,
    customer: dict[str, str] | None = None,
    service: str = "express",
) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "customer": customer or CUSTOMER,
        "address": address or MUNICH,
        "lines": [{"sku": s, "qty": q} for s, q in lines],
        "priority": 4,
        "service": service,
    }


async def seed(client: httpx.AsyncClient, stock: dict[str, list[tuple[str, int]]]) -> None:
    for sku, piles in stock.items():
        r = await client.put(
            f"/api/v1/skus/{sku}",
            json={"name": f"item {sku}", "weight_g": 400, "dims_mm": [220, 160, 90]},
        )
        assert r.status_code in (200, 201), r.text
        for code, qty in piles:
            _, aisle, bay, level = code.split("-")
            r = await client.put(
                f"/api/v1/locations/{code}",
                json={"zone": "pick", "aisle": int(aisle), "bay": int(bay), "level": int(level)},
            )
            assert r.status_code in (200, 201), r.text
            r = await client.post(
                "/api/v1/inventory/receipts", json={"sku": sku, "location": code, "qty": qty}
            )
            assert r.status_code == 201, r.text


async def place_order(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/orders", json=body, headers={"Idempotency-Key": body["external_id"]}
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    assert order["state"] == "reserved", order
    return order


async def drive(engine: AsyncEngine, site: str, order_id: str, path: tuple[str, ...]) -> None:
    """Move an order through ``path`` as the floor controller would, one transaction."""
    topics = Topics(site)
    async with transaction(engine) as conn:
        for state in path:
            await transition(conn, topics, order_id, state, actor="test:floor", reason="test")


async def packed_order(
    client: httpx.AsyncClient, engine: AsyncEngine, site: str, body: dict[str, Any]
) -> dict[str, Any]:
    order = await place_order(client, body)
    await drive(engine, site, order["id"], FLOOR_PATH)
    return order


async def event_count(engine: AsyncEngine, order_id: str) -> int:
    async with engine.connect() as conn:
        n = await conn.scalar(
            select(func.count())
            .select_from(order_events)
            .where(order_events.c.order_id == order_id)
        )
    return int(n or 0)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def image_bytes(kind: str = "JPEG", size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    """A real image file (Pillow), different content per seed."""
    image = Image.new("RGB", size, (seed * 37 % 256, 120, 200 - seed % 200))
    for x in range(min(size[0], 40)):
        image.putpixel((x, (x * 7 + seed) % size[1]), (255, seed % 256, 0))
    out = io.BytesIO()
    image.save(out, format=kind)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def signed(
    body: dict[str, Any], secret: str = WEBHOOK_SECRET, *, at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(raw, secret, timestamp=at),
    }
    return raw, headers


def carrier_event(
    shipment: dict[str, Any], status: str, event_id: str, **extra: Any
) -> dict[str, Any]:
    return {
        "v": 1,
        "event_id": event_id,
        "carrier": "fakecarrier",
        "tracking_no": shipment["tracking_no"],
        "shipment_id": shipment["id"],
        "status": status,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "detail": extra.pop("detail", ""),
        "location": extra.pop("location", None),
        **extra,
    }


async def push(
    carrier: httpx.AsyncClient, tracking_no: str, status: str, **extra: Any
) -> dict[str, Any]:
    """Have the fake carrier move the parcel on and push the signed webhook to the API."""
    r = await carrier.post(
        f"/admin/shipments/{tracking_no}/events", json={"status": status, **extra}
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def allocate(
    client: httpx.AsyncClient, order_id: str, token: str, **body: Any
) -> dict[str, Any]:
    r = await client.post(f"/api/v1/orders/{order_id}/allocate", json=body, headers=auth(token))
    assert r.status_code in (200, 201), r.text
    shipment: dict[str, Any] = r.json()["shipment"]
    return shipment
