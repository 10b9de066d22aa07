"""Self-service pages reached by signed link (no account): ``/my/{purpose}/{token}``.

Each link is for one order and one purpose (``wcs.links``); GET shows the page, POST
(a plain form, no script) acts once. A link that was changed or cut off, has
expired, or was already used is refused with a page that says why and what to do
instead; nothing on these pages is about any order but the link's own.

- ``/my/backorder/{token}``: wait, cancel, or take a substitute (same category, in
  stock, similar price) for what is out of stock;
- ``/my/receipt/{token}``: confirm receipt and rate the delivery;
- ``/my/return/{token}``: start a return (lines, reason, photos), then
  ``/my/label/{token}``: the return label as a PDF.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from api.i18n import request_translator
from api.routes.customer import links, page, switch_language
from wcs.domain.delivery import ReturnWish
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.i18n.markers import N_
from wcs.i18n.translator import Translator
from wcs.labels.return_pdf import return_label_html, return_label_pdf
from wcs.links import LIFETIME, SINGLE_USE, Link, LinkRefused, Purpose
from wcs.persistence.db import transaction
from wcs.services.backorders import record_choice
from wcs.services.pod import UnsupportedImage, UploadTooLarge, check_image
from wcs.services.returns import (
    RETURNABLE_STATES,
    choose_resolution,
    exchange_variants,
    get_return,
    request_return,
)
from wcs.services.self_service import (
    backorder_options,
    mark_used,
    order_summary,
    sender_of,
    used_at,
)
from wcs.services.signoff import confirm_receipt

router = APIRouter(tags=["customer self-service"], include_in_schema=False)

Token = Annotated[str, Path(min_length=10, max_length=400)]

REFUSALS = {
    "tampered": (
        N_("This link does not work"),
        N_("The link was changed or cut off on its way to you. Open it again from the e-mail "
           "or text message, or answer the e-mail and customer service will help."),
    ),
    "expired": (
        N_("This link has expired"),
        N_("Links in our messages work for a limited time. Answer the e-mail and customer "
           "service will do it for you."),
    ),
    "used": (
        N_("This link was already used"),
        N_("What you chose on %(when)s has been done; a link like this works once. Answer "
           "the e-mail if you want to change something."),
    ),
}  # fmt: skip


def refused(request: Request, t: Translator, why: str, when: datetime | None = None) -> Response:
    heading, text = REFUSALS[why]
    when_text = when.strftime("%Y-%m-%d %H:%M UTC") if when else ""
    return page(
        request,
        t,
        "customer/refused.html",
        410 if why in ("expired", "used") else 400,
        heading=t.gettext(heading),
        paragraphs=[t.gettext(text, when=when_text) if why == "used" else t.gettext(text)],
        why=why,
    )


async def opened(
    request: Request, purpose: Purpose, token: str
) -> tuple[Link, dict[str, Any], Translator] | Response:
    """The link, its order and the reader's language; or the page that refuses it."""
    try:
        link = links(request).read(purpose, token)
        order = await order_summary(request.app.state.engine, link.order_id)
    except (LinkRefused, NotFound) as exc:
        why = exc.why if isinstance(exc, LinkRefused) else "tampered"
        return refused(request, request_translator(request), why)
    t = request_translator(request, order["lang"])
    if purpose in SINGLE_USE:
        when = await used_at(request.app.state.engine, link)
        if when is not None:
            return refused(request, t, "used", when)
    return link, order, t


async def used(engine: Any, link: Link) -> None:
    """The link has done its one thing. Recorded after the action committed: an action
    that failed leaves the link usable; a second submission meanwhile found the order
    already changed and was refused by the action itself."""
    with contextlib.suppress(Conflict):
        async with transaction(engine) as conn:
            await mark_used(conn, link)


def expires(link: Link) -> datetime:
    return datetime.fromtimestamp(link.issued_at, UTC) + LIFETIME[link.purpose]


def done(
    request: Request, t: Translator, heading: str, *paragraphs: str, state: str = ""
) -> Response:
    return page(
        request, t, "customer/done.html", heading=heading, paragraphs=list(paragraphs), state=state
    )


def not_now(request: Request, t: Translator, order: dict[str, Any]) -> Response:
    return done(
        request,
        t,
        t.gettext("Nothing to do here any more"),
        t.gettext(
            "Your order %(ref)s is now: %(state)s.",
            ref=order["external_id"],
            state=t.state(order["state"]),
        ),
        state=order["state"],
    )


@router.get("/my/backorder/{token}")
async def backorder_page(request: Request, token: Token) -> Response:
    switched = switch_language(request)
    if switched is not None:
        return switched
    found = await opened(request, "backorder", token)
    if isinstance(found, Response):
        return found
    link, order, t = found
    if order["state"] != "backordered":
        return not_now(request, t, order)
    options = await backorder_options(request.app.state.engine, link.order_id)
    return page(
        request, t, "customer/backorder.html", order=order, options=options, expires=expires(link)
    )


@router.post("/my/backorder/{token}")
async def backorder_choice(request: Request, token: Token) -> Response:
    found = await opened(request, "backorder", token)
    if isinstance(found, Response):
        return found
    link, order, t = found
    form = await request.form()
    choice = str(form.get("choice") or "")
    kind, _, rest = choice.partition(":")
    replace, _, substitute = rest.partition(":")
    if kind not in ("wait", "cancel", "substitute") or (kind == "substitute" and not substitute):
        return await backorder_page(request, token)
    engine = request.app.state.engine
    if kind == "substitute":
        offered = {
            (o["sku"], s["sku"])
            for o in await backorder_options(engine, link.order_id)
            for s in o["substitutes"]
        }
        if (replace, substitute) not in offered:
            return await backorder_page(request, token)  # no longer offered: choose again
    try:
        result = await record_choice(
            engine,
            request.app.state.topics,
            link.order_id,
            kind,  # type: ignore[arg-type]
            actor=f"customer:{order['external_id']}"[:64],
            substitute_sku=substitute or None,
            replace_sku=replace or None,
        )
    except Conflict:
        order = await order_summary(engine, link.order_id)
        return not_now(request, t, order)
    except ValidationFailed as exc:
        return done(request, t, t.gettext("That did not work"), exc.message)
    await used(engine, link)
    request.app.state.wake_relay()
    state = str(result.get("state") or result.get("outcome") or "")
    texts = {
        "wait": t.gettext("Thank you: we ship everything together as soon as the stock arrives."),
        "cancel": t.gettext("Your order is cancelled. Nothing is shipped and nothing is charged."),
        "substitute": t.gettext("Thank you: we send the substitute with the rest of your order."),
    }
    return done(request, t, t.gettext("Your choice is recorded"), texts[kind], state=state)


@router.get("/my/receipt/{token}")
async def receipt_page(request: Request, token: Token) -> Response:
    switched = switch_language(request)
    if switched is not None:
        return switched
    found = await opened(request, "receipt", token)
    if isinstance(found, Response):
        return found
    link, order, t = found
    if order["state"] != "delivered":
        return not_now(request, t, order)
    return page(request, t, "customer/receipt.html", order=order, expires=expires(link))


@router.post("/my/receipt/{token}")
async def receipt_confirm(request: Request, token: Token) -> Response:
    found = await opened(request, "receipt", token)
    if isinstance(found, Response):
        return found
    link, order, t = found
    form = await request.form()
    rating = str(form.get("rating") or "")
    if rating not in {"1", "2", "3", "4", "5"}:
        return await receipt_page(request, token)
    comment = str(form.get("comment") or "")[:1000]
    engine = request.app.state.engine
    try:
        await confirm_receipt(
            engine,
            request.app.state.topics,
            link.order_id,
            rating=int(rating),
            comment=comment,
            actor=f"customer:{order['external_id']}"[:64],
        )
    except Conflict:
        return not_now(request, t, await order_summary(engine, link.order_id))
    await used(engine, link)
    request.app.state.wake_relay()
    return done(
        request,
        t,
        t.gettext("Thank you!"),
        t.gettext("Receipt confirmed: your order %(ref)s is closed.", ref=order["external_id"]),
        state="closed",
    )


RETURN_REASONS = {
    "damaged": N_("Arrived damaged"),
    "wrong_item": N_("Wrong item"),
    "not_as_described": N_("Not as described"),
    "does_not_fit": N_("Does not fit"),
    "changed_mind": N_("Changed my mind"),
}
MAX_PHOTOS = 3


def _return_page(
    request: Request,
    t: Translator,
    link: Link,
    order: dict[str, Any],
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    return page(
        request,
        t,
        "customer/return.html",
        status,
        order=order,
        expires=expires(link),
        reasons=[(code, t.gettext(text)) for code, text in RETURN_REASONS.items()],
        error=error,
    )


@router.get("/my/return/{token}")
async def return_page(request: Request, token: Token) -> Response:
    switched = switch_language(request)
    if switched is not None:
        return switched
    found = await opened(request, "return", token)
    if isinstance(found, Response):
        return found
    link, order, t = found
    if order["state"] not in RETURNABLE_STATES:
        return not_now(request, t, order)
    return _return_page(request, t, link, order)


@router.post("/my/return/{token}")
async def return_start(request: Request, token: Token) -> Response:
    found = await opened(request, "return", token)
    if isinstance(found, Response):
        return found
    link, order, t = found
    settings = request.app.state.settings
    form = await request.form()
    reason_code = str(form.get("reason") or "")
    if reason_code not in RETURN_REASONS:
        reason_code = "changed_mind"
    detail = str(form.get("detail") or "").strip()[:500]
    reason = RETURN_REASONS[reason_code] + (f": {detail}" if detail else "")
    wishes = []
    for ln in order["lines"]:
        raw = str(form.get(f"qty-{ln['line_no']}") or "0").strip()
        qty = int(raw) if raw.isdigit() and len(raw) < 6 else 0
        if qty:
            wishes.append(ReturnWish(ln["line_no"], qty, reason))
    if not wishes:
        return _return_page(
            request, t, link, order, status=422, error=t.gettext("Choose at least one item.")
        )
    photos = []
    for part in form.getlist("photos")[:MAX_PHOTOS]:
        if isinstance(part, UploadFile) and part.filename:
            data = await part.read(settings.pod_max_bytes + 1)
            try:
                photos.append(
                    check_image(
                        "photo", data, max_bytes=settings.pod_max_bytes, filename=part.filename
                    )
                )
            except (UploadTooLarge, UnsupportedImage) as exc:
                return _return_page(request, t, link, order, status=422, error=exc.message)
    if photos:
        hashes = ", ".join(p.sha256[:16] for p in photos)
        wishes = [ReturnWish(w.line_no, w.qty, f"{w.reason} (photos: {hashes})") for w in wishes]
    engine = request.app.state.engine
    try:
        return_id = await request_return(
            engine,
            request.app.state.topics,
            link.order_id,
            wishes,
            actor=f"customer:{order['external_id']}"[:64],
            returns_address=settings.returns.lines(),
        )
    except Conflict:
        return not_now(request, t, await order_summary(engine, link.order_id))
    except ValidationFailed as exc:
        return _return_page(request, t, link, order, status=422, error=exc.message)
    for photo in photos:
        await asyncio.to_thread(
            store_file, settings.pod_dir / "returns" / return_id / photo.relative_path, photo.data
        )
    await used(engine, link)
    request.app.state.wake_relay()
    signer = links(request)
    label = signer.make("label", link.order_id, return_id)
    resolution = signer.make("resolution", link.order_id, return_id)
    return page(
        request,
        t,
        "customer/return_done.html",
        rma=return_id,
        label_url=f"/my/label/{label}",
        resolution_url=f"/my/resolution/{resolution}",
    )


def store_file(path: Any, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@router.get("/my/label/{token}")
async def return_label_document(request: Request, token: Token) -> Response:
    """The return label as a PDF, in the order's language, while the link lasts."""
    found = await opened(request, "label", token)
    if isinstance(found, Response):
        return found
    link, order, t = found
    engine = request.app.state.engine
    try:
        ret = await get_return(engine, link.ref or "")
    except NotFound:
        return refused(request, t, "tampered")
    if ret["order_id"] != link.order_id:
        return refused(request, t, "tampered")
    sender = await sender_of(engine, link.order_id)
    names = {ln["line_no"]: ln["name"] for ln in order["lines"]}
    html_text = return_label_html(
        t.lang,
        rma=ret["id"],
        order_ref=order["external_id"],
        sender=sender,
        returns_address=request.app.state.settings.returns.lines(),
        items=[(names.get(ln["line_no"], ln["sku"]), ln["qty"]) for ln in ret["lines"]],
    )
    pdf = await asyncio.to_thread(return_label_pdf, html_text)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="return-{ret["id"]}.pdf"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/my/resolution/{token}")
async def resolution_page(request: Request, token: Token) -> Response:
    switched = switch_language(request)
    if switched is not None:
        return switched
    found = await opened(request, "resolution", token)
    if isinstance(found, Response):
        return found
    link, order, t = found
    engine = request.app.state.engine
    try:
        ret = await get_return(engine, link.ref or "")
    except NotFound:
        return refused(request, t, "tampered")
    if ret["order_id"] != link.order_id:
        return refused(request, t, "tampered")
    if ret["resolution"] is not None:
        return not_now(request, t, order)
    return page(
        request,
        t,
        "customer/resolution.html",
        ret=ret,
        names={ln["line_no"]: ln["name"] for ln in order["lines"]},
        variants=await exchange_variants(engine, ret["id"]),
        expires=expires(link),
    )


@router.post("/my/resolution/{token}")
async def resolution_choice(request: Request, token: Token) -> Response:
    found = await opened(request, "resolution", token)
    if isinstance(found, Response):
        return found
    link, _order, t = found
    engine = request.app.state.engine
    form = await request.form()
    kind, _, rest = str(form.get("choice") or "").partition(":")
    line, _, sku = rest.partition(":")
    if kind not in ("refund", "exchange") or (kind == "exchange" and not line.isdigit()):
        return await resolution_page(request, token)
    try:
        ret = await get_return(engine, link.ref or "")
        if ret["order_id"] != link.order_id:
            return refused(request, t, "tampered")
        same = {str(ln["line_no"]): ln["sku"] for ln in ret["lines"]}
        variants = {int(line): sku} if kind == "exchange" and same.get(line) != sku else {}
        await choose_resolution(engine, ret["id"], kind, variants)  # type: ignore[arg-type]
    except NotFound:
        return refused(request, t, "tampered")
    except (ValidationFailed, Conflict):
        return await resolution_page(request, token)
    await used(engine, link)
    text = (
        t.gettext("We refund you as soon as the returned items are checked.")
        if kind == "refund"
        else t.gettext("We send the exchange as soon as the returned items are checked.")
    )
    return done(request, t, t.gettext("Your choice is recorded"), text, state=kind)
