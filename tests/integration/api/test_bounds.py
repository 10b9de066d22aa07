"""Every path and query parameter is bounded; out of bounds is a 422 problem, on
SQLite and on PostgreSQL alike (an id past 2^63 used to reach SQLite's driver and
come back as a 500)."""

from __future__ import annotations

from typing import Any

from api.app import openapi_document
from tests.integration.api.conftest import Served
from wcs.settings import Settings

PROBLEM = "application/problem+json"


DOC = openapi_document(Settings())


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = DOC["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def _parameters() -> list[tuple[str, str, dict[str, Any]]]:
    doc = DOC
    found = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("path", "query"):
                    found.append((method.upper(), path, parameter))
    return found


def _bounded(schema: dict[str, Any]) -> bool:
    schema = _resolve(schema)
    kinds = [_resolve(s) for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    for kind in kinds:
        if "enum" in kind or "const" in kind:
            continue
        match kind.get("type"):
            case "integer" | "number":
                low = "minimum" in kind or "exclusiveMinimum" in kind
                high = "maximum" in kind or "exclusiveMaximum" in kind
                if not (low and high):
                    return False
            case "string":
                if "maxLength" not in kind and kind.get("format") not in ("date", "date-time"):
                    return False
            case "boolean":
                continue
            case "array":
                if "maxItems" not in kind or not _bounded(kind.get("items", {})):
                    return False
            case _:
                return False
    return True


def test_every_path_and_query_parameter_is_bounded() -> None:
    loose = [
        f"{method} {path} {p['in']} {p['name']}: {p['schema']}"
        for method, path, p in _parameters()
        if not _bounded(p["schema"])
    ]
    assert not loose, "\n".join(loose)


INTEGER_PATHS = sorted(
    {
        (method, path, p["name"])
        for method, path, p in _parameters()
        if p["in"] == "path" and p["schema"].get("type") == "integer"
    }
)
STRING_PATHS = sorted(
    {
        (method, path, p["name"])
        for method, path, p in _parameters()
        if p["in"] == "path" and p["schema"].get("type") == "string"
    }
)


async def test_ids_beyond_64_bits_and_long_keys_are_422(api: Served) -> None:
    assert len(INTEGER_PATHS) >= 7 and len(STRING_PATHS) >= 20
    async with api.client() as client:
        for method, path, name in INTEGER_PATHS:
            for value in (2**63, 2**64 + 1, 10**30, 0, -1):
                url = path.replace("{" + name + "}", str(value))
                r = await client.request(method, url)
                assert r.status_code == 422, (method, url, r.status_code, r.text[:300])
                assert r.headers["content-type"] == PROBLEM
                assert name in {e["field"] for e in r.json()["errors"]}
            # The largest id that fits is looked up, not refused: not found.
            url = path.replace("{" + name + "}", str(2**63 - 1))
            r = await client.request(method, url)
            assert r.status_code != 500, (method, url, r.text[:300])
        for method, path, name in STRING_PATHS:
            url = path.replace("{" + name + "}", "x" * 5000)
            r = await client.request(method, url)
            assert r.status_code == 422, (method, url[:80], r.status_code, r.text[:300])
            assert r.headers["content-type"] == PROBLEM
            assert name in {e["field"] for e in r.json()["errors"]}
