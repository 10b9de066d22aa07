"""Every oversized body is a 413 problem: declared, streamed (chunked) or lying about
its length, on JSON endpoints and upload endpoints alike."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.integration.api.conftest import Served

PROBLEM = "application/problem+json"
JSON_LIMIT = 256 * 1024


async def chunks(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def sku(name_length: int) -> bytes:
    return json.dumps({"name": "n" * name_length, "weight_g": 1, "dims_mm": [1, 1, 1]}).encode()


@pytest.mark.parametrize("size", [JSON_LIMIT + 1, 4 * JSON_LIMIT, 20 * 1024 * 1024])
async def test_a_chunked_json_body_over_the_limit_is_413(api: Served, size: int) -> None:
    async with api.client() as client:
        r = await client.put(
            "/api/v1/skus/SKU-BIG",
            content=chunks(sku(size)),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413, r.text[:300]
        assert r.headers["content-type"] == PROBLEM
        assert (await client.get("/api/v1/skus/SKU-BIG")).status_code == 404


async def test_a_chunked_upload_over_its_limit_is_413(api: Served) -> None:
    boundary = "xyz"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + b"\xff" * (6 * 1024 * 1024)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    async with api.client() as client:
        r = await client.post(
            "/api/v1/shipments/s-1/pod",
            content=chunks(body, 64 * 1024),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert r.status_code == 413, r.text[:300]
        assert r.headers["content-type"] == PROBLEM


async def test_a_chunked_body_within_the_limit_is_read_whole(api: Served) -> None:
    async with api.client() as client:
        r = await client.put(
            "/api/v1/skus/SKU-CHUNKED",
            content=chunks(sku(200), 7),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code in (200, 201), r.text[:300]
        assert (await client.get("/api/v1/skus/SKU-CHUNKED")).json()["name"] == "n" * 200


async def test_a_declared_length_over_the_limit_is_413_before_reading(api: Served) -> None:
    async with api.client() as client:
        r = await client.put(
            "/api/v1/skus/SKU-DECLARED",
            content=sku(JSON_LIMIT),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
