"""RFC 9457 problem details for every error the API returns.

Every error body is ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` and, where useful, ``errors`` (one entry per invalid field)
or extension members such as ``order_id``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SqlTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from api.metrics import API_ERRORS
from wcs.errors import (
    Conflict,
    Forbidden,
    IdempotencyConflict,
    IllegalTransition,
    InsufficientStock,
    NotFound,
    ValidationFailed,
    WcsError,
)
from wcs.logs import mark_logged
from wcs.persistence.db import (
    ROLLED_BACK_SQLSTATE_CLASS,
    DatabaseUnavailable,
    is_outage,
    sqlstate,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = "5"
TYPE_BASE = "urn:wcs:problem:"

_STATUS: list[tuple[type[WcsError], int]] = [
    (IdempotencyConflict, 409),
    (IllegalTransition, 409),
    (Conflict, 409),
    (NotFound, 404),
    (ValidationFailed, 422),
    (InsufficientStock, 409),
    (Forbidden, 403),
    (DatabaseUnavailable, 503),
]

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"{TYPE_BASE}{code}" if code else "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
    API_ERRORS.labels(status=str(status)).inc()
    if status == 503:
        # Every "not now" says when to come back: clients and proxies retry on it.
        headers = {"Retry-After": RETRY_AFTER_S, **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document lists for the path templates ``path`` matches."""
    patterns: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        app.state, "method_patterns", None
    )
    if patterns is None:
        patterns = []
        for template, operations in app.openapi().get("paths", {}).items():
            regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            methods = sorted(m.upper() for m in operations if m.upper() in _METHODS)
            patterns.append((re.compile(regex), methods))
        app.state.method_patterns = patterns
    matching = [(regex, methods) for regex, methods in patterns if regex.fullmatch(path)]
    # A literal path is its own resource (POST .../receipts), even where a template
    # (GET .../{sku}) would match it too.
    literal = [methods for regex, methods in matching if "[^/]+" not in regex.pattern]
    return sorted({m for methods in (literal or [m for _, m in matching]) for m in methods})


_METHODS = {"GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD"}


async def _not_allowed(request: Request) -> None:
    raise StarletteHTTPException(405)


def answer_undeclared_methods(app: FastAPI) -> None:
    """A literal path answers 405 to the methods it does not declare, even where a
    template would take the request: without this, GET .../notifications/preferences
    (a PUT) reached GET .../notifications/{notification_id} and was a 422 for its id.
    Call once every router is included."""
    declared: dict[str, set[str]] = {}
    for route in iter_route_contexts(app.routes):
        path = route.path_format
        if isinstance(route.original_route, APIRoute) and path and "{" not in path:
            declared.setdefault(path, set()).update(route.methods or ())
    catchers = []
    for path, methods in declared.items():
        if "GET" in methods:
            methods.add("HEAD")
        others = sorted(_METHODS - methods - {"OPTIONS"})
        if others:
            catchers.append(Route(path, _not_allowed, methods=others, include_in_schema=False))
    # Ahead of every other route: the router takes the first route that matches both
    # the path and the method.
    app.router.routes[:0] = catchers


def _database_unavailable() -> JSONResponse:
    return problem(
        503,
        "the database is unavailable or restarting; retry shortly",
        code="database-unavailable",
    )


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors()[:50]:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            where, loc = loc[0], loc[1:]
        else:
            where = "body"
        errors.append(
            {"in": where, "field": ".".join(loc) or "(whole body)", "message": err.get("msg", "")}
        )
    return errors


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        if any(e["message"].startswith("JSON decode error") for e in errors):
            return problem(
                400, "request body is not valid JSON", code="invalid-json", extra={"errors": errors}
            )
        first = errors[0] if errors else {"field": "?", "message": "invalid"}
        detail = f"{first['in']} field '{first['field']}': {first['message']}"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem(422, detail, code="validation", extra={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # The router names the methods of the one route it matched; a path has a
            # route per method, so the answer must name all of them.
            allowed = allowed_methods(request.app, request.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
                detail = f"{request.method} is not allowed here; use {', '.join(allowed)}"
        return problem(exc.status_code, detail, headers=headers)

    @app.exception_handler(WcsError)
    async def _domain(_: Request, exc: WcsError) -> JSONResponse:
        status = next((s for cls, s in _STATUS if isinstance(exc, cls)), 400)
        extra = {k: v for k, v in exc.context.items() if isinstance(v, str | int | float | list)}
        if status >= 500:
            log.error("request failed: %s", exc.message)
        return problem(status, exc.message, code=exc.code.replace("_", "-"), extra=extra)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # An outage, whatever its SQLSTATE (a restart answers 57P03 for a while): 503
        # and retry. SQLSTATE class 22 is the database refusing a value the request
        # carried (a NUL character, text longer than its column, a number out of
        # range): the client's data, not our failure. Class 23 is a constraint the
        # request broke.
        state = sqlstate(exc)
        reason = str(exc.orig).split("\n", 1)[0][:300]
        if is_outage(exc):
            log.warning("database unavailable: %s (SQLSTATE %s)", reason, state or "none")
            return _database_unavailable()
        if state.startswith(ROLLED_BACK_SQLSTATE_CLASS):
            return problem(
                503, "the database rolled this request back (a conflict); retry", code="retry"
            )
        if state.startswith("22"):
            return problem(422, f"a value cannot be stored: {reason}", code="unstorable-value")
        if state.startswith("23"):
            return problem(409, f"the request conflicts with stored data: {reason}")
        return await _unexpected(request, exc)

    @app.exception_handler(SqlTimeout)
    async def _pool_exhausted(_: Request, exc: SqlTimeout) -> JSONResponse:
        log.warning("no database connection came free in time: %s", exc)
        return _database_unavailable()

    @app.exception_handler(OSError)
    async def _unreachable(_: Request, exc: OSError) -> JSONResponse:
        # The database driver lets a refused or timed-out connection through untranslated;
        # the service is unavailable for now, which the client may retry, not broken.
        log.error("a backend is unreachable: %r", exc)
        return problem(
            503,
            f"a service this request needs is unreachable ({type(exc).__name__}); retry shortly",
            code="backend-unavailable",
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        mark_logged(exc)
        return problem(500, "internal error; it has been logged", code="internal")
