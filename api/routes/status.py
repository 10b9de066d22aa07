"""The live status page, ``GET /status`` (design §1 steps 9-10).

Server-rendered from Jinja2 templates shipped in the package, with the order flow
diagram generated from the state machine (``wcs.flowchart``) and live per-state
counts; a small script of our own keeps it current over ``/api/v1/events/stream``.
Nothing is loaded from elsewhere (no CDN, web fonts or external scripts), so it
works on an isolated floor network, and the Content-Security-Policy says so.

Who may look: the page is read-only and carries no personal data (see
``wcs.services.status_board``), but order volumes and alerts are still the
business's own, so by default it needs a staff token (customer_service, supervisor,
dispatcher or after_sales):

- ``Authorization: Bearer <token>`` works as everywhere, for tools and proxies;
- a wall display opens ``/status?token=<token>`` once: the token is checked, put in
  an HttpOnly, SameSite=Strict cookie scoped to this page and its stream, and the
  browser is redirected to plain ``/status`` so the token leaves the address bar.
  The cookie is honoured only by these read-only GET endpoints, never by anything
  that changes state, so it opens no cross-site request forgery;
- ``WCS_MONITORING__STATUS_PUBLIC=true`` drops the check, for a floor network where
  the page is meant for everyone.

Acting on alerts from the page (acknowledge, assign, resolve: ``api.routes.status_actions``)
needs a supervisor. Those POSTs accept the cookie only together with a header the
page's script copies from the page (an HMAC of the session token, which another site
cannot read), from the same origin, and the cookie is SameSite=Strict.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import datetime, timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from api.deps import STAFF
from api.i18n import langs, parse_lang, remember, request_translator
from api.live import Monitoring, to_json
from api.problems import problem
from wcs.domain.alert_rules import ALERT_CATALOGUE, duration_text
from wcs.flowchart import order_flow_svg
from wcs.i18n.jinja import localized
from wcs.i18n.markers import NP_
from wcs.i18n.translator import Translator
from wcs.services.auth import Principal
from wcs.services.status_board import board, recent_events
from wcs.timeutil import rfc3339

router = APIRouter(tags=["status page"])

COOKIE = "wcs_status"
COOKIE_MAX_AGE_S = 12 * 3600  # one shift
STATIC_FILES = {"status.js": "text/javascript", "status.css": "text/css"}
SECURITY_HEADERS = {
    # Inline SVG carries its own <style>; no script runs inline, nothing is fetched
    # from anywhere but this server.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ViewerRejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def token_from(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


async def check_viewer(request: Request, token: str | None) -> Principal | None:
    """The staff member looking, or None on a public board; raises ViewerRejected."""
    if request.app.state.settings.monitoring.status_public:
        return None
    if token is None:
        raise ViewerRejected(401, "this page needs a staff token: open /status?token=<token>")
    principal: Principal | None = await request.app.state.token_cache.lookup(
        request.app.state.engine, token, request.app.state.settings.admin_token
    )
    if principal is None:
        raise ViewerRejected(401, "the token is unknown or revoked")
    if not principal.has_any(STAFF):
        raise ViewerRejected(403, f"'{principal.name}' is not staff; the status page is for staff")
    return principal


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("api", "templates"),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["dur"] = _dur
    env.filters["signed"] = _signed
    env.filters["money"] = _money
    env.filters["ts"] = _ts
    env.filters["hhmm"] = lambda m: m.strftime("%H:%M") if isinstance(m, datetime) else "–"
    return env


_templates = localized(_environment)


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value) * 100:.1f} %"


def _dur(seconds: Any) -> str:
    if seconds is None:
        return "–"
    return duration_text(timedelta(seconds=float(seconds)))


def _signed(value: Any) -> str:
    return "–" if value is None else f"{int(value):+d}" if value else "0"


def _money(values: Any) -> str:
    """Net values per currency (minor units of two decimals): ``-12.50 CNY``."""
    if not values:
        return "–"
    return ", ".join(f"{v['net_minor'] / 100:+.2f} {v['currency']}" for v in values)


def _ts(moment: Any) -> str:
    return rfc3339(moment) if isinstance(moment, datetime) else ""


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _rejection_page(request: Request, exc: ViewerRejected) -> Response:
    # A browser gets a page it can show; any other client the API's problem details.
    if "text/html" not in request.headers.get("accept", ""):
        return problem(exc.status, exc.reason, code="status-page-denied")
    t = request_translator(request)
    page = _templates(t.lang).get_template("status_denied.html").render(reason=exc.reason)
    return _html(page, exc.status)


@router.get("/status", response_class=HTMLResponse)
async def status_page(
    request: Request,
    token: Annotated[
        str | None, Query(max_length=200, description="staff token, moved into a cookie")
    ] = None,
    lang: Annotated[
        str | None, Query(max_length=10, description="en or zh-CN, remembered in a cookie")
    ] = None,
) -> Response:
    """The live status page (HTML). See the module docstring for who may look."""
    choice = parse_lang(lang)
    viewer: Principal | None = None
    try:
        if token is not None or choice is not None:
            if token is not None:
                await check_viewer(request, token.strip())
            redirect = RedirectResponse("/status", status_code=303)
            if token is not None:
                redirect.set_cookie(
                    COOKIE,
                    token.strip(),
                    max_age=COOKIE_MAX_AGE_S,
                    httponly=True,
                    samesite="strict",
                    secure=request.url.scheme == "https",
                    path="/",
                )
            if choice is not None:
                remember(redirect, choice, secure=request.url.scheme == "https")
            return redirect
        viewer = await check_viewer(request, token_from(request))
    except ViewerRejected as exc:
        return _rejection_page(request, exc)
    if viewer is None:
        viewer = await signed_in_viewer(request)
    engine = request.app.state.engine
    settings = request.app.state.settings
    runtime: Monitoring | None = getattr(request.app.state, "monitoring", None)
    data = (
        await runtime.refresher.summary(with_kpis=True)
        if runtime is not None
        else await board(engine, floor=request.app.state.floor)
    )
    events = await recent_events(engine)
    outlook = await runtime.refresher.forecast() if runtime is not None else None
    t = request_translator(request)
    can_act = viewer is not None and viewer.has_any({"supervisor"})
    session = token_from(request)
    # The script starts from the rendered counts; everything else arrives as events.
    initial = {
        "counts": data["counts"],
        "devices": data["devices"],
        "floor": data["floor"],
        "i18n": _script_texts(t),
        "csrf": action_key(session) if can_act and session else None,
    }
    page = (
        _templates(t.lang)
        .get_template("status.html")
        .render(
            site=settings.site,
            board=data,
            can_act=can_act,
            controllers=runtime.feed.controllers() if runtime is not None else [],
            sla_margin_min=round(settings.monitoring.sla_margin_min),
            dur=lambda seconds: duration(seconds, t),
            floor_svg=_floor_svg(request),
            names=initial["i18n"],
            kpis=data["kpis"],
            events=events,
            forecast=outlook,
            flow_svg=Markup(order_flow_svg(data["counts"], t)),
            langs=langs(),
            initial_json=Markup(to_json(initial).replace("<", "\\u003c")),
            generated_at=data["generated_at"],
        )
    )
    return _html(page)


def _floor_svg(request: Request) -> Markup | None:
    floor = request.app.state.floor
    if floor is None:
        return None
    from wcs.floor_map import floor_map_svg

    return Markup(floor_map_svg(floor))


def duration(seconds: float, t: Translator) -> str:
    """A short duration in the page's language: 45 s, 12 min, 2 h 5 min, 3 d 4 h."""
    s = max(0, int(seconds))
    if s < 60:
        return t.gettext("%(n)s s", n=s)
    if s < 3600:
        return t.gettext("%(n)s min", n=s // 60)
    if s < 86400:
        return t.gettext("%(h)s h %(m)s min", h=s // 3600, m=(s % 3600) // 60)
    return t.gettext("%(d)s d %(h)s h", d=s // 86400, h=(s % 86400) // 3600)


async def signed_in_viewer(request: Request) -> Principal | None:
    """Who is looking, when they sent a token (a public board does not ask)."""
    token = token_from(request)
    if token is None:
        return None
    principal: Principal | None = await request.app.state.token_cache.lookup(
        request.app.state.engine, token, request.app.state.settings.admin_token
    )
    return principal


def action_key(session_token: str) -> str:
    """What the page's script sends with each action: the session token's HMAC, which a
    page of another site cannot know (it cannot read this page)."""
    return hmac.new(session_token.encode(), b"wcs-status-actions", hashlib.sha256).hexdigest()[:32]


def _script_texts(t: Translator) -> dict[str, Any]:
    """What status.js writes itself, in the page's language."""
    return {
        "live": t.gettext("live"),
        "reconnecting": t.gettext("reconnecting…"),
        "no_alerts": t.gettext("No open alerts."),
        "new": t.gettext("new"),
        "utc": t.gettext("UTC"),
        # status.js fills in {state} and {n}.
        "orders_in_state": t.gettext("%(state)s: %(n)s orders", state="{state}", n="{n}"),
        "state": t.terms("state"),
        "device": t.terms("device"),
        "device_kind": t.terms("device_kind"),
        "severity": t.terms("severity"),
        "alert_title": {code: t.gettext(spec.title) for code, spec in ALERT_CATALOGUE.items()},
        "stage": {stage: t.pgettext(*marked) for stage, marked in STAGE_NAMES.items()},
        # status.js fills in the %(...)s placeholders itself.
        "dur": {
            "s": t.gettext("%(n)s s"),
            "min": t.gettext("%(n)s min"),
            "h": t.gettext("%(h)s h %(m)s min"),
            "d": t.gettext("%(d)s d %(h)s h"),
        },
        "sup": {
            "no_alerts": t.gettext("No open alerts."),
            "ack": t.gettext("Acknowledge"),
            "assign": t.gettext("Assign"),
            "assign_to": t.gettext("Assign to"),
            "assign_placeholder": t.gettext("name"),
            "resolve": t.gettext("Resolve"),
            "acked_by": t.gettext("acknowledged by %(name)s"),
            "assigned_to": t.gettext("assigned to %(name)s"),
            "action_failed": t.gettext("Not done: %(reason)s"),
            "late_by": t.gettext("late %(time)s"),
            "ship_by": t.gettext("ship by"),
            "deliver_by": t.gettext("deliver by"),
            "no_down": t.gettext("Every device is online."),
            "down_for": t.gettext("for %(time)s"),
            "batches": t.gettext("%(n)s batches"),
            "zones_forecast": t.gettext(
                "orders in the last hour against the forecast's %(plan)s/h"
            ),
            "zones_intake": t.gettext(
                "orders in the last hour against the %(plan)s received (no forecast yet)"
            ),
            "online": t.pgettext("controller", "online"),
            "offline": t.pgettext("controller", "offline"),
        },
        "station_state": {
            "idle": t.pgettext("station state", "idle"),
            "busy": t.pgettext("station state", "busy"),
            "down": t.pgettext("station state", "down"),
        },
        "zone": {
            "pick": t.pgettext("zone", "Pick"),
            "qc": t.pgettext("zone", "QC"),
            "pack": t.pgettext("zone", "Pack"),
            "outbound": t.pgettext("zone", "Outbound"),
        },
        "station_kind": {
            "pick": t.pgettext("station kind", "pick"),
            "qc": t.pgettext("station kind", "QC"),
            "pack": t.pgettext("station kind", "pack"),
            "returns": t.pgettext("station kind", "returns"),
        },
    }


# The stages of the order flow as the pages name them (extraction reads literals).
STAGE_NAMES: dict[str, tuple[str, str]] = {
    "intake": NP_("order stage", "intake"),
    "reservation": NP_("order stage", "reservation"),
    "picking": NP_("order stage", "picking"),
    "qc": NP_("order stage", "QC"),
    "packing": NP_("order stage", "packing"),
    "outbound": NP_("order stage", "outbound"),
    "delivery": NP_("order stage", "delivery"),
    "after_sales": NP_("order stage", "after-sales"),
}


@router.get("/status/static/{name}")
async def status_static(name: Annotated[str, Path(max_length=40)]) -> Response:
    """The page's own script and stylesheet (public: they hold no data)."""
    media = STATIC_FILES.get(name)
    if media is None:
        return problem(404, f"no file {name!r} here; the page uses status.js and status.css")
    body = resources.files("api").joinpath("static", name).read_bytes()
    return Response(
        body,
        media_type=media,
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )
