"""The OpenAPI document, with the problems every operation may answer.

FastAPI documents what a route returns when all goes well and a 422 in its own
format. Every operation here also declares, as RFC 9457 ``application/problem+json``
(schema ``Problem``), the errors the API's common machinery can answer for it:

- 401 and 403 where a token is needed (not on the few public operations);
- 400, 413 and 415 where a body is read (bad JSON, too large, wrong media type);
- 404 where a path names something, or a body may name something that does not exist;
- 409 on every operation that changes something (the state machine refuses);
- 422 for anything invalid (every operation: a NUL in the URL is refused anywhere);
- 503 with ``Retry-After`` wherever the database is used.

A route keeps the descriptions it gives its own responses; only their content is
set. Pages (HTML) answer their errors as HTML to browsers, so both media types are
declared for them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; extension members (order_id, errors, ...) "
    "may follow.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:wcs:problem:<code> or about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "one entry per invalid field, or per problem found in an "
            "order (a sentence each)",
            "items": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {
                            "in": {"type": "string"},
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                    {"type": "string"},
                ]
            },
        },
    },
    "additionalProperties": True,
}

DESCRIPTIONS = {
    400: "the body is not valid JSON or not a valid form",
    401: "no token, or an unknown, expired or revoked one",
    403: "the token's roles do not admit this",
    404: "it does not exist (or is not yours to see)",
    409: "the current state does not allow it",
    413: "the body is larger than the limit",
    415: "the body's media type is not the one this operation reads",
    422: "a parameter or the body is invalid",
    502: "a service this needs (the carrier) refused",
    503: "the database (or a service this needs) is unavailable; retry after Retry-After",
}

# Operations without a token: nothing to be refused for.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/track/{tracking_no}"),
    ("GET", "/courier/static/{name}"),
    ("GET", "/status/static/{name}"),
}
# Operations that touch no database: no 503.
NO_DATABASE = {
    ("GET", "/healthz"),
    ("GET", "/courier/static/{name}"),
    ("GET", "/status/static/{name}"),
    ("POST", "/courier/logout"),
}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def _problem_codes(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    key = (method, path)
    params = operation.get("parameters", [])
    has_body = "requestBody" in operation
    codes: set[int] = set()
    if key not in PUBLIC:
        codes |= {401, 403}
    if has_body:
        codes |= {400, 413, 415}
    if any(p["in"] == "path" for p in params) or method in MUTATING:
        codes.add(404)
    if method in MUTATING:
        codes.add(409)
    codes.add(422)  # a parameter or the body; for any operation, a NUL in the URL
    if key not in NO_DATABASE:
        codes.add(503)
    return codes


def _is_page(operation: dict[str, Any]) -> bool:
    ok = operation.get("responses", {})
    return any("text/html" in r.get("content", {}) for c, r in ok.items() if c.startswith("2"))


def _error_content(page: bool) -> dict[str, Any]:
    content: dict[str, Any] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
    if page:
        content["text/html"] = {"schema": {"type": "string"}}
    return content


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare every operation's problem responses in ``schema`` (changed in place)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, items in schema.get("paths", {}).items():
        for method, operation in items.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            page = _is_page(operation)
            codes = _problem_codes(method.upper(), path, operation)
            codes |= {int(c) for c in responses if c.isdigit() and int(c) >= 400}
            for code in sorted(codes):
                entry = responses.get(str(code), {})
                given = entry.get("description")
                if not given or given == "Validation Error":
                    given = DESCRIPTIONS.get(code, "error")
                entry["description"] = given
                entry["content"] = _error_content(page)
                if code == 503:
                    entry["headers"] = {
                        "Retry-After": {
                            "description": "seconds to wait before retrying",
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    }
                responses[str(code)] = entry
    return schema


NO_NUL = "^[^\\u0000]*$"


def _refuse_nul(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(schema):
        schema["pattern"] = NO_NUL
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, []):
            _refuse_nul(branch)
    if isinstance(schema.get("items"), dict):
        _refuse_nul(schema["items"])


def document_nul_refusal(schema: dict[str, Any]) -> dict[str, Any]:
    """Say of every string in a path or a query that it holds no NUL (``changed in
    place``): the request guards refuse one anywhere in the URL with a 422, whatever
    the parameter would have accepted."""
    for items in schema.get("paths", {}).values():
        for operation in items.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") in ("path", "query") and "schema" in parameter:
                    _refuse_nul(parameter["schema"])
    return schema


def install(app: FastAPI) -> None:
    """Serve the document with every operation's problem responses declared."""

    generate = app.openapi  # FastAPI's own: builds once, again when routes change
    documented: list[int] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        if documented != [id(schema)]:
            documented[:] = [id(document_nul_refusal(document_problems(schema)))]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
