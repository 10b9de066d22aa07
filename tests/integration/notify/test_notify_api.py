"""Notifications over an order's whole life through the real API, a real SMTP server
and the fake carrier process; a notifier stopped between sending and recording; the
dead-letter API; the backorder choice; the notifier inside the API process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import ADMIN, Served, serve
from tests.integration.carriers.conftest import FakeCarrier
from tests.integration.delivery.helpers import (
    FLOOR_PATH,
    WEBHOOK_SECRET,
    Tokens,
    allocate,
    auth,
    drive,
    image_bytes,
    order_body,
    push,
    seed,
)
from tests.integration.notify.conftest import Inbox, add_notification, notify_settings
from wcs.notify import store
from wcs.notify.worker import Notifier
from wcs.persistence.tables import notifications
from wcs.settings import MqttEndpoint, Settings

ADA = "ada@example.org"


def _settings(
    db_url: str, mqtt: MqttEndpoint, site: str, carrier: str, pod: Path, inbox: Inbox, **notify: Any
) -> Settings:
    return Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt.host}:{mqtt.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
        carrier_url=carrier,
        carrier_webhook_secret=WEBHOOK_SECRET,
        pod_dir=pod,
        pod_max_bytes=256 * 1024,
        notify=notify_settings(inbox, **notify),
    )


@pytest.fixture
def api(
    db_url: str,
    engine: AsyncEngine,
    mqtt_endpoint: MqttEndpoint,
    site: str,
    fake_carrier: FakeCarrier,
    tmp_path: Path,
    inbox: Inbox,
) -> Iterator[Served]:
    """The API without its own notifier: the test runs (and stops) one itself."""
    settings = _settings(db_url, mqtt_endpoint, site, fake_carrier.url, tmp_path / "pod", inbox)
    for served in serve(settings):
        fake_carrier.set_webhook(
            f"{served.base_url}/api/v1/shipments/{{shipment_id}}/tracking-events"
        )
        yield served


async def _drain(notifier: Notifier, engine: AsyncEngine) -> None:
    """Rounds until nothing is pending or being sent."""
    async with asyncio.timeout(10):
        while True:
            await notifier.run_once()
            async with engine.connect() as conn:
                counts = await store.undelivered_counts(conn)
                waiting_requests = await conn.scalar(
                    select(notifications.c.id).where(notifications.c.state == "pending").limit(1)
                )
            if counts["pending"] == 0 and counts["sending"] == 0 and waiting_requests is None:
                return
            await asyncio.sleep(0.03)


async def sku_without_stock(client: httpx.AsyncClient, sku: str) -> None:
    r = await client.put(
        f"/api/v1/skus/{sku}", json={"name": sku, "weight_g": 300, "dims_mm": [100, 80, 60]}
    )
    assert r.status_code in (200, 201), r.text


def _subjects(inbox: Inbox) -> list[str]:
    return [str(m["Subject"]) for m in inbox.to(ADA)]


async def test_an_orders_whole_life_mails_each_notice_once_across_a_notifier_crash(
    api: Served,
    engine: AsyncEngine,
    site: str,
    tokens: Tokens,
    carrier_http: httpx.AsyncClient,
    inbox: Inbox,
) -> None:
    settings = api.settings
    async with api.client() as admin:
        await seed(admin, {"SKU-A": [("A-01-02-1", 1)]})
        r = await admin.post(
            "/api/v1/orders",
            json=order_body("life-1", [("SKU-A", 3)]),
            headers={"Idempotency-Key": "life-1"},
        )
        assert r.status_code == 201 and r.json()["state"] == "backordered", r.text
        oid = r.json()["id"]

        notifier = Notifier(engine, settings)
        await notifier.open()
        try:
            await _drain(notifier, engine)
        finally:
            await notifier.close()
        assert _subjects(inbox) == ["Your order life-1 is waiting for stock"]

        async with api.client(token=tokens.customer) as customer:
            r = await customer.post(
                f"/api/v1/orders/{oid}/backorder-choice", json={"choice": "wait"}
            )
            assert r.status_code == 201 and r.json()["state"] == "backordered", r.text
        r = await admin.post(
            "/api/v1/inventory/receipts", json={"sku": "SKU-A", "location": "A-01-02-1", "qty": 5}
        )
        assert r.status_code == 201, r.text
        assert (await admin.get(f"/api/v1/orders/{oid}")).json()["state"] == "reserved"
        await drive(engine, site, oid, FLOOR_PATH)
        shipment = await allocate(admin, oid, tokens.dispatcher)
        r = await admin.put(
            f"/api/v1/shipments/{shipment['id']}/courier",
            json={"courier_id": "courier-1"},
            headers=auth(tokens.dispatcher),
        )
        assert r.status_code == 200, r.text
        r = await admin.post(
            f"/api/v1/shipments/{shipment['id']}/handover", headers=auth(tokens.dispatcher)
        )
        assert r.status_code == 200 and r.json()["status"] == "shipped", r.text

        # The notifier hands the "shipped" mail to the server and stops before recording it.
        reached = asyncio.Event()

        async def stop_here(item: store.Claimed) -> None:
            if item.kind == "shipped":
                reached.set()
                await asyncio.Event().wait()

        async with Notifier(engine, settings, before_mark=stop_here):
            await asyncio.wait_for(reached.wait(), 10)
        assert _subjects(inbox)[-1] == "Your order life-1 is on its way"
        shipped_id = str(inbox.to(ADA)[-1]["Message-ID"])

        # A new notifier takes over: the mail may have arrived, so it is not sent again.
        notifier = Notifier(engine, settings)
        await notifier.open()
        try:
            await _drain(notifier, engine)
            assert inbox.ids().count(shipped_id) == 1
            async with api.client(token=tokens.customer_service) as desk:
                r = await desk.get("/api/v1/notifications", params={"state": "unconfirmed"})
                assert r.status_code == 200, r.text
                (parked,) = r.json()
                assert parked["kind"] == "shipped" and parked["message_id"] == shipped_id
                assert shipped_id in parked["last_error"]
                r = await desk.post(f"/api/v1/notifications/{parked['id']}/confirm-sent")
                assert r.status_code == 200 and r.json()["state"] == "sent", r.text

            tracking_no = shipment["tracking_no"]
            await push(carrier_http, tracking_no, "in_transit", location="Leipzig hub")
            await push(carrier_http, tracking_no, "delayed", detail="storm")
            await push(carrier_http, tracking_no, "out_for_delivery", location="Munich")
            await _drain(notifier, engine)
            async with api.client(token=tokens.courier) as courier:
                files = {
                    "photo": ("door.jpg", image_bytes("JPEG", seed=3), "image/jpeg"),
                    "signature": ("sig.png", image_bytes("PNG", seed=4), "image/png"),
                }
                r = await courier.post(
                    f"/api/v1/shipments/{shipment['id']}/pod",
                    data={"receiver_name": "A. Lovelace"},
                    files=files,
                )
                assert r.status_code == 201, r.text
            await _drain(notifier, engine)
            # Restarted once more at the end: nothing is owed, nothing goes out again.
            await notifier.close()
            await notifier.open()
            await _drain(notifier, engine)
        finally:
            await notifier.close()

    assert _subjects(inbox) == [
        "Your order life-1 is waiting for stock",
        "Your order life-1 is on its way",
        "Your parcel is running late",
        "Your parcel arrives today",
        "Your order life-1 was delivered",
    ]
    ids = inbox.ids()
    assert len(ids) == len(set(ids)) == 5
    shipped = inbox.to(ADA)[1].get_body(("plain",))
    assert shipped is not None
    assert f"http://wcs.test/api/v1/track/{shipment['tracking_no']}" in shipped.get_content()
    listed = await store.list_notifications(engine, order_id=oid)
    assert {n["state"] for n in listed} == {"sent"} and len(listed) == 5
    assert sorted(n["message_id"] for n in listed) == sorted(ids)


async def test_dead_letters_are_listed_and_retried_through_the_api(
    api: Served, engine: AsyncEngine, tokens: Tokens, inbox: Inbox
) -> None:
    inbox.refuse_rcpt = {"nobody@example.org"}
    async with api.client() as admin:
        await sku_without_stock(admin, "SKU-A")
        body = order_body(
            "dead-1",
            [("SKU-A", 1)],
            customer={"name": "No Body", "email": "nobody@example.org", "ref": "cust-1"},
        )
        r = await admin.post("/api/v1/orders", json=body, headers={"Idempotency-Key": "dead-1"})
        assert r.status_code == 201, r.text
    notifier = Notifier(engine, api.settings)
    await notifier.open()
    try:
        await _drain(notifier, engine)
        async with api.client(token=tokens.dispatcher) as dispatcher:
            r = await dispatcher.get("/api/v1/notifications", params={"state": "dead"})
            assert r.status_code == 403
        async with api.client(token=tokens.supervisor) as supervisor:
            r = await supervisor.get("/api/v1/notifications", params={"state": "dead"})
            assert r.status_code == 200, r.text
            (dead,) = r.json()
            assert dead["recipient"] == "nobody@example.org" and "550" in dead["last_error"]
            oid = dead["order_id"]
            await add_notification(
                engine, oid, kind="order_exception", audience="staff", state="sent"
            )
            r = await supervisor.get(f"/api/v1/orders/{oid}/timeline")
            assert r.status_code == 200, r.text
            shown = [e for e in r.json() if e["kind"] == "notification"]
            assert [(e["data"]["audience"], e["data"]["state"]) for e in shown] == [
                ("customer", "dead"),
                ("staff", "sent"),
            ]
            assert shown[0]["data"]["notification_id"] == dead["id"]
            assert "dead" in shown[0]["summary"] and "550" in shown[0]["summary"]
            async with api.client(token=tokens.customer) as customer:
                r = await customer.get(f"/api/v1/orders/{oid}/timeline")
                assert r.status_code == 200, r.text
                (seen,) = [e for e in r.json() if e["kind"] == "notification"]
                assert seen["data"]["audience"] == "customer" and seen["data"]["state"] == "dead"
                assert seen["data"]["last_error"] is None and "550" not in seen["summary"]
            r = await supervisor.get("/api/v1/notifications", params={"state": "bogus"})
            assert r.status_code == 422
            inbox.refuse_rcpt.clear()
            r = await supervisor.post(f"/api/v1/notifications/{dead['id']}/retry")
            assert r.status_code == 200 and r.json()["state"] == "pending", r.text
            await _drain(notifier, engine)
            r = await supervisor.get(f"/api/v1/notifications/{dead['id']}")
            assert r.json()["state"] == "sent"
            r = await supervisor.get(f"/api/v1/orders/{oid}/timeline")
            now_sent = [e for e in r.json() if e["data"].get("notification_id") == dead["id"]]
            assert [e["data"]["state"] for e in now_sent] == ["sent"]
            assert "550" not in now_sent[0]["summary"]
            again = await supervisor.post(f"/api/v1/notifications/{dead['id']}/retry")
            assert again.status_code == 409
    finally:
        await notifier.close()
    assert [str(m["To"]) for m in inbox.messages] == ["nobody@example.org"]


async def test_backorder_substitute_and_cancel_choices(
    api: Served, engine: AsyncEngine, tokens: Tokens
) -> None:
    async with api.client() as admin:
        await sku_without_stock(admin, "SKU-A")
        await seed(admin, {"SKU-B": [("A-02-05-1", 4)]})
        orders = []
        for key in ("sub-1", "can-1"):
            r = await admin.post(
                "/api/v1/orders",
                json=order_body(key, [("SKU-A", 2)]),
                headers={"Idempotency-Key": key},
            )
            assert r.json()["state"] == "backordered"
            orders.append(r.json()["id"])
    sub, cancel = orders
    async with api.client(token=tokens.other_customer) as stranger:
        r = await stranger.post(f"/api/v1/orders/{sub}/backorder-choice", json={"choice": "cancel"})
        assert r.status_code == 404
    async with api.client(token=tokens.customer) as customer:
        r = await customer.post(
            f"/api/v1/orders/{sub}/backorder-choice", json={"choice": "substitute"}
        )
        assert r.status_code == 422 and "substitute_sku" in r.json()["detail"]
        r = await customer.post(
            f"/api/v1/orders/{sub}/backorder-choice",
            json={"choice": "substitute", "substitute_sku": "SKU-B"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "reserved" and r.json()["replaced_sku"] == "SKU-A"
        order = (await customer.get(f"/api/v1/orders/{sub}")).json()
        assert order["state"] == "reserved"
        assert [(ln["sku"], ln["qty"]) for ln in order["lines"]] == [("SKU-B", 2)]
        r = await customer.post(f"/api/v1/orders/{sub}/backorder-choice", json={"choice": "wait"})
        assert r.status_code == 409
    async with api.client(token=tokens.customer_service) as desk:
        r = await desk.post(f"/api/v1/orders/{cancel}/backorder-choice", json={"choice": "cancel"})
        assert r.status_code == 201 and r.json()["state"] == "cancelled", r.text
        r = await desk.get(f"/api/v1/orders/{cancel}/backorder-choices")
        assert [c["choice"] for c in r.json()] == ["cancel"]
    async with api.client() as admin:
        stock = (await admin.get("/api/v1/inventory/SKU-B")).json()
        assert stock["reserved"] == 2


async def test_language_preference_and_the_notifier_inside_the_api(
    db_url: str,
    engine: AsyncEngine,
    mqtt_endpoint: MqttEndpoint,
    site: str,
    fake_carrier: FakeCarrier,
    tmp_path: Path,
    inbox: Inbox,
    tokens: Tokens,
) -> None:
    settings = _settings(
        db_url, mqtt_endpoint, site, fake_carrier.url, tmp_path / "pod", inbox, enabled=True
    )
    for served in serve(settings):
        async with served.client(token=tokens.customer) as customer:
            r = await customer.put("/api/v1/notifications/preferences", json={"lang": "zh-CN"})
            assert r.status_code == 200 and r.json()["customer_ref"] == "cust-1", r.text
            r = await customer.put(
                "/api/v1/notifications/preferences", json={"lang": "en", "customer_ref": "cust-2"}
            )
            assert r.status_code == 422
        async with served.client() as admin:
            await sku_without_stock(admin, "SKU-A")
            r = await admin.post(
                "/api/v1/orders",
                json=order_body("pref-1", [("SKU-A", 1)]),
                headers={"Idempotency-Key": "pref-1"},
            )
            assert r.status_code == 201, r.text
        # Nobody runs a notifier here but the API process's own background task.
        await inbox.wait_for(1)
    (mail,) = inbox.messages
    assert mail["Content-Language"] == "zh-CN" and "补货" in str(mail["Subject"])
