"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import metrics_reader
from wcs.mqtt.broker import broker_answers
from wcs.persistence.db import OUTAGE_ERRORS

log = logging.getLogger(__name__)

GAUGES_WAIT_S = 2.0  # then /metrics answers with the process's own figures

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready when the database answers and the MQTT broker accepts connections."""
    checks: dict[str, Any] = {}
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    endpoint = request.app.state.settings.mqtt
    checks["mqtt"] = "ok" if await broker_answers(endpoint, 0.5) else "unreachable"
    relay = request.app.state.relay
    if relay is not None:
        checks["outbox_relay"] = "active" if relay.stats.active else "standby"
    ready = checks["database"] == "ok" and checks["mqtt"] == "ok"
    if not ready:
        return JSONResponse(
            {
                "type": "urn:wcs:problem:not-ready",
                "title": "Service unavailable",
                "status": 503,
                "detail": "; ".join(f"{k} {v}" for k, v in checks.items() if v != "ok"),
                "checks": checks,
            },
            status_code=503,
            media_type="application/problem+json",
        )
    return JSONResponse({"status": "ready", "checks": checks})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(metrics_reader)],
    description="Prometheus metrics. Bearer token: `WCS_METRICS_TOKEN` (the scraper's) "
    "or a supervisor's.",
)
async def metrics(request: Request) -> Response:
    monitoring = getattr(request.app.state, "monitoring", None)
    if monitoring is not None:
        try:
            # A database that does not answer must not take the scrape down with it.
            async with asyncio.timeout(GAUGES_WAIT_S):
                await monitoring.refresher.gauges()
        except OUTAGE_ERRORS as exc:
            # The process's own figures still answer; the database's wait for it.
            reason = str(exc) or f"no answer within {GAUGES_WAIT_S:.0f} s"
            log.warning("/metrics without the database's gauges: %s", reason)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
