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
"""

from __future__ import annotations

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
        await check_viewer(request, token_from(request))
    except ViewerRejected as exc:
        return _rejection_page(request, exc)
    engine = request.app.state.engine
    runtime: Monitoring | None = getattr(request.app.state, "monitoring", None)
    data = await board(engine)
    events = await recent_events(engine)
    outlook = await runtime.refresher.forecast() if runtime is not None else None
    t = request_translator(request)
    # The script starts from the rendered counts; everything else arrives as events.
    initial = {"counts": data["counts"], "i18n": _script_texts(t)}
    page = (
        _templates(t.lang)
        .get_template("status.html")
        .render(
            site=request.app.state.settings.site,
            board=data,
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
