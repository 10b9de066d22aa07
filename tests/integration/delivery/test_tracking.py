"""Carrier webhooks: signature, idempotency, illegal events, delays and damage."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served
from tests.integration.delivery.helpers import (
    PROBLEM,
    Tokens,
    allocate,
    auth,
    carrier_event,
    event_count,
    order_body,
    packed_order,
    push,
    seed,
    signed,
)
from wcs.contract.topics import Topics
from wcs.persistence.tables import alerts, claims, customer_notices, shipment_events
from wcs.services.tracking import flag_late_deliveries
from wcs.timeutil import utcnow

STOCK = {"SKU-A": [("A-01-02-1", 10)]}


async def shipped(
    client: httpx.AsyncClient, engine: AsyncEngine, site: str, tokens: Tokens, key: str
) -> dict[str, str]:
    order = await packed_order(client, engine, site, order_body(key, [("SKU-A", 1)]))
    shipment = await allocate(client, order["id"], tokens.dispatcher)
    r = await client.post(
        f"/api/v1/shipments/{shipment['id']}/handover", headers=auth(tokens.dispatcher)
    )
    assert r.status_code == 200, r.text
    return shipment


async def count(engine: AsyncEngine, table: Table, **where: str) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    async with engine.connect() as conn:
        return int(await conn.scalar(query) or 0)


async def test_bad_signatures_are_refused_and_change_nothing(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin, api.client(token=None) as carrier:
        await seed(admin, STOCK)
        shipment = await shipped(admin, engine, site, tokens, "sig-1")
        url = f"/api/v1/shipments/{shipment['id']}/tracking-events"
        before = await event_count(engine, shipment["order_id"])
        body = carrier_event(shipment, "in_transit", "evt-sig-1")
        wrong_secret = signed(body, "not-the-secret")
        stale = signed(body, at=int(time.time()) - 3600)
        raw, good_headers = signed(body)
        tampered = (raw.replace(b"in_transit", b"damaged"), good_headers)
        no_header = (raw, {"Content-Type": "application/json"})
        bearer = (raw, {"Content-Type": "application/json", **auth(tokens.dispatcher)})
        for name, (content, headers) in {
            "wrong secret": wrong_secret,
            "stale": stale,
            "tampered": tampered,
            "missing": no_header,
            "bearer token instead": bearer,
        }.items():
            r = await carrier.post(url, content=content, headers=headers)
            assert r.status_code == 401, (name, r.text)
            assert r.headers["content-type"] == PROBLEM
            assert r.headers["www-authenticate"].startswith("HMAC-SHA256")
        assert await event_count(engine, shipment["order_id"]) == before
        assert await count(engine, shipment_events, kind="tracking") == 0
        state = (await admin.get(f"/api/v1/orders/{shipment['order_id']}")).json()["state"]
        assert state == "shipped"

        r = await carrier.post(url, content=raw, headers=good_headers)
        assert r.status_code == 200 and r.json()["outcome"] == "applied"


async def test_a_replayed_event_has_one_effect(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin, api.client(token=None) as carrier:
        await seed(admin, STOCK)
        shipment = await shipped(admin, engine, site, tokens, "replay-1")
        url = f"/api/v1/shipments/{shipment['id']}/tracking-events"
        before = await event_count(engine, shipment["order_id"])
        raw, headers = signed(carrier_event(shipment, "in_transit", "evt-replay-1"))
        answers = await asyncio.gather(
            *(carrier.post(url, content=raw, headers=headers) for _ in range(6))
        )
        assert [a.status_code for a in answers] == [200] * 6
        assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 5
        assert {a.json()["outcome"] for a in answers} == {"applied"}
        assert await event_count(engine, shipment["order_id"]) == before + 1
        assert await count(engine, shipment_events, kind="tracking") == 1

        # A second scan at another hub with its own id: recorded, the order stays put.
        raw2, headers2 = signed(carrier_event(shipment, "in_transit", "evt-replay-2"))
        r = await carrier.post(url, content=raw2, headers=headers2)
        assert r.status_code == 200 and r.json()["outcome"] == "unchanged"
        assert await event_count(engine, shipment["order_id"]) == before + 1


async def test_an_illegal_event_is_recorded_and_answered_409(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin, api.client(token=None) as carrier:
        await seed(admin, STOCK)
        shipment = await shipped(admin, engine, site, tokens, "illegal-1")
        url = f"/api/v1/shipments/{shipment['id']}/tracking-events"
        before = await event_count(engine, shipment["order_id"])
        raw, headers = signed(carrier_event(shipment, "delivered", "evt-illegal-1"))
        r = await carrier.post(url, content=raw, headers=headers)
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert problem["outcome"] == "refused" and problem["order_state"] == "shipped"
        assert "cannot go from 'shipped' to 'delivered'" in problem["detail"]
        again = await carrier.post(url, content=raw, headers=headers)
        assert again.status_code == 409 and again.json()["duplicate"] is True
        assert await event_count(engine, shipment["order_id"]) == before

        timeline = (await admin.get(f"/api/v1/orders/{shipment['order_id']}/timeline")).json()
        refused = [e for e in timeline if e["kind"] == "tracking"]
        assert len(refused) == 1 and refused[0]["data"]["outcome"] == "refused"
        assert "(refused)" in refused[0]["summary"]

        other = signed(carrier_event(shipment, "in_transit", "evt-x", tracking_no="FC999"))
        r = await carrier.post(url, content=other[0], headers=other[1])
        assert r.status_code == 422 and "tracking number FC999" in r.json()["detail"]
        wrong_path = "/api/v1/shipments/shp_nope/tracking-events"
        r = await carrier.post(wrong_path, content=raw, headers=headers)
        assert r.status_code == 422 and "posted for shp_nope" in r.json()["detail"]


async def test_delay_raises_one_alert_and_a_customer_notice(
    api: Served,
    engine: AsyncEngine,
    site: str,
    tokens: Tokens,
    carrier_http: httpx.AsyncClient,
) -> None:
    async with api.client() as admin:
        await seed(admin, STOCK)
        late = await shipped(admin, engine, site, tokens, "late-1")
        pushed = await push(carrier_http, late["tracking_no"], "delayed", detail="storm")
        assert pushed["webhook"]["delivered"] is True
        pushed = await push(carrier_http, late["tracking_no"], "in_transit")
        pushed = await push(carrier_http, late["tracking_no"], "delayed", detail="again")
        assert pushed["webhook"]["status_code"] == 200
        assert await count(engine, alerts, code="delivery_delayed") == 1
        assert await count(engine, customer_notices, kind="delivery_delayed") == 1

        # Silent lateness: nothing from the carrier, the promise simply passes.
        quiet = await shipped(admin, engine, site, tokens, "late-2")
        later = utcnow() + timedelta(days=2)
        assert await flag_late_deliveries(engine, Topics(site), utcnow()) == []
        assert await flag_late_deliveries(engine, Topics(site), later) == [quiet["id"]]
        assert await flag_late_deliveries(engine, Topics(site), later) == []
        assert await count(engine, alerts, code="delivery_delayed") == 2
        async with engine.connect() as conn:
            subjects = (
                await conn.scalars(
                    select(alerts.c.subject).where(alerts.c.code == "delivery_delayed")
                )
            ).all()
        assert sorted(subjects) == sorted([late["order_id"], quiet["order_id"]])
        timeline = (await admin.get(f"/api/v1/orders/{quiet['order_id']}/timeline")).json()
        assert any(
            e["kind"] == "notice" and e["data"]["notice_kind"] == "delivery_delayed"
            for e in timeline
        )


async def test_damage_opens_a_claim_and_reships_a_linked_order(
    api: Served,
    engine: AsyncEngine,
    site: str,
    tokens: Tokens,
    carrier_http: httpx.AsyncClient,
) -> None:
    async with api.client() as admin:
        await seed(admin, STOCK)
        shipment = await shipped(admin, engine, site, tokens, "broken-1")
        await push(carrier_http, shipment["tracking_no"], "in_transit")
        pushed = await push(carrier_http, shipment["tracking_no"], "damaged", detail="crushed")
        assert pushed["webhook"]["status_code"] == 200
        original = (await admin.get(f"/api/v1/orders/{shipment['order_id']}")).json()
        assert original["state"] == "closed"
        async with engine.connect() as conn:
            claim = (await conn.execute(select(claims))).one()
        assert claim.state == "reshipped" and claim.detail == "crushed"
        replacement = (await admin.get(f"/api/v1/orders/{claim.replacement_order_id}")).json()
        assert replacement["linked_order_id"] == shipment["order_id"]
        assert replacement["state"] == "reserved"
        assert [(ln["sku"], ln["qty"]) for ln in replacement["lines"]] == [("SKU-A", 1)]
        inventory = (await admin.get("/api/v1/inventory/SKU-A")).json()
        assert inventory["reserved"] == 2  # the original's units plus the replacement's
        assert await count(engine, alerts, code="parcel_damaged") == 1
        timeline = (await admin.get(f"/api/v1/orders/{shipment['order_id']}/timeline")).json()
        kinds = [e["kind"] for e in timeline]
        assert "claim" in kinds
        assert [e["data"]["notice_kind"] for e in timeline if e["kind"] == "notice"] == [
            "reshipment"
        ]
        assert timeline[-1]["kind"] in ("state", "claim", "notice")
        closing = [e for e in timeline if e["kind"] == "state"][-1]
        assert claim.replacement_order_id in closing["summary"]
