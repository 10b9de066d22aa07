"""Proof-of-delivery uploads: who may send them, size and type limits, broken multipart,
idempotent retries - and that a refused upload leaves nothing on disk or in the DB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served
from tests.integration.delivery.helpers import (
    PROBLEM,
    Tokens,
    allocate,
    auth,
    files_under,
    image_bytes,
    order_body,
    packed_order,
    seed,
)
from wcs.persistence.tables import proofs_of_delivery

BOUNDARY = "wcs-test-boundary-7f3a"


async def out_for_delivery(
    client: httpx.AsyncClient, engine: AsyncEngine, site: str, tokens: Tokens, key: str
) -> dict[str, Any]:
    await seed(client, {"SKU-A": [("A-01-02-1", 10)]})
    order = await packed_order(client, engine, site, order_body(key, [("SKU-A", 1)]))
    shipment = await allocate(client, order["id"], tokens.dispatcher)
    sid = shipment["id"]
    dispatcher = auth(tokens.dispatcher)
    r = await client.put(
        f"/api/v1/shipments/{sid}/courier", json={"courier_id": "courier-1"}, headers=dispatcher
    )
    assert r.status_code == 200, r.text
    assert (await client.post(f"/api/v1/shipments/{sid}/handover", headers=dispatcher)).is_success
    r = await client.post(
        f"/api/v1/shipments/{sid}/courier-events",
        json={"status": "out_for_delivery"},
        headers=auth(tokens.courier),
    )
    assert r.status_code == 200, r.text
    return shipment


def multipart(
    parts: list[tuple[str, str | None, str | None, bytes]], *, close: bool = True
) -> bytes:
    """Hand-built multipart body: (name, filename, content type, data) per part."""
    out = b""
    for name, filename, ctype, data in parts:
        out += f"--{BOUNDARY}\r\n".encode()
        disposition = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += disposition.encode() + b"\r\n"
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    if close:
        out += f"--{BOUNDARY}--\r\n".encode()
    return out


async def nothing_stored(
    client: httpx.AsyncClient, engine: AsyncEngine, pod_dir: Path, shipment: dict[str, Any]
) -> None:
    assert files_under(pod_dir) == []
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(proofs_of_delivery)) == 0
    r = await client.get(f"/api/v1/shipments/{shipment['id']}/pod")
    assert r.status_code == 404
    order = (await client.get(f"/api/v1/orders/{shipment['order_id']}")).json()
    assert order["state"] == "out_for_delivery"


JPEG = image_bytes("JPEG", seed=3)
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
NAME = ("receiver_name", None, None, b"Grace Hopper")

# (case, body bytes, content type, expected status, words in the problem detail)
BAD_UPLOADS: list[tuple[str, bytes, str, int, str]] = [
    (
        "file over pod_max_bytes",
        multipart([NAME, ("photo", "big.jpg", "image/jpeg", JPEG + b"\0" * 300_000)]),
        f"multipart/form-data; boundary={BOUNDARY}",
        413,
        "limit is 262144 bytes",
    ),
    (
        "body over the upload cap",
        multipart([NAME, ("photo", "huge.jpg", "image/jpeg", JPEG + b"\0" * 400_000)]),
        f"multipart/form-data; boundary={BOUNDARY}",
        413,
        "limit",
    ),
    (
        "PDF renamed .jpg",
        multipart([NAME, ("photo", "scan.jpg", "image/jpeg", PDF)]),
        f"multipart/form-data; boundary={BOUNDARY}",
        415,
        "PDF document",
    ),
    (
        "text renamed .jpg",
        multipart([NAME, ("signature", "sig.jpg", "image/jpeg", b"signed: G. Hopper\n")]),
        f"multipart/form-data; boundary={BOUNDARY}",
        415,
        "is text, not a JPEG",
    ),
    (
        "truncated multipart",
        multipart([NAME, ("photo", "door.jpg", "image/jpeg", JPEG)], close=False)[:-200],
        f"multipart/form-data; boundary={BOUNDARY}",
        400,
        "incomplete",
    ),
    (
        "no boundary",
        multipart([NAME, ("photo", "door.jpg", "image/jpeg", JPEG)]),
        "multipart/form-data",
        400,
        "boundary",
    ),
    (
        "garbled part headers",
        f"--{BOUNDARY}\r\nthis is not a header\r\n\r\nxx\r\n--{BOUNDARY}--\r\n".encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
        400,
        "not valid multipart",
    ),
    (
        "missing file",
        multipart([NAME]),
        f"multipart/form-data; boundary={BOUNDARY}",
        422,
        "no image in the upload",
    ),
    (
        "empty file",
        multipart([NAME, ("photo", "door.jpg", "image/jpeg", b"")]),
        f"multipart/form-data; boundary={BOUNDARY}",
        422,
        "is empty",
    ),
    (
        "image sent as a text field",
        multipart([NAME, ("photo", None, None, b"not a file part")]),
        f"multipart/form-data; boundary={BOUNDARY}",
        422,
        "must be a file part",
    ),
    (
        "missing receiver",
        multipart([("photo", "door.jpg", "image/jpeg", JPEG)]),
        f"multipart/form-data; boundary={BOUNDARY}",
        422,
        "receiver_name is missing",
    ),
    (
        "invisible receiver",
        multipart(
            [
                ("receiver_name", None, None, "\u200b\u2060".encode()),
                ("photo", "door.jpg", "image/jpeg", JPEG),
            ]
        ),
        f"multipart/form-data; boundary={BOUNDARY}",
        422,
        "receiver_name has no visible character",
    ),
    (
        "NUL in the receiver",
        multipart(
            [
                ("receiver_name", None, None, b"Grace\x00Hopper"),
                ("photo", "door.jpg", "image/jpeg", JPEG),
            ]
        ),
        f"multipart/form-data; boundary={BOUNDARY}",
        422,
        "receiver_name contains a control character (NUL)",
    ),
    (
        "unknown field",
        multipart([NAME, ("photo", "door.jpg", "image/jpeg", JPEG), ("tip", None, None, b"5")]),
        f"multipart/form-data; boundary={BOUNDARY}",
        422,
        "unknown field(s) tip",
    ),
    (
        "two photos",
        multipart(
            [
                NAME,
                ("photo", "a.jpg", "image/jpeg", JPEG),
                ("photo", "b.jpg", "image/jpeg", image_bytes("JPEG", seed=9)),
            ]
        ),
        f"multipart/form-data; boundary={BOUNDARY}",
        422,
        "send one photo",
    ),
    (
        "JSON instead of a form",
        b'{"receiver_name": "x"}',
        "application/json",
        415,
        "multipart/form-data",
    ),
]


async def test_bad_uploads_are_refused_with_a_clear_problem_and_nothing_stored(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin, api.client(token=tokens.courier) as courier:
        # One parcel for every case: a refused upload must leave it exactly as it was.
        shipment = await out_for_delivery(admin, engine, site, tokens, "bad-uploads")
        for case, body, ctype, status, mentions in BAD_UPLOADS:
            r = await courier.post(
                f"/api/v1/shipments/{shipment['id']}/pod",
                content=body,
                headers={"Content-Type": ctype},
            )
            assert r.status_code == status, (case, r.text[:400])
            assert r.headers["content-type"] == PROBLEM, case
            assert mentions in r.json()["detail"], (case, r.json())
            await nothing_stored(admin, engine, api.settings.pod_dir, shipment)


async def test_only_the_assigned_courier_may_deliver(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    files = {"photo": ("door.jpg", JPEG, "image/jpeg")}
    data = {"receiver_name": "Grace Hopper"}
    async with api.client() as admin:
        shipment = await out_for_delivery(admin, engine, site, tokens, "pod-auth")
        url = f"/api/v1/shipments/{shipment['id']}/pod"
        for who, token, status in (
            ("other courier", tokens.other_courier, 403),
            ("customer", tokens.customer, 403),
            ("dispatcher", tokens.dispatcher, 403),
            ("admin without courier id", None, 403),
        ):
            headers = auth(token) if token else {}
            r = await admin.post(url, data=data, files=files, headers=headers)
            assert r.status_code == status, (who, r.text)
            assert r.headers["content-type"] == PROBLEM
        async with api.client(token=None) as anon:
            r = await anon.post(url, data=data, files=files)
            assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
        await nothing_stored(admin, engine, api.settings.pod_dir, shipment)


async def test_a_different_proof_after_delivery_is_refused(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin, api.client(token=tokens.courier) as courier:
        shipment = await out_for_delivery(admin, engine, site, tokens, "pod-twice")
        url = f"/api/v1/shipments/{shipment['id']}/pod"
        first = await courier.post(
            url,
            data={"receiver_name": "Grace Hopper", "delivered_at": "2026-01-02T10:00:00+01:00"},
            files={"photo": ("door.jpg", JPEG, "image/jpeg")},
        )
        assert first.status_code == 201, first.text
        assert first.json()["delivered_at"].startswith("2026-01-02T09:00:00")
        stored = files_under(api.settings.pod_dir)
        assert len(stored) == 1 and stored[0].name.startswith("photo-")
        other = await courier.post(
            url,
            data={"receiver_name": "Grace Hopper"},
            files={"photo": ("door2.jpg", image_bytes("JPEG", seed=42), "image/jpeg")},
        )
        assert other.status_code == 409 and other.headers["content-type"] == PROBLEM
        assert "already has a proof of delivery" in other.json()["detail"]
        assert files_under(api.settings.pod_dir) == stored
        seen = (await admin.get(f"/api/v1/shipments/{shipment['id']}/pod")).json()
        assert seen == first.json()
        async with api.client(token=tokens.customer) as customer:
            mine = await customer.get(f"/api/v1/shipments/{shipment['id']}/pod")
            assert mine.status_code == 200
        async with api.client(token=tokens.other_customer) as stranger:
            theirs = await stranger.get(f"/api/v1/shipments/{shipment['id']}/pod")
            assert theirs.status_code == 404


async def test_proof_before_out_for_delivery_is_refused(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin, api.client(token=tokens.courier) as courier:
        await seed(admin, {"SKU-A": [("A-01-02-1", 10)]})
        order = await packed_order(admin, engine, site, order_body("pod-early", [("SKU-A", 1)]))
        shipment = await allocate(admin, order["id"], tokens.dispatcher)
        r = await admin.put(
            f"/api/v1/shipments/{shipment['id']}/courier",
            json={"courier_id": "courier-1"},
            headers=auth(tokens.dispatcher),
        )
        assert r.status_code == 200
        r = await courier.post(
            f"/api/v1/shipments/{shipment['id']}/pod",
            data={"receiver_name": "Grace Hopper"},
            files={"photo": ("door.jpg", JPEG, "image/jpeg")},
        )
        assert r.status_code == 409 and "out for delivery" in r.json()["detail"]
        assert files_under(api.settings.pod_dir) == []
