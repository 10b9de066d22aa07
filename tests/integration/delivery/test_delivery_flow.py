"""From packed to closed over real HTTP: allocation with the fake carrier process, handover,
signed carrier webhooks, courier proof of delivery, customer sign-off."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served
from tests.integration.carriers.conftest import FakeCarrier
from tests.integration.delivery.helpers import (
    BERLIN,
    PROBLEM,
    Tokens,
    allocate,
    auth,
    files_under,
    image_bytes,
    order_body,
    packed_order,
    push,
    seed,
    sha256,
)
from wcs.contract.topics import Topics
from wcs.mqtt.client import make_client
from wcs.persistence.tables import customer_notices
from wcs.settings import MqttEndpoint

STOCK = {"SKU-A": [("A-01-02-1", 10)], "SKU-B": [("A-02-05-1", 4)]}
PERSONAL = ("Ada", "Lovelace", "1234567", "ada@example.org", "Marienplatz", "Invalidenstr")


async def _state(client: httpx.AsyncClient, order_id: str) -> str:
    r = await client.get(f"/api/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


async def _retained_state(
    endpoint: MqttEndpoint, site: str, order_id: str, seq: int
) -> dict[str, Any]:
    """The order/{id}/state message numbered ``seq`` or later: the retained one, or the
    ones the outbox relay publishes after it while it catches up (it runs on its own
    interval, so at subscription time the retained message may be an earlier state)."""
    topic = Topics(site).order_state(order_id)
    async with make_client(endpoint) as mqtt:
        await mqtt.subscribe(topic, qos=1)
        async for message in mqtt.messages:
            payload: dict[str, Any] = json.loads(bytes(message.payload))
            if payload["seq"] >= seq:
                return payload
    raise AssertionError("unreachable")


async def test_packed_to_closed_with_carrier_webhooks_pod_and_sign_off(
    api: Served,
    engine: AsyncEngine,
    site: str,
    tokens: Tokens,
    fake_carrier: FakeCarrier,
    carrier_http: httpx.AsyncClient,
    mqtt_endpoint: MqttEndpoint,
) -> None:
    async with api.client() as admin, api.client(token=None) as anon:
        await seed(admin, STOCK)
        order = await packed_order(
            admin, engine, site, order_body("e2e-1", [("SKU-A", 2), ("SKU-B", 1)])
        )
        oid = order["id"]

        shipment = await allocate(admin, oid, tokens.dispatcher)
        assert shipment["status"] == "booked" and not shipment["own_fleet"]
        assert shipment["tracking_no"].startswith("FC")
        assert shipment["label"]["data"].startswith("^XA") and shipment["choice"]
        assert await _state(admin, oid) == "allocated"
        again = await admin.post(
            f"/api/v1/orders/{oid}/allocate", json={}, headers=auth(tokens.dispatcher)
        )
        assert again.status_code == 200 and again.json()["replayed"] is True
        assert again.json()["shipment"]["id"] == shipment["id"]
        assert fake_carrier.stats()["bookings"][shipment["id"]] == 1

        # The carrier's last-mile driver uses our courier app for the proof of delivery.
        r = await admin.put(
            f"/api/v1/shipments/{shipment['id']}/courier",
            json={"courier_id": "courier-1"},
            headers=auth(tokens.dispatcher),
        )
        assert r.status_code == 200 and r.json()["courier_id"] == "courier-1"
        r = await admin.post(
            f"/api/v1/shipments/{shipment['id']}/handover", headers=auth(tokens.dispatcher)
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "shipped" and r.json()["delivery_due"]
        assert await _state(admin, oid) == "shipped"

        tracking_no = shipment["tracking_no"]
        for status, location in (("in_transit", "Leipzig hub"), ("out_for_delivery", "Munich")):
            pushed = await push(carrier_http, tracking_no, status, location=location)
            assert pushed["webhook"]["delivered"] is True, pushed
            assert await _state(admin, oid) == status

        photo, signature = image_bytes("JPEG", seed=1), image_bytes("PNG", seed=2)
        async with api.client(token=tokens.courier) as courier:
            form = {"receiver_name": "A. Lovelace", "lat": "48.137", "lon": "11.575"}
            files = {
                "photo": ("door.jpg", photo, "image/jpeg"),
                "signature": ("sig.png", signature, "image/png"),
            }
            r = await courier.post(
                f"/api/v1/shipments/{shipment['id']}/pod", data=form, files=files
            )
            assert r.status_code == 201, r.text
            pod = r.json()
            assert pod["photo"]["sha256"] == sha256(photo)
            assert pod["signature"]["sha256"] == sha256(signature)
            assert pod["photo"]["media_type"] == "image/jpeg"
            stored = files_under(api.settings.pod_dir)
            assert sorted(sha256(p.read_bytes()) for p in stored) == sorted(
                [sha256(photo), sha256(signature)]
            )
            # The phone retries on a bad network: same proof, nothing new.
            again = await courier.post(
                f"/api/v1/shipments/{shipment['id']}/pod", data=form, files=files
            )
            assert again.status_code == 200 and again.json() == pod
            assert files_under(api.settings.pod_dir) == stored
        assert await _state(admin, oid) == "delivered"

        public = await anon.get(f"/api/v1/track/{tracking_no}")
        assert public.status_code == 200, public.text
        view = public.json()
        assert view["status"] == "delivered"
        assert [e["status"] for e in view["events"]] == [
            "booked",
            "shipped",
            "in_transit",
            "out_for_delivery",
            "delivered",
        ]
        assert view["destination"] == {"city": "Munich", "country": "DE"}
        assert not [word for word in PERSONAL if word in public.text], public.text
        assert (await anon.get("/api/v1/track/FC000000000000")).status_code == 404

        async with api.client(token=tokens.customer) as customer:
            r = await customer.post(
                f"/api/v1/orders/{oid}/confirm-receipt",
                json={"rating": 5, "comment": "fast and friendly"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "closed"
            twice = await customer.post(f"/api/v1/orders/{oid}/confirm-receipt", json={"rating": 4})
            assert twice.status_code == 409 and twice.headers["content-type"] == PROBLEM

            timeline = (await customer.get(f"/api/v1/orders/{oid}/timeline")).json()
        states = [e["data"]["to"] for e in timeline if e["kind"] == "state"]
        assert states == [
            "received",
            "validated",
            "reserved",
            "pick_planned",
            "picking",
            "picked",
            "qc_passed",
            "packing",
            "packed",
            "allocated",
            "shipped",
            "in_transit",
            "out_for_delivery",
            "delivered",
            "closed",
        ]
        kinds = {e["kind"] for e in timeline}
        assert {"shipment", "tracking", "pod", "sign_off"} <= kinds
        sign_off = next(e for e in timeline if e["kind"] == "sign_off")
        assert sign_off["data"]["rating"] == 5
        assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)

    last = await asyncio.wait_for(_retained_state(mqtt_endpoint, site, oid, len(states)), 10)
    assert (last["to"], last["seq"]) == ("closed", len(states))


async def test_own_fleet_delivery_failure_then_redelivery(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin:
        await seed(admin, STOCK)
        order = await packed_order(
            admin, engine, site, order_body("fleet-1", [("SKU-A", 1)], address=BERLIN)
        )
        oid = order["id"]
        shipment = await allocate(admin, oid, tokens.dispatcher)
        assert shipment["own_fleet"] and shipment["carrier"] == "own_fleet"
        assert shipment["tracking_no"].startswith("OF")
        sid = shipment["id"]

        r = await admin.post(f"/api/v1/shipments/{sid}/handover", headers=auth(tokens.dispatcher))
        assert r.status_code == 409 and "assign one first" in r.json()["detail"]
        r = await admin.put(
            f"/api/v1/shipments/{sid}/courier",
            json={"courier_id": "courier-1"},
            headers=auth(tokens.dispatcher),
        )
        assert r.status_code == 200
        r = await admin.post(f"/api/v1/shipments/{sid}/handover", headers=auth(tokens.dispatcher))
        assert r.status_code == 200 and await _state(admin, oid) == "shipped"

        async with api.client(token=tokens.courier) as courier:
            mine = (await courier.get("/api/v1/shipments")).json()
            assert [s["id"] for s in mine] == [sid]
            assert mine[0]["deliver_to"]["line1"] == BERLIN["line1"]
            steps = [
                ("out_for_delivery", None, "out_for_delivery"),
                ("delivery_failed", "nobody home", "delivery_failed"),
                ("out_for_delivery", "second attempt", "out_for_delivery"),
            ]
            for n, (status, detail, expected) in enumerate(steps):
                r = await courier.post(
                    f"/api/v1/shipments/{sid}/courier-events",
                    json={"status": status, "detail": detail, "event_id": f"app-{n}"},
                )
                assert r.status_code == 200, r.text
                assert r.json()["outcome"] == "applied" and r.json()["order_state"] == expected
            replay = await courier.post(
                f"/api/v1/shipments/{sid}/courier-events",
                json={"status": "delivery_failed", "detail": "nobody home", "event_id": "app-1"},
            )
            assert replay.status_code == 200 and replay.json()["duplicate"] is True
            assert await _state(admin, oid) == "out_for_delivery"

        async with api.client(token=tokens.other_courier) as stranger:
            r = await stranger.post(
                f"/api/v1/shipments/{sid}/courier-events", json={"status": "delayed"}
            )
            assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
            assert (await stranger.get("/api/v1/shipments")).json() == []
            assert (await stranger.get(f"/api/v1/shipments/{sid}")).status_code == 403

        async with api.client(token=tokens.courier) as courier:
            r = await courier.post(
                f"/api/v1/shipments/{sid}/pod",
                data={"receiver_name": "neighbour, flat 2"},
                files={"signature": ("s.webp", image_bytes("WEBP", seed=5), "image/webp")},
            )
            assert r.status_code == 201, r.text
            assert r.json()["signature"]["media_type"] == "image/webp"
        assert await _state(admin, oid) == "delivered"

        timeline = (await admin.get(f"/api/v1/orders/{oid}/timeline")).json()
        tracked = [e["data"]["status"] for e in timeline if e["kind"] == "tracking"]
        assert tracked == ["out_for_delivery", "delivery_failed", "out_for_delivery"]
        notices = [e for e in timeline if e["kind"] == "notice"]
        assert [n["data"]["notice_kind"] for n in notices] == ["delivery_failed"]
        assert "nobody home" in notices[0]["summary"]


async def test_rebooking_cancels_the_old_label_and_keeps_one_live_shipment(
    api: Served,
    engine: AsyncEngine,
    site: str,
    tokens: Tokens,
    carrier_http: httpx.AsyncClient,
) -> None:
    async with api.client() as admin:
        await seed(admin, STOCK)
        order = await packed_order(admin, engine, site, order_body("rebook-1", [("SKU-B", 1)]))
        first = await allocate(admin, order["id"], tokens.dispatcher)
        second = await allocate(
            admin, order["id"], tokens.dispatcher, rebook=True, exclude=[first["carrier"]]
        )
        assert second["id"] != first["id"] and second["carrier"] != first["carrier"]
        old = (
            await admin.get(f"/api/v1/shipments/{first['id']}", headers=auth(tokens.dispatcher))
        ).json()
        assert old["status"] == "cancelled"
        status = (await carrier_http.get(f"/v1/shipments/{first['tracking_no']}")).json()
        assert status["status"] == "cancelled"
        live = (await admin.get("/api/v1/shipments", params={"order_id": order["id"]})).json()
        assert sorted(s["status"] for s in live) == ["booked", "cancelled"]
        assert (await _state(admin, order["id"])) == "allocated"

        r = await admin.post(
            f"/api/v1/orders/{order['id']}/allocate",
            json={"carrier": "nosuchcarrier"},
            headers=auth(tokens.dispatcher),
        )
        assert r.status_code == 200  # allocated and no rebook asked: the current booking
        r = await admin.post(
            f"/api/v1/orders/{order['id']}/allocate",
            json={"carrier": "nosuchcarrier", "rebook": True},
            headers=auth(tokens.dispatcher),
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
        assert "not in the carrier rules" in r.json()["detail"]


async def test_allocate_refuses_orders_that_are_not_packed(
    api: Served, tokens: Tokens, engine: AsyncEngine
) -> None:
    async with api.client() as admin:
        await seed(admin, STOCK)
        r = await admin.post(
            "/api/v1/orders",
            json=order_body("early-1", [("SKU-A", 1)]),
            headers={"Idempotency-Key": "early-1"},
        )
        oid = r.json()["id"]
        r = await admin.post(
            f"/api/v1/orders/{oid}/allocate", json={}, headers=auth(tokens.dispatcher)
        )
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        assert "only a packed order gets a carrier" in r.json()["detail"]
        assert (await admin.get("/api/v1/shipments", params={"order_id": oid})).json() == []
    async with engine.connect() as conn:
        assert (await conn.execute(select(customer_notices))).all() == []
