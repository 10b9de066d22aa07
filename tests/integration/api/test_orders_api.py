"""Order intake over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.integration.api.conftest import Served

PROBLEM = "application/problem+json"


def order_body(external_id: str, lines: list[tuple[str, int]], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "customer": {"name": "Li Wei", "phone": "+86 138 0013 8000", "email": "li@example.cn"},
        "address": {
            "line1": "88 Century Avenue",
            "city": "Shanghai",
            "postal_code": "200120",
            "country": "CN",
        },
        "lines": [{"sku": s, "qty": q} for s, q in lines],
        "priority": 5,
        "service": "express",
    }
    body.update(changes)
    return body


async def seed(client: httpx.AsyncClient, stock: dict[str, list[tuple[str, int]]]) -> None:
    for sku, piles in stock.items():
        r = await client.put(
            f"/api/v1/skus/{sku}",
            json={"name": f"item {sku}", "weight_g": 300, "dims_mm": [200, 150, 80]},
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


async def test_order_lifecycle_over_http(api: Served) -> None:
    async with api.client() as client:
        await seed(client, {"SKU-1": [("A-01-01-1", 5)], "SKU-2": [("A-02-03-1", 1)]})
        r = await client.post(
            "/api/v1/orders",
            json=order_body("shop-1", [("SKU-1", 2), ("SKU-2", 1)]),
            headers={"Idempotency-Key": "key-1"},
        )
        assert r.status_code == 201, r.text
        order = r.json()
        assert order["state"] == "reserved"
        assert {ln["sku"]: ln["qty"] for ln in order["lines"]} == {"SKU-1": 2, "SKU-2": 1}
        assert r.headers["location"] == f"/api/v1/orders/{order['id']}"

        replay = await client.post(
            "/api/v1/orders",
            json=order_body("shop-1", [("SKU-1", 2), ("SKU-2", 1)]),
            headers={"Idempotency-Key": "key-1"},
        )
        assert replay.status_code == 200 and replay.json()["id"] == order["id"]
        assert replay.headers["idempotent-replayed"] == "true"

        clash = await client.post(
            "/api/v1/orders",
            json=order_body("shop-1", [("SKU-1", 3)]),
            headers={"Idempotency-Key": "key-1"},
        )
        assert clash.status_code == 409
        assert clash.headers["content-type"] == PROBLEM
        assert "different body" in clash.json()["detail"]

        inv = (await client.get("/api/v1/inventory/SKU-1")).json()
        assert (inv["on_hand"], inv["reserved"], inv["available"]) == (5, 2, 3)

        events = (await client.get(f"/api/v1/orders/{order['id']}/events")).json()
        assert [(e["seq"], e["from"], e["to"]) for e in events] == [
            (1, None, "received"),
            (2, "received", "validated"),
            (3, "validated", "reserved"),
        ]

        listed = (await client.get("/api/v1/orders", params={"state": "reserved"})).json()
        assert [o["id"] for o in listed["items"]] == [order["id"]]

        r = await client.post(
            f"/api/v1/orders/{order['id']}/cancel", json={"reason": "changed mind"}
        )
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        inv = (await client.get("/api/v1/inventory/SKU-1")).json()
        assert (inv["reserved"], inv["available"]) == (0, 5)
        again = await client.post(f"/api/v1/orders/{order['id']}/cancel")
        assert again.status_code == 409
        assert "cancelled" in again.json()["detail"] and again.headers["content-type"] == PROBLEM


async def test_invalid_order_is_kept_in_exception(api: Served) -> None:
    async with api.client() as client:
        await seed(client, {"SKU-1": [("A-01-01-1", 5)]})
        r = await client.post(
            "/api/v1/orders",
            json=order_body(
                "shop-2",
                [("SKU-NOPE", 1)],
                address={"line1": "x", "city": "Paris", "postal_code": "75001", "country": "ZZ"},
            ),
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert problem["state"] == "exception"
        assert any("unknown SKU 'SKU-NOPE'" in e for e in problem["errors"])
        assert any("ZZ" in e for e in problem["errors"])
        kept = (await client.get(f"/api/v1/orders/{problem['order_id']}")).json()
        assert kept["state"] == "exception" and "SKU-NOPE" in kept["exception_reason"]


async def test_backorder_then_receipt(api: Served) -> None:
    async with api.client() as client:
        await seed(client, {"SKU-1": [("A-01-01-1", 1)]})
        r = await client.post("/api/v1/orders", json=order_body("b-1", [("SKU-1", 3)]))
        assert r.status_code == 201 and r.json()["state"] == "backordered"
        r2 = await client.post(
            "/api/v1/inventory/receipts", json={"sku": "SKU-1", "location": "A-01-01-1", "qty": 2}
        )
        assert r2.json()["backorders_reserved"] == [r.json()["id"]]
        assert (await client.get(f"/api/v1/orders/{r.json()['id']}")).json()["state"] == "reserved"


BAD_BODIES: list[tuple[str, Any, dict[str, str], int, str]] = [
    ("missing lines", {"external_id": "x"}, {}, 422, "lines"),
    ("negative qty", "NEG", {}, 422, "qty"),
    ("huge qty", "HUGE", {}, 422, "qty"),
    ("string qty", "STRQ", {}, 422, "qty"),
    (
        "invalid json",
        b'{"external_id": ',
        {"content-type": "application/json"},
        400,
        "not valid JSON",
    ),
    (
        "wrong content type",
        b"external_id=x",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "application/json",
    ),
    ("no content type", b"{}", {"content-type": ""}, 415, "application/json"),
    ("1 MB address", "BIG", {}, 413, "limit"),
    ("extra field", "EXTRA", {}, 422, "discount"),
    ("bad country shape", "COUNTRY", {}, 422, "country"),
    ("priority out of range", "PRIO", {}, 422, "priority"),
]


def bad_body(kind: Any) -> Any:
    base = order_body("bad", [("SKU-1", 1)])
    if kind == "NEG":
        base["lines"][0]["qty"] = -3
    elif kind == "HUGE":
        base["lines"][0]["qty"] = 10**12
    elif kind == "STRQ":
        base["lines"][0]["qty"] = "two"
    elif kind == "BIG":
        base["address"]["line1"] = "x" * 1_000_000
    elif kind == "EXTRA":
        base["discount"] = 100
    elif kind == "COUNTRY":
        base["address"]["country"] = "China"
    elif kind == "PRIO":
        base["priority"] = 10
    else:
        return kind
    return base


@pytest.mark.parametrize(("name", "kind", "headers", "status", "mentions"), BAD_BODIES)
async def test_bad_input_gets_a_precise_problem(
    api: Served, name: str, kind: Any, headers: dict[str, str], status: int, mentions: str
) -> None:
    async with api.client() as client:
        body = bad_body(kind)
        if isinstance(body, bytes):
            r = await client.post("/api/v1/orders", content=body, headers=headers)
        else:
            r = await client.post("/api/v1/orders", json=body)
        assert r.status_code == status, (name, r.text[:300])
        assert r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert problem["status"] == status and problem["title"] and problem["type"]
        assert mentions in json.dumps(problem), problem
        listed = (await client.get("/api/v1/orders")).json()
        assert listed["items"] == []  # nothing stored


async def test_auth_refuses_missing_and_unknown_tokens(api: Served) -> None:
    async with api.client(token=None) as anon:
        r = await anon.post("/api/v1/orders", json=order_body("a", [("SKU-1", 1)]))
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
        assert r.headers["www-authenticate"].startswith("Bearer")
    async with api.client(token="nope") as stranger:
        r = await stranger.get("/api/v1/orders")
        assert r.status_code == 401


async def test_no_oversell_under_200_concurrent_orders(pg_api: Served) -> None:
    """200 concurrent requests for a SKU with 50 units: exactly 50 reserved."""
    async with pg_api.client(limits=httpx.Limits(max_connections=200)) as client:
        await seed(client, {"HOT": [("A-01-01-1", 20), ("A-03-05-1", 30)]})
        before = await batch_metrics(client)

        async def one(i: int) -> str:
            r = await client.post(
                "/api/v1/orders",
                json=order_body(f"rush-{i}", [("HOT", 1)]),
                headers={"Idempotency-Key": f"rush-{i}"},
            )
            assert r.status_code == 201, r.text
            return str(r.json()["state"])

        states = await asyncio.gather(*(one(i) for i in range(200)))
        assert states.count("reserved") == 50
        assert states.count("backordered") == 150
        inv = (await client.get("/api/v1/inventory/HOT")).json()
        assert (inv["on_hand"], inv["reserved"], inv["available"]) == (50, 50, 0)
        assert all(loc["reserved"] <= loc["on_hand"] for loc in inv["locations"])
        # Committed in batches, and /metrics says how large they were.
        after = await batch_metrics(client)
        assert after[0] - before[0] == 200  # orders
        assert after[1] - before[1] < 200  # in fewer transactions


async def batch_metrics(client: httpx.AsyncClient) -> tuple[float, float]:
    """(orders, batches) committed by intake so far, from /metrics."""
    values = {}
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(("wcs_intake_batch_orders_sum", "wcs_intake_batch_orders_count")):
            name, value = line.split()
            values[name] = float(value)
    return values.get("wcs_intake_batch_orders_sum", 0.0), values.get(
        "wcs_intake_batch_orders_count", 0.0
    )
