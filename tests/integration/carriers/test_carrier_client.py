"""CarrierClient against the fake carrier running as its own process, over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.carriers.conftest import (
    WEBHOOK_SECRET,
    FakeCarrier,
    WebhookReceiver,
    start_process,
    stop,
)
from tests.ports import free_port
from wcs.carriers.client import CarrierClient, Recipient, RetryPolicy, ShipmentRequest
from wcs.carriers.signing import SIGNATURE_HEADER, verify
from wcs.errors import (
    CarrierRejected,
    CarrierUnavailable,
    IdempotencyConflict,
    NotFound,
    SignatureInvalid,
)

FAST_RETRY = RetryPolicy(attempts=5, initial_s=0.02, max_s=0.1, deadline_s=10)


def shipment(**changes: Any) -> ShipmentRequest:
    base = ShipmentRequest(
        shipment_id=f"shp_{uuid.uuid4().hex[:12]}",
        service="express",
        weight_g=1800,
        dims_mm=(320, 240, 110),
        recipient=Recipient(
            name="Ada Lovelace",
            line1="Invalidenstr. 117",
            city="Berlin",
            postal_code="10115",
            country="DE",
            phone="+49 30 1234567",
        ),
    )
    return dataclasses.replace(base, **changes)


def client(carrier: FakeCarrier, **kwargs: Any) -> CarrierClient:
    options: dict[str, Any] = {"retry": FAST_RETRY, "rng": random.Random(1)} | kwargs
    return CarrierClient(carrier.url, carrier="fakecarrier", **options)


async def test_booking_returns_tracking_number_label_and_cost(carrier: FakeCarrier) -> None:
    request = shipment()
    async with client(carrier) as api:
        booking = await api.book(request)
        status = await api.status(booking.tracking_no)

    assert booking.tracking_no.startswith("FC")
    assert booking.shipment_id == request.shipment_id
    assert booking.service == "express"
    assert booking.label_format == "zpl"
    assert booking.label_data.startswith("^XA")
    assert booking.label_data.endswith("^XZ")
    assert booking.tracking_no in booking.label_data
    assert booking.cost > Decimal(0)
    assert booking.currency == "EUR"
    assert not booking.replayed
    assert status.tracking_no == booking.tracking_no
    assert status.status == "booked"
    assert carrier.stats()["bookings"][request.shipment_id] == 1


async def test_injected_503s_are_retried_and_the_booking_succeeds(carrier: FakeCarrier) -> None:
    carrier.faults(fail_next=3)
    request = shipment()
    async with client(carrier) as api:
        booking = await api.book(request)

    stats = carrier.stats()
    assert booking.tracking_no
    assert stats["attempts"][request.shipment_id] == 4  # three 503s, then success
    assert stats["bookings"][request.shipment_id] == 1


async def test_rate_limit_is_retried_after_the_carriers_retry_after(
    carrier: FakeCarrier,
) -> None:
    carrier.faults(fail_next=1, fail_status=429, retry_after_s=0.4)
    request = shipment()
    started = time.monotonic()
    async with client(carrier) as api:  # its own backoff would wait at most 0.02 s
        booking = await api.book(request)
    assert time.monotonic() - started >= 0.4
    assert booking.tracking_no
    assert carrier.stats()["attempts"][request.shipment_id] == 2


async def test_retry_after_beyond_the_deadline_gives_up_at_once(carrier: FakeCarrier) -> None:
    carrier.faults(fail_next=1, fail_status=503, retry_after_s=30)
    policy = RetryPolicy(attempts=5, initial_s=0.01, max_s=0.05, deadline_s=2)
    started = time.monotonic()
    async with client(carrier, retry=policy) as api:
        with pytest.raises(CarrierUnavailable, match="1 attempt in"):
            await api.book(shipment())
    assert time.monotonic() - started < 1.5


def test_backoff_is_capped_full_jitter() -> None:
    policy = RetryPolicy(initial_s=0.5, max_s=4.0)
    rng = random.Random(3)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        waits = [policy.backoff(attempt, rng) for _ in range(300)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > 0.9 * ceiling  # spread over the whole range, not clustered
        assert min(waits) < 0.1 * ceiling


async def test_a_timed_out_booking_retried_is_not_booked_twice(carrier: FakeCarrier) -> None:
    # The carrier books, then answers too late: the client times out and retries.
    carrier.faults(delay_next=1, delay_s=1.5)
    request = shipment()
    async with client(carrier, timeout_s=0.4) as api:
        booking = await api.book(request)
        again = await api.book(request)

    stats = carrier.stats()
    assert stats["attempts"][request.shipment_id] == 3  # timed out, retried, asked again
    assert stats["bookings"][request.shipment_id] == 1
    assert booking.replayed  # the retry got the booking the lost answer belonged to
    assert again.tracking_no == booking.tracking_no


async def test_concurrent_bookings_of_one_shipment_book_once(carrier: FakeCarrier) -> None:
    request = shipment()
    async with client(carrier) as api:
        bookings = await asyncio.gather(*(api.book(request) for _ in range(5)))

    assert len({b.tracking_no for b in bookings}) == 1
    assert carrier.stats()["bookings"][request.shipment_id] == 1


async def test_same_key_with_another_body_is_a_conflict(carrier: FakeCarrier) -> None:
    first = shipment()
    changed = shipment(weight_g=9000, shipment_id=first.shipment_id)
    async with client(carrier) as api:
        await api.book(first)
        with pytest.raises(IdempotencyConflict, match=first.shipment_id):
            await api.book(changed)

    async with httpx.AsyncClient(base_url=carrier.url) as raw:
        response = await raw.post(
            "/v1/shipments",
            json=changed.to_json(),
            headers={"Idempotency-Key": first.shipment_id},
        )
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_conflict"
    assert carrier.stats()["bookings"][first.shipment_id] == 1


async def test_carrier_down_for_longer_than_the_retries_is_unavailable(
    carrier: FakeCarrier,
) -> None:
    carrier.faults(fail_next=50)
    request = shipment()
    policy = RetryPolicy(attempts=3, initial_s=0.01, max_s=0.05, deadline_s=5)
    async with client(carrier, retry=policy) as api:
        with pytest.raises(CarrierUnavailable, match=r"3 attempts.*HTTP 503") as caught:
            await api.book(request)

    assert "another carrier" in caught.value.message
    stats = carrier.stats()
    assert stats["attempts"][request.shipment_id] == 3
    assert request.shipment_id not in stats["bookings"]


async def test_nothing_listening_is_unavailable_not_an_httpx_error() -> None:
    policy = RetryPolicy(attempts=2, initial_s=0.01, max_s=0.02, deadline_s=5)
    async with CarrierClient(f"http://127.0.0.1:{free_port()}", retry=policy) as api:
        with pytest.raises(CarrierUnavailable, match="connection failed"):
            await api.book(shipment())


async def test_invalid_shipment_is_rejected_without_retrying(carrier: FakeCarrier) -> None:
    request = shipment(recipient=Recipient("", "x", "y", "1", "DE"))
    async with client(carrier) as api:
        with pytest.raises(CarrierRejected, match="422"):
            await api.book(request)
    assert carrier.stats()["attempts"][request.shipment_id] == 1


async def test_unknown_tracking_number_is_not_found(carrier: FakeCarrier) -> None:
    async with client(carrier) as api:
        with pytest.raises(NotFound):
            await api.status("FC000")


async def test_tracking_event_is_pushed_signed_to_the_webhook(
    carrier: FakeCarrier, webhook_receiver: WebhookReceiver
) -> None:
    carrier.set_webhook(f"{webhook_receiver.url}/api/v1/shipments/{{shipment_id}}/tracking-events")
    request = shipment()
    async with client(carrier) as api:
        booking = await api.book(request)
        async with httpx.AsyncClient(base_url=carrier.url) as admin:
            pushed = await admin.post(
                f"/admin/shipments/{booking.tracking_no}/events",
                json={"status": "in_transit", "detail": "left hub", "location": "Berlin"},
            )
        assert pushed.status_code == 200
        assert pushed.json()["webhook"]["delivered"] is True
        status = await api.status(booking.tracking_no)
        # Once the parcel moves, the carrier no longer cancels it.
        with pytest.raises(CarrierRejected, match="in_transit"):
            await api.cancel(booking.tracking_no)

    assert webhook_receiver.arrived.wait(5)
    [hit] = webhook_receiver.received
    assert hit.path == f"/api/v1/shipments/{request.shipment_id}/tracking-events"
    header = hit.headers[SIGNATURE_HEADER.lower()]
    verify(hit.body, header, WEBHOOK_SECRET)
    with pytest.raises(SignatureInvalid):
        verify(hit.body, header, "some-other-secret")
    with pytest.raises(SignatureInvalid):
        verify(hit.body.replace(b"in_transit", b"delivered"), header, WEBHOOK_SECRET)
    event = json.loads(hit.body)
    assert event["status"] == "in_transit"
    assert event["tracking_no"] == booking.tracking_no
    assert event["shipment_id"] == request.shipment_id
    assert status.status == "in_transit"
    assert [e.status for e in status.events] == ["in_transit"]


async def test_webhook_receiver_down_is_reported_not_fatal(carrier: FakeCarrier) -> None:
    carrier.set_webhook(f"http://127.0.0.1:{free_port()}/hook")
    async with client(carrier) as api:
        booking = await api.book(shipment())
        async with httpx.AsyncClient(base_url=carrier.url) as admin:
            pushed = await admin.post(
                f"/admin/shipments/{booking.tracking_no}/events", json={"status": "delayed"}
            )
        status = await api.status(booking.tracking_no)
    webhook = pushed.json()["webhook"]
    assert pushed.status_code == 200
    assert webhook["delivered"] is False
    assert webhook["attempts"] == 3
    assert "ConnectError" in webhook["error"]
    assert status.status == "delayed"


async def test_cancel_before_pickup_is_idempotent(carrier: FakeCarrier) -> None:
    async with client(carrier) as api:
        booking = await api.book(shipment())
        await api.cancel(booking.tracking_no)
        await api.cancel(booking.tracking_no)
        status = await api.status(booking.tracking_no)
    assert status.status == "cancelled"


def test_wcs_fake_carrier_command_serves(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "cli.log"
    args = [sys.executable, "-m", "cli", "fake-carrier", "--port", str(port)]
    proc = start_process(args, url, log)
    try:
        assert httpx.get(f"{url}/healthz", timeout=5).json()["status"] == "ok"
    finally:
        stop(proc)
