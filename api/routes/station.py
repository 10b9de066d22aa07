"""Station screens for QC and pack staff: ``/station/{station_id}``, one URL per station.

Signing in: a token of the station's own role - ``qc_operator`` at a QC bench,
``pack_operator`` at a pack station - opened once as ``/station/QC1?token=<token>``;
it moves into an HttpOnly, SameSite=Strict cookie scoped to that station's pages and
the address is cleaned. A token whose subject names a station opens that station
only (a token per station, kept on its tablet); one without a subject opens every
station of its kind (a person's own token). Supervisors may open any station.

- ``GET /station/{id}``: the page (tablet-sized), the work at hand.
- ``GET /station/{id}/state``: the same as JSON; the page asks every second, so
  counts move as the scans arrive.
- ``POST /station/{id}/qc/{order_id}``: the QC operator's packaging and appearance
  verdicts with a photo (multipart form, the page's own key against cross-site
  posts): the photo is kept under the data directory and the verdict asked of the
  bench's controller, exactly as ``POST /api/v1/qc/{order_id}/result`` does.
"""

from __future__ import annotations

import hashlib
import hmac
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import UploadFile

from api.i18n import langs, parse_lang, remember, request_translator
from api.live import to_json
from api.problems import problem
from wcs.errors import ConfigError, WcsError
from wcs.floor import Station
from wcs.i18n.jinja import localized
from wcs.i18n.translator import Translator
from wcs.services import floor_requests
from wcs.services.auth import Principal
from wcs.services.pod import check_image
from wcs.services.station_screen import station_view, store_photo

router = APIRouter(tags=["station screens"])

COOKIE = "wcs_station"
COOKIE_MAX_AGE_S = 12 * 3600
FORM_KEY = "key"
STATIC_FILES = {"station.js": "text/javascript", "station.css": "text/css"}
ROLE_OF_KIND = {"qc": "qc_operator", "pack": "pack_operator"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("api", "templates"),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )


_templates = localized(_environment)


def _station(request: Request, station_id: str) -> Station:
    floor = request.app.state.floor
    if floor is None:
        raise Refused(404, "the API has no floor file (WCS_FLOOR_FILE): it knows no stations")
    try:
        station: Station = floor.station(station_id)
    except ConfigError:
        raise Refused(404, f"there is no station {station_id} on this floor") from None
    if station.kind not in ROLE_OF_KIND:
        raise Refused(
            404, f"station {station_id} is a {station.kind} station; screens are for QC and pack"
        )
    return station


async def _operator(request: Request, station: Station, token: str | None) -> Principal:
    if not token:
        raise Refused(
            401, f"open this screen once with the station's link (/station/{station.id}?token=…)"
        )
    principal: Principal | None = await request.app.state.token_cache.lookup(
        request.app.state.engine, token, request.app.state.settings.admin_token
    )
    if principal is None:
        raise Refused(401, "the token is unknown or revoked")
    if "supervisor" in principal.roles:
        return principal
    role = ROLE_OF_KIND[station.kind]
    if role not in principal.roles:
        raise Refused(403, f"'{principal.name}' is not a {role}; this is a {station.kind} station")
    if principal.subject and principal.subject != station.id:
        raise Refused(403, f"this token opens station {principal.subject}, not {station.id}")
    return principal


def _cookie_path(station: Station) -> str:
    return f"/station/{station.id}"


def form_key(token: str, station_id: str) -> str:
    """The key the page's forms carry: another site cannot read the page to know it."""
    message = f"wcs-station:{station_id}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()[:32]


def _refusal(request: Request, exc: Refused) -> Response:
    if "text/html" not in request.headers.get("accept", ""):
        return problem(exc.status, exc.reason, code="station-screen-denied")
    t = request_translator(request)
    page = _templates(t.lang).get_template("station_denied.html").render(reason=exc.reason)
    return HTMLResponse(page, status_code=exc.status, headers=HEADERS)


@router.get("/station/{station_id}", response_class=HTMLResponse)
async def station_page(
    request: Request,
    station_id: Annotated[str, Path(max_length=64)],
    token: Annotated[str | None, Query(max_length=200)] = None,
    lang: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The station's screen (HTML), sized for a tablet."""
    choice = parse_lang(lang)
    try:
        station = _station(request, station_id)
        if token is not None or choice is not None:
            if token is not None:
                await _operator(request, station, token.strip())
            redirect = RedirectResponse(_cookie_path(station), status_code=303)
            secure = request.url.scheme == "https"
            if token is not None:
                redirect.set_cookie(
                    COOKIE,
                    token.strip(),
                    max_age=COOKIE_MAX_AGE_S,
                    httponly=True,
                    samesite="strict",
                    secure=secure,
                    path=_cookie_path(station),
                )
            if choice is not None:
                remember(redirect, choice, secure=secure)
            return redirect
        session = request.cookies.get(COOKIE)
        principal = await _operator(request, station, session)
    except Refused as exc:
        return _refusal(request, exc)
    assert session is not None
    t = request_translator(request)
    view = await station_view(request.app.state.engine, station, request.app.state.settings.pack)
    initial = {"view": view, "i18n": _texts(t)}
    page = (
        _templates(t.lang)
        .get_template("station.html")
        .render(
            station=station,
            view=view,
            who=principal.name,
            key=form_key(session, station.id),
            langs=langs(),
            initial_json=Markup(to_json(initial).replace("<", "\\u003c")),
            done=request.query_params.get("done"),
        )
    )
    return HTMLResponse(page, headers=HEADERS)


@router.get("/station/{station_id}/state")
async def station_state(
    request: Request, station_id: Annotated[str, Path(max_length=64)]
) -> Response:
    """The work at hand as JSON (the page polls it)."""
    try:
        station = _station(request, station_id)
        await _operator(request, station, request.cookies.get(COOKIE) or _bearer(request))
    except Refused as exc:
        return problem(exc.status, exc.reason, code="station-screen-denied")
    view = await station_view(request.app.state.engine, station, request.app.state.settings.pack)
    return Response(
        to_json(view), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@router.post("/station/{station_id}/qc/{order_id}")
async def qc_verdict(
    request: Request,
    station_id: Annotated[str, Path(max_length=64)],
    order_id: Annotated[str, Path(max_length=40)],
) -> Response:
    """The QC operator's verdicts with a photo, from the station's screen."""
    try:
        station = _station(request, station_id)
        session = request.cookies.get(COOKIE)
        principal = await _operator(request, station, session)
    except Refused as exc:
        return problem(exc.status, exc.reason, code="station-screen-denied")
    assert session is not None
    if station.kind != "qc":
        return problem(409, f"station {station.id} is not a QC bench")
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        return problem(403, "this form was sent from another site", code="forbidden")
    settings = request.app.state.settings
    async with request.form(max_files=1, max_fields=10) as form:
        sent = form.get(FORM_KEY)
        if not isinstance(sent, str) or not hmac.compare_digest(
            sent, form_key(session, station.id)
        ):
            return problem(
                403, "the screen is out of date; reload it and try again", code="forbidden"
            )
        packaging = form.get("packaging")
        appearance = form.get("appearance")
        note = form.get("note")
        upload = form.get("photo")
        if packaging not in ("ok", "damaged") or appearance not in ("ok", "damaged"):
            return problem(422, "choose a packaging and an appearance verdict (ok or damaged)")
        photo_ref: tuple[str, str] | None = None
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(settings.pod_max_bytes + 1)
            try:
                image = check_image(
                    "photo", data, max_bytes=settings.pod_max_bytes, filename=upload.filename
                )
            except WcsError as exc:
                return problem(422, exc.message)
            photo_ref = (store_photo(settings.data_dir, order_id, image), image.sha256)
        elif packaging == "damaged" or appearance == "damaged":
            return problem(422, "take a photo of the damage: it goes with the verdict")
    # The bench's controller applies the verdict, in order with the bench's scans.
    engine = request.app.state.engine
    asked = await floor_requests.ask(
        engine,
        "qc_verdict",
        actor=f"{principal.name}@{station.id}",
        order_id=order_id,
        body={
            "packaging_ok": packaging == "ok",
            "appearance_ok": appearance == "ok",
            "note": note.strip()[:500] if isinstance(note, str) and note.strip() else None,
            "photo": photo_ref[0] if photo_ref else None,
            "photo_sha256": photo_ref[1] if photo_ref else None,
        },
    )
    answer = await floor_requests.wait(engine, asked, settings.controller.answer_wait_s)
    if answer.state == "refused":
        refusal = answer.result or {}
        status = 404 if refusal.get("status") == 404 else 409
        return problem(status, str(refusal.get("detail") or "the bench refused the verdict"))
    result = str((answer.result or {}).get("qc") or "pending")
    request.app.state.wake_relay()
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"order_id": order_id, "qc": result})
    return RedirectResponse(f"{_cookie_path(station)}?done={result}", status_code=303)


def _texts(t: Translator) -> dict[str, Any]:
    """What station.js writes itself."""
    return {
        "waiting_qc": t.gettext("Waiting for the next tote: scan it at the bench."),
        "waiting_pack": t.gettext("Waiting for the next parcel."),
        "counting": t.gettext("Scan each item: %(scanned)s of %(expected)s counted"),
        "passed": t.gettext("QC passed: the tote goes on to packing."),
        "failed": t.gettext("QC failed: %(reason)s"),
        "failed_todo": t.gettext(
            "Put the tote on the exception lane and leave it there: a supervisor decides "
            "to re-pick it or to write the items off."
        ),
        "extra": t.gettext("%(n)s × %(sku)s scanned, not in the order"),
        "weighing": t.gettext("Put the parcel on the scale."),
        "labelling": t.gettext("Label printing on %(printer)s."),
        "awaiting_scan": t.gettext("Label printed: stick it on and scan it."),
        "packed": t.gettext("Packed: the parcel goes to outbound."),
        "rejected": t.gettext(
            "Weight off by %(diff)s g: take the items out, check them against the list, "
            "pack them again and weigh again. Three in a row alert the supervisor."
        ),
        "no_weight": t.gettext("not weighed yet"),
    }


@router.get("/station/static/{name}")
async def station_static(name: Annotated[str, Path(max_length=40)]) -> Response:
    media = STATIC_FILES.get(name)
    if media is None:
        return problem(404, f"no file {name!r} here")
    body = resources.files("api").joinpath("static", name).read_bytes()
    return Response(body, media_type=media, headers={"Cache-Control": "max-age=300"})
