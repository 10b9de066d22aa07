"""Pages for customers: the tracking page and, by signed link, self-service.

Server-rendered, phone first, in the customer's language (``api.i18n``: the switch,
its cookie, the order's language, ``Accept-Language``), with nothing loaded from
elsewhere (the Content-Security-Policy says so) and no script needed.

The tracking page lives at the tracking link the customer already has,
``/api/v1/track/{tracking_no}``: a browser (``Accept: text/html``) gets the page,
every other client the JSON it always got. An unknown number gets a page saying
so (404), not a JSON error.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from importlib import resources
from pathlib import Path as FsPath
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_currency
from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from api.i18n import langs, parse_lang, remember, request_translator
from api.problems import problem
from wcs.errors import NotFound
from wcs.i18n.jinja import localized
from wcs.i18n.translator import Translator
from wcs.links import LinkRefused, Links
from wcs.persistence.tables import orders
from wcs.services.tracking_view import proof_photo, tracking_view

router = APIRouter(tags=["customer pages"])

STATIC_FILES = {"customer.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Each page is one customer's: never in a shared cache.
    "Cache-Control": "private, no-store",
}
TRACKING_NO = re.compile(r"[A-Za-z0-9-]{4,64}")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("api", "templates"),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["clock"] = _clock
    env.filters["money"] = _money
    return env


templates = localized(_environment)


@pass_context
def _when(context: Context, moment: datetime) -> str:
    t: Translator = context["t"]
    # The day and the time to the minute, each in the locale's own form.
    tz = context["tz"]
    local = moment.astimezone(tz)
    day = format_date(local, "medium", locale=t.locale)
    return f"{day} {format_time(local, 'short', tzinfo=tz, locale=t.locale)}"


@pass_context
def _money(context: Context, minor: int | None, currency: str | None) -> str:
    if minor is None:
        return ""
    t: Translator = context["t"]
    return str(format_currency(minor / 100, currency or "EUR", locale=t.locale))


@pass_context
def _clock(context: Context, moment: datetime) -> str:
    t: Translator = context["t"]
    return str(format_time(moment, "short", tzinfo=context["tz"], locale=t.locale))


def wants_html(request: Request) -> bool:
    """A browser asking for a page: ``text/html`` ranked at least as high as JSON."""
    best: dict[str, float] = {}
    for item in request.headers.get("accept", "").split(",")[:32]:
        media, *params = item.strip().split(";")
        quality = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        best[media.strip().lower()] = max(best.get(media.strip().lower(), 0.0), quality)
    html = best.get("text/html", 0.0)
    return html > 0 and html >= best.get("application/json", 0.0)


def site_zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.settings.monitoring.timezone)


def links(request: Request) -> Links:
    return Links(request.app.state.settings.link_secret)


def html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def page(
    request: Request, t: Translator, name: str, status: int = 200, **context: Any
) -> HTMLResponse:
    body = (
        templates(t.lang)
        .get_template(name)
        .render(tz=site_zone(request), langs=langs(), here=request.url.path, **context)
    )
    return html(body, status)


def switch_language(request: Request) -> Response | None:
    """``?lang=`` on a customer page: remember the choice and show the page without it."""
    choice = parse_lang(request.query_params.get("lang"))
    if choice is None:
        return None
    redirect = RedirectResponse(request.url.path, status_code=303)
    remember(redirect, choice, secure=request.url.scheme == "https")
    return redirect


async def order_lang(request: Request, order_id: str) -> str | None:
    from sqlalchemy import select

    async with request.app.state.engine.connect() as conn:
        value = await conn.scalar(select(orders.c.lang).where(orders.c.id == order_id))
    return str(value) if value else None


async def tracking_page(request: Request, tracking_no: str) -> Response:
    """The tracking page for a browser (called by ``GET /api/v1/track/{tracking_no}``)."""
    switched = switch_language(request)
    if switched is not None:
        return switched
    engine = request.app.state.engine
    try:
        if not TRACKING_NO.fullmatch(tracking_no):
            raise NotFound("not a tracking number")
        view = await tracking_view(engine, tracking_no)
    except NotFound:
        t = request_translator(request)
        return page(request, t, "customer/track_unknown.html", 404, number=tracking_no[:64])
    t = request_translator(request, await order_lang(request, view["order_id"]))
    proof_url = None
    if view["proof"] and view["proof"]["photo"]:
        token = links(request).make("proof", view["order_id"], view["shipment_id"])
        proof_url = f"/api/v1/track/{tracking_no}/proof/{token}"
    country = view["destination"]["country"]
    return page(
        request,
        t,
        "customer/track.html",
        v=view,
        window=view["window"],
        proof_url=proof_url,
        country_name=t.locale.territories.get(country, country),
    )


@router.get("/api/v1/track/{tracking_no}/proof/{token}", include_in_schema=False)
async def proof_of_delivery_photo(
    request: Request,
    tracking_no: Annotated[str, Path(max_length=64)],
    token: Annotated[str, Path(max_length=400)],
) -> Response:
    """The photo of the delivered parcel, behind a signed link that expires within the
    hour (the tracking page makes a new one each time it is shown)."""
    try:
        link = links(request).read("proof", token)
        view = await tracking_view(request.app.state.engine, tracking_no)
    except (LinkRefused, NotFound):
        return problem(404, "no such photo, or its link has expired: reload the tracking page")
    if link.ref != view["shipment_id"]:
        return problem(404, "no such photo, or its link has expired: reload the tracking page")
    found = await proof_photo(request.app.state.engine, view["shipment_id"])
    if found is None:
        return problem(404, "this delivery has no photo")
    relative, media_type = found
    path = await asyncio.to_thread(_stored_file, request.app.state.settings.pod_dir, relative)
    if path is None:
        return problem(404, "the photo is missing from storage")
    return FileResponse(
        path,
        media_type=media_type if "/" in media_type else f"image/{media_type}",
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def _stored_file(base: FsPath, relative: str) -> FsPath | None:
    """The stored file, if it exists inside ``base`` (never a path outside it)."""
    path = (base / relative).resolve()
    return path if path.is_relative_to(base.resolve()) and path.is_file() else None


@router.get("/customer/static/{name}", include_in_schema=False)
async def customer_static(name: Annotated[str, Path(max_length=40)]) -> Response:
    media = STATIC_FILES.get(name)
    if media is None:
        return problem(404, f"no file {name!r} here")
    body = resources.files("api").joinpath("static", name).read_bytes()
    return Response(
        body,
        media_type=media,
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )
