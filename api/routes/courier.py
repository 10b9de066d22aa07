"""The courier's phone page, ``/courier`` (design §1 step 7, own fleet).

Server-rendered from Jinja2 templates in the package, phone-sized, in English or
Simplified Chinese (``api.i18n``: ``Accept-Language``, or the switch on the page).
Every action is a plain HTML form that works without JavaScript; the page's small
script only keeps a double tap from sending twice. Nothing is loaded from anywhere
else, and the Content-Security-Policy says so. The page carries the whole day -
stops in order, addresses, notes, ``tel:`` and ``geo:`` links (the phone's own
dialler and map app) - so a courier in a stairwell without network can still read,
call and navigate; only the buttons need the network.

Sign-in works like the status page's: the courier opens ``/courier?token=<token>``
once; the courier token (role courier, subject = the courier's id) is checked, kept
in an HttpOnly, SameSite=Strict cookie scoped to ``/courier`` and the browser is
sent on to plain ``/courier``, so the token leaves the address bar. ``Authorization:
Bearer`` works too.

Unlike the status page these forms change state with a cookie, so each carries a
token against cross-site request forgery: an HMAC of the session's own token, which
another site cannot compute because it cannot read the cookie. SameSite=Strict
already keeps the cookie off cross-site requests, and a request whose ``Origin``
names another host is refused as well.

The actions are the courier-app service's (``wcs.services.courier_app``), which
uses the proof-of-delivery and tracking services every other channel uses:

- ``POST /courier/start``: lock the route, parcels out for delivery;
- ``POST /courier/stops/{stop_id}/delivered`` (multipart: ``photo``,
  ``receiver_name``): the proof of delivery, order -> delivered;
- ``POST /courier/stops/{stop_id}/failed`` (``reason``, ``detail``): a failed
  attempt, order -> delivery_failed, the parcel goes to the next day's plan unless
- ``POST /courier/stops/{stop_id}/retry``: the courier tries it again the same day.

Times: before the start, the plan's; once started, from the real start and again
from each stop done (``wcs.services.courier_app.live_times``). Start is refused,
naming them, while parcels of the route are still at the dock. The delivery form
takes a photo and, drawn on the screen, the receiver's signature.

Each answers with a redirect back to the page (post/redirect/get, so reloading
does not send again); a refusal renders the page with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData, UploadFile

from api.i18n import langs, parse_lang, remember, request_translator
from api.params import StopId
from api.problems import problem
from wcs.errors import Conflict, Forbidden, NotFound, ValidationFailed, WcsError
from wcs.i18n.jinja import localized
from wcs.i18n.markers import N_
from wcs.i18n.translator import Translator
from wcs.persistence.db import DatabaseUnavailable
from wcs.services.auth import Principal
from wcs.services.courier_app import (
    FAILURE_REASONS,
    deliver,
    fail,
    live_times,
    my_route,
    retry_stop,
    start_route,
)
from wcs.services.fleet_couriers import get_courier
from wcs.services.fleet_plans import PlanningConfig
from wcs.services.pod import UnsupportedImage, UploadTooLarge, check_image
from wcs.timeutil import as_utc, utcnow

router = APIRouter(tags=["courier page"])

COOKIE = "wcs_courier"
COOKIE_PATH = "/courier"
COOKIE_MAX_AGE_S = 14 * 3600  # one shift, with overtime
CSRF_FIELD = "csrf"
STATIC_FILES = {"courier.js": "text/javascript", "courier.css": "text/css"}
OK_MESSAGES = {
    "started": N_("Route started: parcels are out for delivery."),
    "delivered": N_("Stop %(seq)s delivered. Thank you!"),
    "failed": N_(
        "Stop %(seq)s: failed attempt recorded. Try it again later today, or it is "
        "planned again tomorrow."
    ),
    "retry": N_("Stop %(seq)s is open again: deliver it or record the attempt."),
}
# Why a sign-in failed, for the page (translated) and for API clients (English).
UNKNOWN_TOKEN = N_("the token is unknown or revoked")
NOT_COURIER = N_("it is not a courier token")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page holds names and addresses: not for shared caches, and checked again
    # whenever the phone is online.
    "Cache-Control": "private, no-cache",
}


class NotSignedIn(Exception):
    def __init__(self, status: int, reason_key: str) -> None:
        super().__init__(reason_key)
        self.status = status
        self.reason_key = reason_key


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("api", "templates"),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )


_templates = localized(_environment)


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


async def _signed_in(request: Request, token: str | None) -> Principal:
    if not token:
        raise NotSignedIn(401, "")
    principal: Principal | None = await request.app.state.token_cache.lookup(
        request.app.state.engine, token, request.app.state.settings.admin_token
    )
    if principal is None:
        raise NotSignedIn(401, UNKNOWN_TOKEN)
    if "courier" not in principal.roles or not principal.subject:
        raise NotSignedIn(403, NOT_COURIER)
    return principal


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"wcs-courier-form", hashlib.sha256).hexdigest()[:32]


def _check_form_origin(request: Request, form: FormData, session_token: str) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("this form was sent from another site")
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_token(session_token)):
        raise Forbidden("the form is out of date; reload the page and try again")


def _config(request: Request) -> PlanningConfig:
    return PlanningConfig.from_settings(request.app.state.settings)


def _local(moment: Any, tz: ZoneInfo) -> str:
    if not isinstance(moment, datetime):
        return ""
    return as_utc(moment).astimezone(tz).strftime("%H:%M")


def _geo_uri(stop: dict[str, Any]) -> str:
    to = stop["deliver_to"]
    where = ", ".join(
        p for p in (to["line1"], f"{to['postal_code']} {to['city']}", to["country"]) if p
    )
    return f"geo:{stop['lat']:.6f},{stop['lon']:.6f}?q={quote(where, safe='')}"


def _tel_uri(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    return f"tel:{digits}" if digits.strip("+") else None


def _stops(route: dict[str, Any], tz: ZoneInfo, t: Translator) -> list[dict[str, Any]]:
    # Once started, times run from the real start and from each stop done.
    live = live_times(route["stops"], route["depart_at"], route["started_at"], utcnow())
    shown = []
    for stop in route["stops"]:
        window = None
        if stop["window_start"] or stop["window_end"]:
            window = (
                _local(stop["window_start"], tz) or "…",
                _local(stop["window_end"], tz) or "…",
            )
        shown.append(
            {
                **stop,
                "geo": _geo_uri(stop),
                "tel": _tel_uri(stop["deliver_to"]["phone"]),
                "eta_local": _local(live.get(stop["id"], stop["eta"]), tz),
                "retimed": stop["id"] in live,
                "window_local": window,
                "outcome_local": _local(stop["outcome_at"], tz),
                "status_label": t.shipment(stop["shipment_status"]),
                "waiting_handover": stop["shipment_status"] == "booked",
            }
        )
    return shown


async def _render(
    request: Request,
    principal: Principal,
    session_token: str,
    *,
    status: int = 200,
    error: str | None = None,
    ok: str | None = None,
    ok_seq: int | None = None,
) -> Response:
    t = request_translator(request)
    config = _config(request)
    engine = request.app.state.engine
    assert principal.subject is not None
    try:
        name = str((await get_courier(engine, principal.subject))["name"])
    except NotFound:
        name = principal.name
    day = config.today()
    route = await my_route(engine, principal.subject, day)
    stops = _stops(route, config.tz, t) if route else []
    missing = [s for s in stops if s["waiting_handover"] and not s["outcome"]]
    page = (
        _templates(t.lang)
        .get_template("courier.html")
        .render(
            langs=langs(),
            name=name,
            day=day.isoformat(),
            route=route,
            stops=stops,
            done=sum(1 for s in stops if s["outcome"]),
            missing=missing,
            depart=_local(route["depart_at"], config.tz) if route else "",
            back=_local(route["return_at"], config.tz) if route else "",
            started=_local(route["started_at"], config.tz) if route else "",
            csrf=csrf_token(session_token),
            reasons=[(code, t.term("failure_reason", code)) for code in FAILURE_REASONS],
            error=error,
            ok=t.gettext(OK_MESSAGES[ok], seq=ok_seq or "") if ok in OK_MESSAGES else None,
        )
    )
    return _html(page, status)


def _wants_html(request: Request) -> bool:
    # Browsers ask for text/html; any other client gets the API's problem details.
    return "text/html" in request.headers.get("accept", "")


def _sign_in_page(request: Request, exc: NotSignedIn) -> Response:
    t = request_translator(request)
    if not _wants_html(request):
        reason = exc.reason_key or "open /courier?token=<courier token> once"
        return problem(exc.status, f"courier page: {reason}", code="courier-page-denied")
    page = (
        _templates(t.lang)
        .get_template("courier_login.html")
        .render(langs=langs(), reason=t.gettext(exc.reason_key) if exc.reason_key else "")
    )
    return _html(page, exc.status)


@router.get("/courier", response_class=HTMLResponse)
async def courier_page(
    request: Request,
    token: Annotated[
        str | None, Query(max_length=200, description="courier token, moved into a cookie")
    ] = None,
    lang: Annotated[
        str | None, Query(max_length=10, description="en or zh-CN, remembered in a cookie")
    ] = None,
    ok: Annotated[str | None, Query(max_length=20)] = None,
    stop: Annotated[int | None, Query(ge=0, le=10_000)] = None,
) -> Response:
    """The courier's day (HTML): stops in order with navigation, call, delivered and
    failed-attempt forms. Needs a courier token; see the module docstring."""
    choice = parse_lang(lang)
    secure = request.url.scheme == "https"
    try:
        if token is not None or choice is not None:
            if token is not None:
                await _signed_in(request, token.strip())
            redirect = RedirectResponse(COOKIE_PATH, status_code=303)
            if token is not None:
                redirect.set_cookie(
                    COOKIE,
                    token.strip(),
                    max_age=COOKIE_MAX_AGE_S,
                    httponly=True,
                    samesite="strict",
                    secure=secure,
                    path=COOKIE_PATH,
                )
            if choice is not None:
                remember(redirect, choice, secure=secure)
            return redirect
        session = _token(request)
        principal = await _signed_in(request, session)
    except NotSignedIn as exc:
        return _sign_in_page(request, exc)
    assert session is not None
    return await _render(request, principal, session, ok=ok, ok_seq=stop)


async def _session(request: Request) -> tuple[Principal, str]:
    token = _token(request)
    principal = await _signed_in(request, token)
    assert token is not None
    return principal, token


def _status_of(exc: WcsError) -> int:
    if isinstance(exc, UploadTooLarge):
        return 413
    if isinstance(exc, UnsupportedImage):
        return 415
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, DatabaseUnavailable):
        return 503
    return 422


def _back(ok: str, stop_id: int | None = None, seq: int | None = None) -> Response:
    target = f"{COOKIE_PATH}?ok={ok}"
    if seq is not None:
        target += f"&stop={seq}"
    if stop_id is not None:
        target += f"#stop-{stop_id}"
    return RedirectResponse(target, status_code=303)


async def _act(request: Request, action: str, stop_id: int | None = None) -> Response:
    try:
        principal, session = await _session(request)
    except NotSignedIn as exc:
        return _sign_in_page(request, exc)
    assert principal.subject is not None
    engine = request.app.state.engine
    topics = request.app.state.topics
    settings = request.app.state.settings
    form: FormData | None = None
    try:
        form = await request.form(max_files=2, max_fields=8, max_part_size=16 * 1024)
        _check_form_origin(request, form, session)
        if action == "start":
            route_id = form.get("route_id")
            if not isinstance(route_id, str) or not route_id:
                raise ValidationFailed("the form has no route; reload the page")
            await start_route(engine, topics, principal.subject, route_id)
            response = _back("started")
        elif action == "delivered":
            assert stop_id is not None
            part = form.get("photo")
            if not isinstance(part, UploadFile):
                raise ValidationFailed("take a photo of the parcel at the door")
            data = await part.read(settings.pod_max_bytes + 1)
            if not data:
                raise ValidationFailed("take a photo of the parcel at the door")
            photo = check_image(
                "photo", data, max_bytes=settings.pod_max_bytes, filename=part.filename
            )
            # The receiver's signature, drawn on the screen (optional, besides the photo).
            drawn = form.get("signature")
            signature = None
            if isinstance(drawn, UploadFile):
                ink = await drawn.read(settings.pod_max_bytes + 1)
                if ink:
                    signature = check_image(
                        "signature", ink, max_bytes=settings.pod_max_bytes, filename=drawn.filename
                    )
            receiver = form.get("receiver_name")
            if not isinstance(receiver, str) or not receiver.strip():
                raise ValidationFailed("write who took the parcel")
            await deliver(
                engine,
                topics,
                principal.subject,
                stop_id,
                receiver_name=receiver.strip()[:200],
                photo=photo,
                signature=signature,
                pod_dir=settings.pod_dir,
            )
            response = _back("delivered", stop_id, _int(form.get("seq")))
        elif action == "retry":
            assert stop_id is not None
            await retry_stop(engine, principal.subject, stop_id)
            response = _back("retry", stop_id, _int(form.get("seq")))
        else:
            assert stop_id is not None
            reason = form.get("reason")
            detail = form.get("detail")
            await fail(
                engine,
                topics,
                principal.subject,
                stop_id,
                reason=reason if isinstance(reason, str) else "",
                detail=detail if isinstance(detail, str) else "",
            )
            response = _back("failed", stop_id, _int(form.get("seq")))
    except WcsError as exc:
        request.app.state.wake_relay()
        if not _wants_html(request):
            return problem(_status_of(exc), exc.message, code=exc.code.replace("_", "-"))
        return await _render(request, principal, session, status=_status_of(exc), error=exc.message)
    finally:
        if form is not None:
            await form.close()
    request.app.state.wake_relay()
    return response


def _int(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit() and len(value) < 6:
        return int(value)
    return None


@router.post("/courier/start", response_class=HTMLResponse)
async def courier_start(request: Request) -> Response:
    """Form: start the route (lock it, parcels out for delivery)."""
    return await _act(request, "start")


@router.post("/courier/stops/{stop_id}/retry", response_class=HTMLResponse)
async def courier_retry(request: Request, stop_id: StopId) -> Response:
    """Form: try a failed stop again the same day."""
    return await _act(request, "retry", stop_id)


@router.post("/courier/stops/{stop_id}/delivered", response_class=HTMLResponse)
async def courier_delivered(request: Request, stop_id: StopId) -> Response:
    """Multipart form: ``photo`` and ``receiver_name``; the proof of delivery."""
    return await _act(request, "delivered", stop_id)


@router.post("/courier/stops/{stop_id}/failed", response_class=HTMLResponse)
async def courier_failed(request: Request, stop_id: StopId) -> Response:
    """Form: ``reason`` (not_home, refused, address_not_found, no_access, other) and
    ``detail``; a failed attempt."""
    return await _act(request, "failed", stop_id)


@router.post("/courier/logout")
async def courier_logout() -> Response:
    redirect = RedirectResponse(COOKIE_PATH, status_code=303)
    redirect.delete_cookie(COOKIE, path=COOKIE_PATH)
    return redirect


@router.get("/courier/static/{name}")
async def courier_static(name: Annotated[str, Path(max_length=40)]) -> Response:
    """The page's own script and stylesheet (public: they hold no data)."""
    media = STATIC_FILES.get(name)
    if media is None:
        return problem(404, f"no file {name!r} here; the page uses courier.js and courier.css")
    body = resources.files("api").joinpath("static", name).read_bytes()
    return Response(
        body,
        media_type=media,
        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
