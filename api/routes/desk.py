"""The service desk page for customer service, ``/desk``: the queue of orders waiting
for a person, an order with its open alerts (acknowledge, resolve) and, for an order
in exception, the correction form (``wcs.services.corrections``: checked again,
refused whole with the reasons, or moved on to validated and reserved).

Sign-in as on the status page: ``/desk?token=<token>`` once (customer_service or
supervisor); the token goes into an HttpOnly, SameSite=Strict cookie for this page
only. Forms carry an HMAC of the session's token against cross-site requests.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.i18n import request_translator
from api.routes.customer import page, switch_language
from wcs.domain.alert_rules import ALERT_CATALOGUE, duration_text
from wcs.errors import Conflict, Forbidden, NotFound, ValidationFailed
from wcs.i18n.markers import N_
from wcs.i18n.translator import Translator
from wcs.services.alerting import ack_alert, list_alerts, resolve_alert
from wcs.services.auth import Principal
from wcs.services.corrections import Correction, CorrectionRefused, correct_order
from wcs.services.order_views import get_order
from wcs.services.service_queue import service_queue

router = APIRouter(tags=["service desk page"], include_in_schema=False)

COOKIE = "wcs_desk"
COOKIE_PATH = "/desk"
DESK_ROLES = frozenset({"customer_service", "supervisor"})
OrderPath = Annotated[str, Path(min_length=1, max_length=40)]
FIELDS = (
    ("name", N_("Name")),
    ("phone", N_("Phone")),
    ("email", N_("E-mail")),
    ("line1", N_("Street and number")),
    ("line2", N_("Address line 2")),
    ("postal_code", N_("Postal code")),
    ("city", N_("City")),
    ("country", N_("Country (two letters)")),
)


class Denied(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def _signed_in(request: Request) -> tuple[Principal, str]:
    token = request.cookies.get(COOKIE)
    if not token:
        raise Denied(401, "not signed in")
    principal: Principal | None = await request.app.state.token_cache.lookup(
        request.app.state.engine, token, request.app.state.settings.admin_token
    )
    if principal is None:
        raise Denied(401, "the token is unknown, expired or revoked")
    if not principal.has_any(DESK_ROLES):
        raise Denied(403, f"'{principal.name}' is not customer service")
    return principal, token


def _csrf(token: str) -> str:
    return hmac.new(token.encode(), b"wcs-desk-form", hashlib.sha256).hexdigest()[:32]


async def _form(request: Request, token: str) -> Any:
    form = await request.form()
    sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, _csrf(token)):
        raise Denied(403, "the form is stale or came from elsewhere; reload the page")
    return form


def _denied(request: Request, exc: Denied) -> Response:
    t = request_translator(request)
    return page(request, t, "desk.html", exc.status, denied=exc.reason, who=None)


@router.get("/desk")
async def desk(
    request: Request, token: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    if token is not None:
        redirect = RedirectResponse(COOKIE_PATH, status_code=303)
        redirect.set_cookie(
            COOKIE,
            token.strip(),
            max_age=12 * 3600,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=COOKIE_PATH,
        )
        return redirect
    switched = switch_language(request)
    if switched is not None:
        return switched
    try:
        principal, _ = await _signed_in(request)
    except Denied as exc:
        return _denied(request, exc)
    t = request_translator(request)
    queue = await service_queue(request.app.state.engine)
    for q in queue:
        q["age"] = duration_text_of(q["age_s"])
    return page(request, t, "desk.html", queue=queue, who=principal.name)


def duration_text_of(seconds: int) -> str:
    from datetime import timedelta

    return duration_text(timedelta(seconds=seconds))


async def _order_page(
    request: Request,
    t: Translator,
    principal: Principal,
    token: str,
    order_id: str,
    *,
    status: int = 200,
    errors: list[str] | None = None,
    values: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response:
    engine = request.app.state.engine
    try:
        order = await get_order(engine, order_id)
    except NotFound:
        return page(request, t, "desk.html", 404, denied=f"no order {order_id}", who=principal.name)
    open_alerts = [
        {
            **a,
            "title": ALERT_CATALOGUE[a["code"]].title
            if a["code"] in ALERT_CATALOGUE
            else a["code"],
        }
        for a in await list_alerts(engine, subject=order_id)
        if a["resolved_at"] is None
    ]
    current = {
        "name": order["customer"]["name"],
        "phone": order["customer"]["phone"],
        "email": order["customer"]["email"],
        **{k: order["address"][k] for k in ("line1", "line2", "postal_code", "city", "country")},
    }
    shown = {**current, **(values or {})}
    lines_text = (values or {}).get("lines") or "\n".join(
        f"{ln['sku']} {ln['qty']}" for ln in order["lines"]
    )
    return page(
        request,
        t,
        "desk.html",
        status,
        who=principal.name,
        order=order,
        alerts=open_alerts,
        csrf=_csrf(token),
        fields=[(name, t.gettext(label), shown.get(name)) for name, label in FIELDS],
        lines_text=lines_text,
        why=(values or {}).get("why"),
        errors=errors,
        flash=flash,
    )


@router.get("/desk/orders/{order_id}")
async def desk_order(
    request: Request, order_id: OrderPath, ok: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    switched = switch_language(request)
    if switched is not None:
        return switched
    try:
        principal, token = await _signed_in(request)
    except Denied as exc:
        return _denied(request, exc)
    t = request_translator(request)
    flash = t.gettext("Corrected: the order moved on.") if ok == "corrected" else None
    return await _order_page(request, t, principal, token, order_id, flash=flash)


def _parse_lines(text: str) -> list[tuple[str, int]] | str:
    lines: list[tuple[str, int]] = []
    for raw in text.strip().splitlines():
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            return f"line {raw!r}: write the SKU and the quantity, like 'SKU-1 2'"
        lines.append((parts[0], int(parts[1])))
    return lines


@router.post("/desk/orders/{order_id}/correct")
async def desk_correct(request: Request, order_id: OrderPath) -> Response:
    try:
        principal, token = await _signed_in(request)
        form = await _form(request, token)
    except Denied as exc:
        return _denied(request, exc)
    t = request_translator(request)
    engine = request.app.state.engine
    order = await get_order(engine, order_id)
    values = {k: str(form.get(k) or "").strip() for k, _ in FIELDS}
    values["why"] = str(form.get("why") or "").strip()
    values["lines"] = str(form.get("lines") or "")
    current = {
        "name": order["customer"]["name"],
        "phone": order["customer"]["phone"],
        "email": order["customer"]["email"],
        **{k: order["address"][k] for k in ("line1", "line2", "postal_code", "city", "country")},
    }
    changed = {
        k: (v or None) for k, v in values.items() if k in current and (v or None) != current[k]
    }
    parsed = _parse_lines(values["lines"])
    if isinstance(parsed, str):
        return await _order_page(
            request, t, principal, token, order_id, status=422, errors=[parsed], values=values
        )
    old_lines = [(ln["sku"], ln["qty"]) for ln in order["lines"]]
    customer: dict[str, str | None] = {
        k: changed[k] for k in ("name", "phone", "email") if k in changed
    }
    address: dict[str, str | None] = {
        k: changed[k] for k in ("line1", "line2", "postal_code", "city", "country") if k in changed
    }
    correction = Correction(
        reason=values["why"],
        customer=customer or None,
        address=address or None,
        lines=parsed if parsed != old_lines else None,
    )
    try:
        await correct_order(
            engine, request.app.state.topics, order_id, correction, actor=principal.name
        )
    except CorrectionRefused as exc:
        return await _order_page(
            request, t, principal, token, order_id, status=422, errors=exc.problems, values=values
        )
    except (ValidationFailed, Conflict) as exc:
        return await _order_page(
            request, t, principal, token, order_id, status=422, errors=[exc.message], values=values
        )
    request.app.state.wake_relay()
    return RedirectResponse(f"/desk/orders/{order_id}?ok=corrected", status_code=303)


async def _alert_action(request: Request, alert_id: int, action: str) -> Response:
    try:
        principal, token = await _signed_in(request)
        form = await _form(request, token)
    except Denied as exc:
        return _denied(request, exc)
    engine = request.app.state.engine
    order_id = str(form.get("order") or "")
    found = await list_alerts(engine, ids=[alert_id])
    if not found:
        return _denied(request, Denied(404, f"no alert {alert_id}"))
    alert = found[0]
    from wcs.domain.alert_rules import ORDER_CODES

    if not principal.has_any({"supervisor"}) and alert["code"] not in ORDER_CODES:
        return _denied(request, Denied(403, Forbidden("a supervisor handles this alert").message))
    if action == "ack":
        await ack_alert(engine, alert_id, principal.name)
    else:
        await resolve_alert(engine, alert_id, principal.name)
    return RedirectResponse(f"/desk/orders/{order_id or alert['subject']}", status_code=303)


@router.post("/desk/alerts/{alert_id}/ack")
async def desk_ack(request: Request, alert_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    return await _alert_action(request, alert_id, "ack")


@router.post("/desk/alerts/{alert_id}/resolve")
async def desk_resolve(
    request: Request, alert_id: Annotated[int, Path(ge=1, le=2**62)]
) -> Response:
    return await _alert_action(request, alert_id, "resolve")
