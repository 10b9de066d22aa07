"""Every delivery and after-sales endpoint admits its named roles only; customers and
couriers see only their own orders and shipments."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served
from tests.integration.delivery.helpers import (
    FLOOR_PATH,
    PROBLEM,
    Tokens,
    allocate,
    auth,
    drive,
    image_bytes,
    order_body,
    place_order,
    seed,
)

ALL_ROLES = (
    "dispatcher",
    "supervisor",
    "customer_service",
    "after_sales",
    "device",
    "customer",
    "courier",
)
DISPATCH = {"dispatcher", "supervisor"}

# (method, path, JSON body or "multipart", roles admitted)
MUTATIONS: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/api/v1/orders/o-x/allocate", {}, DISPATCH),
    ("PUT", "/api/v1/shipments/s-x/courier", {"courier_id": "courier-1"}, DISPATCH),
    ("POST", "/api/v1/shipments/s-x/handover", None, DISPATCH),
    (
        "POST",
        "/api/v1/shipments/s-x/courier-events",
        {"status": "delayed"},
        DISPATCH | {"courier"},
    ),
    ("POST", "/api/v1/shipments/s-x/pod", "multipart", {"courier"}),
    ("POST", "/api/v1/orders/o-x/confirm-receipt", {"rating": 5}, {"customer"}),
    (
        "POST",
        "/api/v1/returns",
        {"order_id": "o-x", "lines": [{"line_no": 1, "qty": 1, "reason": "x"}]},
        {"customer", "after_sales"},
    ),
    ("POST", "/api/v1/returns/r-x/in-transit", None, {"after_sales"}),
    ("POST", "/api/v1/returns/r-x/received", None, {"after_sales"}),
    ("POST", "/api/v1/returns/r-x/inspection", {"grade": "scrap"}, {"after_sales"}),
    ("POST", "/api/v1/returns/r-x/resolve", {"resolution": "rejected"}, {"after_sales"}),
]


async def _send(client: Any, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    if body == "multipart":
        return await client.request(
            method,
            path,
            data={"receiver_name": "x"},
            files={"photo": ("p.jpg", image_bytes(), "image/jpeg")},
            headers=headers,
        )
    if body is None:
        return await client.request(method, path, headers=headers)
    return await client.request(method, path, json=body, headers=headers)


async def test_each_role_is_refused_where_it_does_not_belong(api: Served, tokens: Tokens) -> None:
    by_role = tokens.by_role()
    async with api.client(token=None) as client:
        for method, path, body, admitted in MUTATIONS:
            r = await _send(client, method, path, body, {})
            assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, (path, r.text)
            for role in ALL_ROLES:
                r = await _send(client, method, path, body, auth(by_role[role]))
                if role in admitted:
                    # Past the role check; the made-up id is then unknown (or not theirs).
                    assert r.status_code in (403, 404, 409), (path, role, r.status_code, r.text)
                    if r.status_code == 403:
                        assert role == "courier" and "not assigned to you" in r.json()["detail"]
                else:
                    assert r.status_code == 403, (path, role, r.status_code, r.text)
                    assert r.headers["content-type"] == PROBLEM
                    assert "this needs one of" in r.json()["detail"], (path, role)


async def test_customers_and_couriers_see_only_their_own(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin:
        await seed(admin, {"SKU-A": [("A-01-02-1", 10)]})
        order = await place_order(admin, order_body("mine-1", [("SKU-A", 1)]))
        oid = order["id"]
        await drive(engine, site, oid, FLOOR_PATH)
        shipment = await allocate(admin, oid, tokens.dispatcher)
        r = await admin.put(
            f"/api/v1/shipments/{shipment['id']}/courier",
            json={"courier_id": "courier-1"},
            headers=auth(tokens.dispatcher),
        )
        assert r.status_code == 200

    async with api.client(token=tokens.customer) as owner:
        assert (await owner.get(f"/api/v1/orders/{oid}")).status_code == 200
        assert (await owner.get(f"/api/v1/orders/{oid}/timeline")).status_code == 200
        r = await owner.get(f"/api/v1/shipments/{shipment['id']}")
        assert r.status_code == 403  # the parcel is followed through the timeline or /track
        assert (await owner.get("/api/v1/shipments")).status_code == 403

    async with api.client(token=tokens.other_customer) as stranger:
        for path in (f"/api/v1/orders/{oid}", f"/api/v1/orders/{oid}/timeline"):
            r = await stranger.get(path)
            assert r.status_code == 404 and r.headers["content-type"] == PROBLEM, path
        r = await stranger.post(f"/api/v1/orders/{oid}/confirm-receipt", json={"rating": 1})
        assert r.status_code == 404
        assert (await stranger.get(f"/api/v1/shipments/{shipment['id']}/pod")).status_code == 404

    async with api.client(token=tokens.courier) as courier:
        assert [s["id"] for s in (await courier.get("/api/v1/shipments")).json()] == [
            shipment["id"]
        ]
        assert (await courier.get(f"/api/v1/shipments/{shipment['id']}")).status_code == 200
        r = await courier.get(f"/api/v1/orders/{oid}/timeline")
        assert r.status_code == 403
    async with api.client(token=tokens.other_courier) as other:
        assert (await other.get("/api/v1/shipments")).json() == []
        assert (await other.get(f"/api/v1/shipments/{shipment['id']}")).status_code == 403
    async with api.client(token=tokens.device) as device:
        assert (await device.get("/api/v1/shipments")).status_code == 403


async def test_openapi_names_the_roles_of_every_delivery_mutation(api: Served) -> None:
    async with api.client(token=None) as client:
        spec = (await client.get("/openapi.json")).json()
    for method, path, _, admitted in MUTATIONS:
        template = path.replace("o-x", "{order_id}").replace("s-x", "{shipment_id}")
        template = template.replace("r-x", "{return_id}")
        description = spec["paths"][template][method.lower()]["description"]
        assert description.startswith("Roles: "), (path, description)
        named = description.split(".", 1)[0]
        assert all(role in named for role in admitted), (path, named)
    webhook = spec["paths"]["/api/v1/shipments/{shipment_id}/tracking-events"]["post"]
    assert "X-WCS-Signature" in webhook["description"]
    pod = spec["paths"]["/api/v1/shipments/{shipment_id}/pod"]["post"]
    assert "multipart/form-data" in pod["requestBody"]["content"]
