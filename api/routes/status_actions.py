"""What the supervisor does from the status page, and the pages it links to.

- ``POST /status/alerts/{id}/ack|assign|resolve``: the page's buttons. A supervisor
  only (the same rule as ``/api/v1/alerts/...``). The page's cookie is accepted only
  with the ``X-WCS-Action`` header the page's script copies from the page (see
  ``api.routes.status.action_key``) and from the same origin; a bearer token works as
  everywhere. Answers are problem+json on refusal, the alert as JSON otherwise.
- ``GET /status/orders/{id}``: the order's timeline (states, shipments, proof...).
- ``GET /status/devices/{id}``: the device's state changes, alerts and commands.

The detail pages need a staff viewer like ``/status``; they are read-only.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from api.deps import STAFF
from api.i18n import request_translator
from api.params import AlertId, NameText
from api.problems import problem
from api.routes.status import (
    ViewerRejected,
    _html,
    _rejection_page,
    _templates,
    action_key,
    check_viewer,
    duration,
    token_from,
)
from wcs.domain.alert_rules import ALERT_CATALOGUE
from wcs.errors import NotFound
from wcs.persistence.db import reading
from wcs.persistence.tables import alerts, device_commands, devices, orders
from wcs.services.alerting import ack_alert, assign_alert, resolve_alert
from wcs.services.auth import Principal
from wcs.services.devices import device_history
from wcs.services.timeline import order_timeline
from wcs.timeutil import as_utc

router = APIRouter(tags=["status page"])

HEADER = "x-wcs-action"


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: NameText = Field(min_length=1, max_length=64)


async def _supervisor(request: Request) -> Principal | Response:
    token = token_from(request)
    if token is None:
        return problem(401, "sign in with a supervisor token first", code="unauthorized")
    from_cookie = not request.headers.get("authorization")
    if from_cookie:
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
            return problem(403, "this action was sent from another site", code="forbidden")
        sent = request.headers.get(HEADER, "")
        if not hmac.compare_digest(sent, action_key(token)):
            return problem(
                403, "the page is out of date; reload it and try again", code="forbidden"
            )
    principal: Principal | None = await request.app.state.token_cache.lookup(
        request.app.state.engine, token, request.app.state.settings.admin_token
    )
    if principal is None:
        return problem(401, "the token is unknown or revoked", code="unauthorized")
    if "supervisor" not in principal.roles:
        return problem(
            403,
            f"'{principal.name}' is not a supervisor; only supervisors act on alerts",
            code="forbidden",
        )
    return principal


async def _act(request: Request, change: Callable[[Principal], Awaitable[Any]]) -> Any:
    who = await _supervisor(request)
    if isinstance(who, Response):
        return who
    result = await change(who)
    request.app.state.wake_relay()
    runtime = getattr(request.app.state, "monitoring", None)
    if runtime is not None:  # every open page hears of it at once
        from api.live import LiveEvent

        summary = await runtime.refresher.summary(with_kpis=False)
        summary.pop("kpis", None)
        runtime.hub.publish(LiveEvent("summary", summary))
    return result


@router.post("/status/alerts/{alert_id}/ack")
async def alert_ack(request: Request, alert_id: AlertId) -> Any:
    """Acknowledge an alert from the status page. Roles: supervisor."""
    engine = request.app.state.engine
    return await _act(request, lambda who: ack_alert(engine, alert_id, who.name))


@router.post("/status/alerts/{alert_id}/assign")
async def alert_assign(request: Request, alert_id: AlertId, body: AssignIn) -> Any:
    """Assign an alert to someone from the status page. Roles: supervisor."""
    engine = request.app.state.engine
    return await _act(request, lambda who: assign_alert(engine, alert_id, body.assignee, who.name))


@router.post("/status/alerts/{alert_id}/resolve")
async def alert_resolve(request: Request, alert_id: AlertId) -> Any:
    """Resolve an alert from the status page. Roles: supervisor."""
    engine = request.app.state.engine
    return await _act(request, lambda who: resolve_alert(engine, alert_id, who.name))


async def _viewer(request: Request) -> Response | None:
    try:
        principal = await check_viewer(request, token_from(request))
    except ViewerRejected as exc:
        return _rejection_page(request, exc)
    if principal is not None and not principal.has_any(STAFF):
        return _rejection_page(request, ViewerRejected(403, "the status page is for staff"))
    return None


@router.get("/status/orders/{order_id}", response_class=HTMLResponse)
async def order_page(request: Request, order_id: Annotated[str, Path(max_length=40)]) -> Response:
    """One order's timeline, for staff (HTML)."""
    denied = await _viewer(request)
    if denied is not None:
        return denied
    t = request_translator(request)
    engine = request.app.state.engine
    try:
        entries = await order_timeline(engine, order_id)
    except NotFound:
        return _not_found(request, t.gettext("Order %(order_id)s", order_id=order_id))
    async with reading(engine).connect() as conn:
        row = (
            await conn.execute(
                select(orders.c.state, orders.c.sla_deadline).where(orders.c.id == order_id)
            )
        ).first()
    page = (
        _templates(t.lang)
        .get_template("status_order.html")
        .render(
            order_id=order_id,
            state=row.state if row else None,
            deadline=as_utc(row.sla_deadline) if row and row.sla_deadline else None,
            entries=entries,
        )
    )
    return _html(page)


@router.get("/status/devices/{device_id}", response_class=HTMLResponse)
async def device_page(request: Request, device_id: Annotated[str, Path(max_length=64)]) -> Response:
    """One device's history, for staff (HTML)."""
    denied = await _viewer(request)
    if denied is not None:
        return denied
    t = request_translator(request)
    engine = request.app.state.engine
    async with reading(engine).connect() as conn:
        row = (await conn.execute(select(devices).where(devices.c.id == device_id))).first()
        about = (
            await conn.execute(
                select(alerts.c.code, alerts.c.severity, alerts.c.created_at, alerts.c.acked_by)
                .where(or_(alerts.c.subject == device_id, alerts.c.subject.like(f"{device_id} %")))
                .order_by(alerts.c.created_at.desc())
                .limit(20)
            )
        ).all()
        commands = (
            await conn.execute(
                select(device_commands)
                .where(device_commands.c.device_id == device_id)
                .order_by(device_commands.c.created_at.desc())
                .limit(20)
            )
        ).all()
    if row is None:
        return _not_found(request, t.gettext("Device %(device_id)s", device_id=device_id))
    page = (
        _templates(t.lang)
        .get_template("status_device.html")
        .render(
            device=row,
            alert_titles={code: t.gettext(spec.title) for code, spec in ALERT_CATALOGUE.items()},
            history=await device_history(engine, device_id),
            alerts=about,
            commands=commands,
            dur=lambda s: duration(s, t),
        )
    )
    return _html(page)


def _not_found(request: Request, what: str) -> Response:
    t = request_translator(request)
    page = (
        _templates(t.lang)
        .get_template("status_denied.html")
        .render(reason=t.gettext("Not found: %(what)s", what=what))
    )
    return _html(page, 404)
