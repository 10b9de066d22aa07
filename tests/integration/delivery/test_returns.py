"""After-sales over HTTP: return -> receipt -> inspection -> refund / exchange / rejection."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served
from tests.integration.delivery.helpers import (
    DELIVERY_PATH,
    FLOOR_PATH,
    PROBLEM,
    Tokens,
    allocate,
    auth,
    drive,
    order_body,
    place_order,
    seed,
)
from wcs.persistence.tables import stock_moves

STOCK = {"SKU-A": [("A-01-02-1", 10)], "SKU-B": [("A-02-05-1", 6)]}


async def delivered_order(
    client: httpx.AsyncClient, engine: AsyncEngine, site: str, key: str
) -> dict[str, Any]:
    await seed(client, STOCK)
    order = await place_order(client, order_body(key, [("SKU-A", 3), ("SKU-B", 1)]))
    await drive(engine, site, order["id"], FLOOR_PATH + DELIVERY_PATH)
    return order


async def returned_and_received(
    client: httpx.AsyncClient, tokens: Tokens, order_id: str, lines: list[dict[str, Any]]
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/returns",
        json={"order_id": order_id, "lines": lines},
        headers=auth(tokens.customer),
    )
    assert r.status_code == 201, r.text
    rma: dict[str, Any] = r.json()
    r = await client.post(f"/api/v1/returns/{rma['id']}/received", headers=auth(tokens.after_sales))
    assert r.status_code == 200 and r.json()["state"] == "return_received", r.text
    return rma


async def test_return_inspection_refund_and_restock(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin:
        order = await delivered_order(admin, engine, site, "ret-1")
        oid = order["id"]
        too_many = await admin.post(
            "/api/v1/returns",
            json={"order_id": oid, "lines": [{"line_no": 1, "qty": 4, "reason": "too big"}]},
            headers=auth(tokens.customer),
        )
        assert too_many.status_code == 422 and too_many.headers["content-type"] == PROBLEM
        assert "only 3 of 3 delivered" in too_many.json()["detail"]
        unknown = await admin.post(
            "/api/v1/returns",
            json={"order_id": oid, "lines": [{"line_no": 7, "qty": 1, "reason": "?"}]},
            headers=auth(tokens.customer),
        )
        assert unknown.status_code == 422 and "no line 7" in unknown.json()["detail"]
        stranger = await admin.post(
            "/api/v1/returns",
            json={"order_id": oid, "lines": [{"line_no": 1, "qty": 1, "reason": "x"}]},
            headers=auth(tokens.other_customer),
        )
        assert stranger.status_code == 404

        rma = await returned_and_received(
            admin, tokens, oid, [{"line_no": 1, "qty": 2, "reason": "wrong colour"}]
        )
        assert rma["state"] == "return_requested" and rma["label"]["data"].startswith("^XA")
        assert rma["id"] in rma["label"]["data"]
        # Only the third unit is still returnable.
        more = await admin.post(
            "/api/v1/returns",
            json={"order_id": oid, "lines": [{"line_no": 1, "qty": 2, "reason": "x"}]},
            headers=auth(tokens.after_sales),
        )
        assert more.status_code == 422 and "only 1 of 3" in more.json()["detail"]

        early = await admin.post(
            f"/api/v1/returns/{rma['id']}/resolve",
            json={"resolution": "refund", "amount": "19.99"},
            headers=auth(tokens.after_sales),
        )
        assert early.status_code == 409 and "not allowed for a return" in early.json()["detail"]

        r = await admin.post(
            f"/api/v1/returns/{rma['id']}/inspection",
            json={"grade": "resellable", "note": "unused, tags on"},
            headers=auth(tokens.after_sales),
        )
        assert r.status_code == 200 and r.json()["state"] == "inspected"
        assert r.json()["lines"][0]["grade"] == "resellable"

        before = (await admin.get("/api/v1/inventory/SKU-A")).json()
        refund = {"resolution": "refund", "amount": "19.99", "currency": "EUR"}
        r = await admin.post(
            f"/api/v1/returns/{rma['id']}/resolve", json=refund, headers=auth(tokens.after_sales)
        )
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["state"] == "refunded" and done["refund"] == {
            "amount": "19.99",
            "currency": "EUR",
        }
        assert done["lines"][0]["restocked_location"] == "RETURNS"
        again = await admin.post(
            f"/api/v1/returns/{rma['id']}/resolve", json=refund, headers=auth(tokens.after_sales)
        )
        assert again.status_code == 200 and again.json() == done
        switch = await admin.post(
            f"/api/v1/returns/{rma['id']}/resolve",
            json={"resolution": "exchange"},
            headers=auth(tokens.after_sales),
        )
        assert switch.status_code == 409

        after = (await admin.get("/api/v1/inventory/SKU-A")).json()
        assert after["on_hand"] == before["on_hand"] + 2
        assert after["available"] == before["available"]  # not promised until put away
        returns_pile = [loc for loc in after["locations"] if loc["location"] == "RETURNS"]
        assert returns_pile == [
            {"location": "RETURNS", "zone": "returns", "on_hand": 2, "reserved": 0, "available": 2}
        ]
        async with engine.connect() as conn:
            moves = (
                await conn.execute(
                    select(stock_moves.c.kind, stock_moves.c.qty, stock_moves.c.order_id).where(
                        stock_moves.c.kind == "return"
                    )
                )
            ).all()
        assert [tuple(m) for m in moves] == [("return", 2, oid)]

        async with api.client(token=tokens.customer) as customer:
            seen = (await customer.get(f"/api/v1/returns/{rma['id']}")).json()
            assert seen["state"] == "refunded"
            timeline = (await customer.get(f"/api/v1/orders/{oid}/timeline")).json()
        moves_seen = [e["data"]["to"] for e in timeline if e["kind"] == "return"]
        assert moves_seen == ["return_requested", "return_received", "inspected", "refunded"]
        notices = [e["data"]["notice_kind"] for e in timeline if e["kind"] == "notice"]
        assert notices == ["return_label", "refund"]
        async with api.client(token=tokens.other_customer) as other:
            assert (await other.get(f"/api/v1/returns/{rma['id']}")).status_code == 404


async def test_exchange_creates_a_reserved_replacement_that_ships(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin:
        order = await delivered_order(admin, engine, site, "ret-x")
        rma = await returned_and_received(
            admin, tokens, order["id"], [{"line_no": 2, "qty": 1, "reason": "arrived scratched"}]
        )
        r = await admin.post(
            f"/api/v1/returns/{rma['id']}/in-transit", headers=auth(tokens.after_sales)
        )
        assert r.status_code == 409  # already received: it cannot be on its way back
        r = await admin.post(
            f"/api/v1/returns/{rma['id']}/inspection",
            json={"lines": [{"line_no": 2, "grade": "scrap"}]},
            headers=auth(tokens.after_sales),
        )
        assert r.status_code == 200, r.text
        reserved_before = (await admin.get("/api/v1/inventory/SKU-B")).json()["reserved"]
        r = await admin.post(
            f"/api/v1/returns/{rma['id']}/resolve",
            json={"resolution": "exchange", "note": "replacement sent"},
            headers=auth(tokens.after_sales),
        )
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["state"] == "exchanged" and done["lines"][0]["restocked_location"] is None
        new_id = done["replacement_order_id"]
        again = await admin.post(
            f"/api/v1/returns/{rma['id']}/resolve",
            json={"resolution": "exchange"},
            headers=auth(tokens.after_sales),
        )
        assert again.status_code == 200 and again.json()["replacement_order_id"] == new_id

        replacement = (await admin.get(f"/api/v1/orders/{new_id}")).json()
        assert replacement["linked_order_id"] == order["id"]
        assert replacement["state"] == "reserved"
        assert [(ln["sku"], ln["qty"]) for ln in replacement["lines"]] == [("SKU-B", 1)]
        assert replacement["customer"]["ref"] == "cust-1"
        inventory = (await admin.get("/api/v1/inventory/SKU-B")).json()
        assert inventory["reserved"] == reserved_before + 1
        assert not [loc for loc in inventory["locations"] if loc["zone"] == "returns"]

        # The replacement takes the normal road out.
        await drive(engine, site, new_id, FLOOR_PATH)
        shipment = await allocate(admin, new_id, tokens.dispatcher)
        r = await admin.post(
            f"/api/v1/shipments/{shipment['id']}/handover", headers=auth(tokens.dispatcher)
        )
        assert r.status_code == 200
        assert (await admin.get(f"/api/v1/orders/{new_id}")).json()["state"] == "shipped"

        async with api.client(token=tokens.customer) as customer:
            mine = (await customer.get("/api/v1/orders")).json()["items"]
            assert {o["id"] for o in mine} == {order["id"], new_id}


async def test_rejected_return_puts_nothing_back_in_stock(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin:
        order = await delivered_order(admin, engine, site, "ret-no")
        r = await admin.post(
            "/api/v1/returns",
            json={"order_id": order["id"], "lines": [{"line_no": 1, "qty": 1, "reason": "meh"}]},
            headers=auth(tokens.after_sales),
        )
        assert r.status_code == 201
        rid = r.json()["id"]
        after_sales = auth(tokens.after_sales)
        assert (
            await admin.post(f"/api/v1/returns/{rid}/in-transit", headers=after_sales)
        ).is_success
        assert (await admin.post(f"/api/v1/returns/{rid}/received", headers=after_sales)).is_success
        r = await admin.post(
            f"/api/v1/returns/{rid}/inspection", json={"grade": "refurbish"}, headers=after_sales
        )
        assert r.status_code == 200
        r = await admin.post(
            f"/api/v1/returns/{rid}/resolve",
            json={"resolution": "rejected", "note": "worn for months"},
            headers=after_sales,
        )
        assert r.status_code == 200 and r.json()["state"] == "rejected"
        r = await admin.post(
            f"/api/v1/returns/{rid}/resolve",
            json={"resolution": "refund", "amount": "5.00"},
            headers=after_sales,
        )
        assert r.status_code == 409
        inventory = (await admin.get("/api/v1/inventory/SKU-A")).json()
        assert not [loc for loc in inventory["locations"] if loc["zone"] == "returns"]
        # A rejected return frees its quantity for a later, better-founded one.
        r = await admin.post(
            "/api/v1/returns",
            json={"order_id": order["id"], "lines": [{"line_no": 1, "qty": 3, "reason": "x"}]},
            headers=after_sales,
        )
        assert r.status_code == 201, r.text


async def test_no_return_before_delivery(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin:
        await seed(admin, STOCK)
        order = await place_order(admin, order_body("ret-early", [("SKU-A", 1)]))
        r = await admin.post(
            "/api/v1/returns",
            json={"order_id": order["id"], "lines": [{"line_no": 1, "qty": 1, "reason": "x"}]},
            headers=auth(tokens.customer),
        )
        assert r.status_code == 409 and "once it is delivered" in r.json()["detail"]
