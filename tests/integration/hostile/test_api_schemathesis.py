"""The whole OpenAPI surface under generated hostile requests: schemathesis with
``--checks all``, on SQLite and on PostgreSQL.

A real uvicorn server with the admin token (so the authenticated operations are
exercised beyond their 401) and some data (so requests that name it go past the
404s). schemathesis runs as its command line does, every phase (examples, coverage,
fuzzing, stateful) with a bounded number of examples per operation
(``WCS_SCHEMATHESIS_EXAMPLES``, 10 by default), derandomised: the same requests on
every run. What may not happen: a server error (ST101), a status code or a content
type the document does not declare (ST103, ST105), a response that does not match its
declared schema - every error a ``Problem`` - a request the document allows refused
or one it forbids accepted (ST202, ST201), a method it does not declare answered
otherwise than 405 with ``Allow`` (ST204), a deleted resource still there (ST301), or
any other failure - except the refusals listed in ACCEPTED, each a rule no schema can
state, named by operation and by what the answer says.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import _migrate_once
from tests.integration.api.conftest import ADMIN, Served, serve
from wcs.children import spawn
from wcs.settings import MqttEndpoint, Settings

pytestmark = [pytest.mark.slow]

EXAMPLES = int(os.environ.get("WCS_SCHEMATHESIS_EXAMPLES", "10"))
# Refusals the OpenAPI document cannot express: the operation, the check, what the
# problem's detail says, and why no schema can say it. Everything else a schema can
# say is said (patterns for names and free text, conditions between fields, integers
# written 2.0, money as exact decimals), so any other failure is a real disagreement
# between the document and the API, and an operation added later is held to the
# same at once. Each of these is a 422 for "schema-valid request rejected" (ST202):
# a rule against the clock, across fields JSON Schema cannot compare, against data
# (a check digit, a registry, a cursor) or on who calls.
ACCEPTED: list[tuple[str, str, str, str]] = [
    ("POST /api/v1/fleet/plan", "ST202", "more than a year from today",
     "a day within a year of today: the bound moves with the clock"),
    ("POST /api/v1/fleet/couriers/{courier_id}/unavailable", "ST202",
     "more than a year from today", "the same"),
    ("GET /api/v1/kpis", "ST202", "the window may span at most 400 days",
     "the length of a window whose end defaults to now"),
    ("GET /api/v1/orders", "ST202", "is not one this API handed out",
     "an opaque cursor is valid when this API made it"),
    ("PUT /api/v1/faces/{location}", "ST202", "must be at least the minimum",
     "one field compared with another"),
    ("PUT /api/v1/faces/{location}", "ST202", "faces are pick locations",
     "the zone of the location named, as stored"),
    ("PUT /api/v1/fleet/parcels/{shipment_id}", "ST202", "must end after it starts",
     "one field compared with another"),
    ("PUT /api/v1/fleet/couriers/{courier_id}", "ST202", "the shift must end after it starts",
     "one field compared with another"),
    ("PUT /api/v1/skus/{sku}", "ST202", "GTIN check digit",
     "a check digit is arithmetic on the digits"),
    ("POST /api/v1/orders", "ST202", "names no language known to the CLDR",
     "a well-formed language tag of a language that does not exist"),
    ("POST /api/v1/orders", "ST202", "was kept in 'exception' for customer service",
     "an order is checked against registries (countries, postal codes per country, "
     "telephone numbering plans, the catalogue): one that fails is kept for customer "
     "service and answered 422"),
    ("PUT /api/v1/notifications/preferences", "ST202", "say whose preference",
     "customer_ref is required from staff only: a schema cannot depend on the token"),
]  # fmt: skip
# An endless server-sent event stream: a request to it never completes by design.
SKIPPED = "/api/v1/events/stream"


@pytest.fixture(params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, mqtt_endpoint: MqttEndpoint, site: str
) -> Iterator[Served]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/wcs.db"
        _migrate_once(url)
    else:
        url = request.getfixturevalue("pg_only_url")
        request.getfixturevalue("pg_engine")  # emptied
    settings = Settings(
        database_url=url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
        notify={"enabled": False},  # type: ignore[arg-type]
        # No controller runs here: floor actions answer 202 (asked) after a short wait.
        controller={"answer_wait_s": 0.1},  # type: ignore[arg-type]
    )
    yield from serve(settings)


def problem_failure(status: int, content_type: str, content: bytes) -> str | None:
    """Why an error response is not an RFC 9457 problem, or None when it is."""
    if status < 400:
        return None
    media = content_type.split(";")[0].strip()
    if media != "application/problem+json":
        return f"error {status} sent as {media or 'no content type'}"
    try:
        body = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"error {status}: body is not JSON"
    missing = [k for k in ("type", "title", "status", "detail") if k not in body]
    if missing:
        return f"error {status}: problem without {missing}"
    if body["status"] != status:
        return f"problem status {body['status']} differs from HTTP {status}"
    return None


async def seed(client: httpx.AsyncClient) -> None:
    """A SKU with stock, a location and an order, for requests to find."""
    sku = {"name": "Mug", "weight_g": 250, "dims_mm": [100, 80, 50]}
    assert (await client.put("/api/v1/skus/SKU-1", json=sku)).status_code in (200, 201)
    location = {"zone": "pick", "aisle": 1, "bay": 1, "level": 1}
    r = await client.put("/api/v1/locations/A-01-01-1", json=location)
    assert r.status_code in (200, 201), r.text
    receipt = {"sku": "SKU-1", "location": "A-01-01-1", "qty": 50}
    assert (await client.post("/api/v1/inventory/receipts", json=receipt)).status_code == 201
    order = {
        "external_id": "st-1",
        "customer": {"name": "Li Wei", "phone": "+86 138 0013 8000", "email": "a@b.cn"},
        "address": {"line1": "88 Century Ave", "city": "Shanghai", "postal_code": "200120",
                    "country": "CN"},
        "lines": [{"sku": "SKU-1", "qty": 1}],
    }  # fmt: skip
    assert (await client.post("/api/v1/orders", json=order)).status_code == 201


Failure = tuple[str, str, str]  # operation, check code, the response's problem detail


def failures(junit: Path) -> list[Failure]:
    """Every failure of the report, one per check failed (a test case may fail several)."""
    found: list[Failure] = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for element in [*case.iter("failure"), *case.iter("error")]:
            text = element.text or ""
            detail = re.search(r'"detail":\s*"((?:[^"\\]|\\.)*)"', text)
            codes = re.findall(r"^- (ST\d+) ", text, flags=re.MULTILINE) or [
                element.get("message") or element.get("type") or "?"
            ]
            for code in codes:
                found.append((case.get("name") or "?", code, detail.group(1) if detail else ""))
    return found


def accepted(failure: Failure) -> bool:
    operation, code, detail = failure
    return any((operation, code) == (op, c) and says in detail for op, c, says, _ in ACCEPTED)


def run_schemathesis(base_url: str, report: Path) -> tuple[list[Failure], int, str]:
    """The failures, test cases generated, and the output's tail."""
    cli = Path(sys.executable).with_name("schemathesis")
    log = report / "output.txt"
    # One worker: hypothesis names its filters by parsing their source, and CPython
    # 3.11's parser can fail when two threads do that at once ("AST constructor
    # recursion depth mismatch", python/cpython#106905): a crash of the tool, not a
    # finding. One worker is as fast here (generation holds the GIL either way).
    with log.open("wb") as out:
        proc = spawn(
            [str(cli), "run", f"{base_url}/openapi.json", "--checks", "all",
             "--header", f"Authorization: Bearer {ADMIN}", "--max-examples", str(EXAMPLES),
             "--generation-deterministic", "--workers", "1", "--request-timeout", "30",
             "--exclude-path", SKIPPED, "--no-color", "--report", "junit",
             "--report-junit-path", str(report / "junit.xml")],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=report,  # its cache directory goes there, not into the checkout
        )  # fmt: skip
        proc.wait(1500)
    text = log.read_text(errors="replace")
    generated = re.search(r"(\d+) generated", text)
    return failures(report / "junit.xml"), int(generated.group(1)) if generated else 0, text[-6000:]


@pytest.mark.timeout(1800)
async def test_all_checks_find_no_server_error_and_nothing_undocumented(
    served: Served, tmp_path: Path
) -> None:
    async with served.client() as client:
        await seed(client)
    started = time.monotonic()
    found, generated, tail = await asyncio.to_thread(run_schemathesis, served.base_url, tmp_path)
    took = time.monotonic() - started
    unexpected = [f for f in found if not accepted(f)]
    print(f"schemathesis --checks all: {generated} test cases in {took:.0f} s; "
          f"{len(found)} refusals the document cannot express, {len(unexpected)} other "
          f"failures")  # fmt: skip
    assert generated >= 500, tail
    assert not unexpected, "\n".join(map(str, unexpected)) + "\n" + tail


# Inputs generators rarely produce but attackers do: characters PostgreSQL cannot store
# and JSON escapes Python accepts but no encoder can write out.
SKU = {"weight_g": 1, "dims_mm": [1, 1, 1]}
ORDER = {
    "customer": {"name": "n", "phone": "1", "email": "a@b.c"},
    "address": {"line1": "l", "city": "c", "postal_code": "1", "country": "CN"},
    "lines": [{"sku": "SKU-1", "qty": 1}],
}


def raw_json(data: dict[str, Any], **verbatim: str) -> dict[str, bytes]:
    """A body with some members written verbatim (escapes json.dumps would never emit)."""
    text = json.dumps(data)[:-1]
    for key, value in verbatim.items():
        text += f', "{key}": {value}'
    return {"content": (text + "}").replace("{, ", "{").encode()}


EDGE_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/v1/orders/o%00x", {}),
    ("GET", "/api/v1/tasks", {"params": {"order_id": "a\x00b"}}),
    ("GET", "/api/v1/skus/%F0%9F%98%80", {}),
    ("PUT", "/api/v1/skus/SKU-NUL", raw_json(SKU, name='"a\\u0000b"')),
    ("PUT", "/api/v1/skus/SKU-SUR", raw_json(SKU, name='"a\\ud800b"')),
    ("PUT", "/api/v1/skus/%ED%A0%80", raw_json(SKU, name='"x"')),
    (
        "POST",
        "/api/v1/inventory/receipts",
        raw_json({"sku": "SKU-1", "location": "A-01-01-1"}, qty="99999999999999999999"),
    ),
    (
        "POST",
        "/api/v1/orders",
        {"headers": {"Idempotency-Key": "k1"}, **raw_json(ORDER, external_id='"e\\udfff"')},
    ),
    ("POST", "/api/v1/orders", {"headers": {"Idempotency-Key": "k" * 10_000}, "content": b"{}"}),
    ("GET", "/api/v1/orders", {"params": {"limit": str(2**70)}}),
    ("GET", "/api/v1/orders", {"params": {"state": "x" * 60_000}}),
]


async def test_unstorable_and_unencodable_values_are_client_errors(served: Served) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=served.base_url, headers=headers, timeout=30) as client:
        for method, path, kwargs in EDGE_REQUESTS:
            response = await client.request(method, path, **kwargs)
            failure = problem_failure(
                response.status_code, response.headers.get("content-type", ""), response.content
            )
            assert failure is None and 400 <= response.status_code < 500, (
                method, path, response.status_code, response.text[:300]
            )  # fmt: skip
