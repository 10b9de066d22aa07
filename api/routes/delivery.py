"""Outbound and delivery: allocation, shipments, handover, tracking, proof of delivery.

Roles per endpoint are in each endpoint's description (and enforced by ``require``
or, for carrier webhooks, by the HMAC signature).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import EngineDep, PrincipalDep, SettingsDep, TopicsDep, require
from api.params import OrderId, ShipmentId, TrackingNo, Word
from api.problems import problem
from api.routes.customer import tracking_page, wants_html
from api.routes.delivery_access import (
    carrier_problem,
    check_shipment_reader,
    courier_owns,
    is_staff,
)
from api.schemas_delivery import (
    AllocateIn,
    AllocationOut,
    CarrierEventIn,
    CourierEventIn,
    CourierIn,
    PodOut,
    PublicTrackingOut,
    ShipmentOut,
    TrackingResultOut,
)
from wcs.carriers.signing import SIGNATURE_HEADER, verify
from wcs.domain.carriers import Parcel
from wcs.domain.text import check_name
from wcs.errors import CarrierError, Forbidden, SignatureInvalid, ValidationFailed
from wcs.services.auth import Principal
from wcs.services.pod import (
    KINDS,
    PodImage,
    PodSubmission,
    UnsupportedImage,
    UploadTooLarge,
    check_image,
    get_pod,
    record_pod,
)
from wcs.services.shipments import (
    CarrierDesk,
    allocate_order,
    assign_courier,
    get_shipment,
    handover,
    list_shipments,
    shipment_parties,
)
from wcs.services.tracking import TrackingOutcome, TrackingUpdate, public_tracking, record_tracking
from wcs.timeutil import utcnow

router = APIRouter(prefix="/api/v1", tags=["delivery"])

Dispatcher = Annotated[Principal, Depends(require("dispatcher", "supervisor"))]
CourierOrDispatcher = Annotated[Principal, Depends(require("courier", "dispatcher", "supervisor"))]
Courier = Annotated[Principal, Depends(require("courier"))]

POD_FIELDS = (*KINDS, "receiver_name", "delivered_at", "lat", "lon")
# A courier's clock may run a little ahead; a proof far in the future is a typo.
POD_CLOCK_SKEW = timedelta(minutes=10)


async def get_desk(request: Request) -> CarrierDesk:
    desk: CarrierDesk = request.app.state.carrier_desk
    return desk


DeskDep = Annotated[CarrierDesk, Depends(get_desk)]


def _wake(request: Request) -> None:
    request.app.state.wake_relay()


# -- allocation and shipments ----------------------------------------------------------------


@router.post(
    "/orders/{order_id}/allocate",
    response_model=AllocationOut,
    status_code=201,
    description=(
        "Roles: dispatcher, supervisor. Choose carrier and service for a packed order, "
        "book it (idempotent per shipment: retries never book twice) and move the order "
        "packed -> allocated. On an allocated order it answers the current booking (200), "
        "or books anew with `rebook` (the old booking is cancelled at the carrier)."
    ),
    responses={
        200: {"description": "the order already had this booking"},
        409: {"description": "order not packed (or allocated)"},
        422: {"description": "no carrier fits destination, parcel and service"},
        502: {"description": "the carrier refused the booking"},
        503: {"description": "carrier unreachable after retries; try again later"},
    },
)
async def allocate(
    order_id: OrderId,
    engine: EngineDep,
    topics: TopicsDep,
    desk: DeskDep,
    principal: Dispatcher,
    request: Request,
    body: AllocateIn | None = None,
) -> Response:
    body = body or AllocateIn()
    parcel = None
    if body.weight_g is not None and body.dims_mm is not None:
        a, b, c = body.dims_mm
        parcel = Parcel(body.weight_g, (float(a), float(b), float(c)))
    try:
        result = await allocate_order(
            engine,
            topics,
            order_id,
            desk=desk,
            actor=principal.name,
            parcel=parcel,
            carrier=body.carrier,
            exclude=body.exclude,
            rebook=body.rebook,
        )
    except CarrierError as exc:
        _wake(request)  # the failure alert
        return carrier_problem(exc)
    _wake(request)
    shipment = await get_shipment(engine, result.shipment_id)
    out = AllocationOut(replayed=result.replayed, shipment=ShipmentOut.model_validate(shipment))
    return JSONResponse(
        out.model_dump(mode="json"),
        status_code=200 if result.replayed else 201,
        headers={"Location": f"/api/v1/shipments/{result.shipment_id}"},
    )


@router.get(
    "/shipments",
    response_model=list[ShipmentOut],
    description=(
        "Roles: staff see all shipments (filters optional); a courier sees only the "
        "shipments assigned to them."
    ),
)
async def read_shipments(
    engine: EngineDep,
    principal: PrincipalDep,
    status: Annotated[list[Word] | None, Query(max_length=20)] = None,
    order_id: Annotated[str | None, Query(max_length=40)] = None,
    courier_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    if not is_staff(principal):
        if "courier" not in principal.roles or principal.subject is None:
            raise Forbidden(f"'{principal.name}' may not list shipments")
        courier_id = principal.subject
    return await list_shipments(
        engine, courier_id=courier_id, order_id=order_id, statuses=status, limit=limit
    )


@router.get(
    "/shipments/{shipment_id}",
    response_model=ShipmentOut,
    description="Roles: staff; the assigned courier.",
)
async def read_shipment(
    shipment_id: ShipmentId, engine: EngineDep, principal: PrincipalDep
) -> dict[str, Any]:
    if not (is_staff(principal) or "courier" in principal.roles):
        raise Forbidden("customers follow their parcel through the order timeline or /track")
    await check_shipment_reader(engine, principal, shipment_id, customers=False)
    return await get_shipment(engine, shipment_id)


@router.put(
    "/shipments/{shipment_id}/courier",
    response_model=ShipmentOut,
    description=(
        "Roles: dispatcher, supervisor. Assign the shipment to a courier (the courier "
        "token's subject); required for own-fleet shipments before handover."
    ),
)
async def put_courier(
    shipment_id: ShipmentId, body: CourierIn, engine: EngineDep, principal: Dispatcher
) -> dict[str, Any]:
    await assign_courier(engine, shipment_id, body.courier_id, actor=principal.name)
    return await get_shipment(engine, shipment_id)


@router.post(
    "/shipments/{shipment_id}/handover",
    response_model=ShipmentOut,
    description=(
        "Roles: dispatcher, supervisor. The parcel left with its carrier or courier: "
        "order allocated -> shipped."
    ),
    responses={409: {"description": "shipment not booked, or own fleet without a courier"}},
)
async def post_handover(
    shipment_id: ShipmentId,
    engine: EngineDep,
    topics: TopicsDep,
    principal: Dispatcher,
    request: Request,
) -> dict[str, Any]:
    await handover(engine, topics, shipment_id, actor=principal.name)
    _wake(request)
    return await get_shipment(engine, shipment_id)


# -- tracking --------------------------------------------------------------------------------


def _tracking_response(outcome: TrackingOutcome) -> Response:
    body = TrackingResultOut(
        shipment_id=outcome.shipment_id,
        order_id=outcome.order_id,
        outcome=outcome.outcome,
        order_state=outcome.order_state,
        duplicate=outcome.duplicate,
    ).model_dump(mode="json")
    if outcome.outcome == "refused":
        return problem(
            409,
            f"event recorded but not applied: {outcome.message}",
            code="illegal-transition",
            title="Event not applicable",
            extra=body,
        )
    return JSONResponse(body)


@router.post(
    "/shipments/{shipment_id}/tracking-events",
    response_model=TrackingResultOut,
    description=(
        "Carrier webhook. No bearer token: the request must carry "
        f"`{SIGNATURE_HEADER}: t=<unix>,v1=<hex HMAC-SHA256 of '<t>.' + body>` made with "
        "the shared secret (settings `carrier_webhook_secret`); a missing, wrong or stale "
        "signature is refused with 401 and changes nothing. Idempotent on the carrier's "
        "`event_id`. An event the order's state machine does not allow is recorded and "
        "answered 409."
    ),
    responses={
        401: {"description": "signature missing, wrong or outside the time window"},
        409: {"description": "recorded, but not a legal move for the order"},
        422: {"description": "body invalid, or not about this shipment"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CarrierEventIn.model_json_schema()}},
        }
    },
)
async def carrier_webhook(
    shipment_id: ShipmentId,
    request: Request,
    engine: EngineDep,
    topics: TopicsDep,
    settings: SettingsDep,
) -> Response:
    raw = await request.body()
    try:
        # The raw bytes as received: parsing first could change what was signed.
        verify(raw, request.headers.get(SIGNATURE_HEADER), settings.carrier_webhook_secret)
    except SignatureInvalid as exc:
        return problem(
            401,
            exc.message,
            code="signature-invalid",
            title="Signature refused",
            headers={"WWW-Authenticate": f'HMAC-SHA256 header="{SIGNATURE_HEADER}"'},
        )
    try:
        event = CarrierEventIn.model_validate_json(raw)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(whole body)", "message": e["msg"]}
            for e in exc.errors()[:20]
        ]
        return problem(
            422,
            f"tracking event is invalid: {errors[0]['field']}: {errors[0]['message']}",
            code="validation",
            extra={"errors": errors},
        )
    if event.shipment_id != shipment_id:
        raise ValidationFailed(
            f"event is about shipment {event.shipment_id} but was posted for {shipment_id}"
        )
    outcome = await record_tracking(
        engine,
        topics,
        shipment_id,
        TrackingUpdate(
            source="carrier",
            status=event.status,
            actor=f"carrier:{event.carrier}"[:64],
            at=event.at,
            event_key=f"carrier:{event.carrier}:{event.event_id}",
            detail=event.detail,
            location=event.location,
            tracking_no=event.tracking_no,
        ),
    )
    _wake(request)
    return _tracking_response(outcome)


@router.post(
    "/shipments/{shipment_id}/courier-events",
    response_model=TrackingResultOut,
    description=(
        "Roles: courier (assigned to this shipment only), dispatcher, supervisor. A status "
        "from the road: in_transit, out_for_delivery, delivery_failed, delayed, damaged. "
        "Delivered needs a proof of delivery (POST .../pod). Idempotent on `event_id`."
    ),
    responses={409: {"description": "recorded, but not a legal move for the order"}},
)
async def courier_event(
    shipment_id: ShipmentId,
    body: CourierEventIn,
    engine: EngineDep,
    topics: TopicsDep,
    principal: CourierOrDispatcher,
    request: Request,
) -> Response:
    parties = await shipment_parties(engine, shipment_id)
    staff = principal.has_any(frozenset({"dispatcher", "supervisor"}))
    if not staff and not courier_owns(principal, parties):
        raise Forbidden(f"shipment {shipment_id} is not assigned to you")
    source = "dispatcher" if staff else "courier"
    who = principal.name if staff else principal.subject
    outcome = await record_tracking(
        engine,
        topics,
        shipment_id,
        TrackingUpdate(
            source=source,
            status=body.status,
            actor=f"{source}:{who}",
            event_key=f"{source}:{who}:{body.event_id}" if body.event_id else None,
            detail=body.detail,
            location=body.location,
        ),
    )
    _wake(request)
    return _tracking_response(outcome)


@router.get(
    "/track/{tracking_no}",
    response_model=PublicTrackingOut,
    description=(
        "Public, no authentication. The parcel's status and timeline for whoever holds "
        "the tracking number: no names, phone numbers, e-mail or street, only the "
        "destination city and country. A browser (Accept: text/html) gets the tracking "
        "page instead, in the customer's language."
    ),
)
async def track(tracking_no: TrackingNo, engine: EngineDep, request: Request) -> Any:
    if wants_html(request):  # a browser: the customer's tracking page
        return await tracking_page(request, tracking_no)
    if not re.fullmatch(r"[A-Za-z0-9-]{4,64}", tracking_no):
        raise ValidationFailed("a tracking number is 4-64 letters and digits")
    return await public_tracking(engine, tracking_no)


# -- proof of delivery -----------------------------------------------------------------------

_POD_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["receiver_name"],
    "properties": {
        "photo": {"type": "string", "format": "binary", "description": "JPEG, PNG or WebP"},
        "signature": {"type": "string", "format": "binary", "description": "JPEG, PNG or WebP"},
        "receiver_name": {"type": "string", "maxLength": 200},
        "delivered_at": {"type": "string", "format": "date-time", "description": "default now"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
    },
}


def _boundary(content_type: str) -> bytes:
    match = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', content_type, re.IGNORECASE)
    if not match:
        raise StarletteHTTPException(
            400, "multipart/form-data without a boundary parameter; send the form again"
        )
    return (match.group(1) or match.group(2)).encode("latin-1")


async def _read_form(request: Request) -> FormData:
    body = await request.body()  # capped by the request guards
    boundary = _boundary(request.headers.get("content-type", ""))
    if b"--" + boundary + b"--" not in body:
        raise StarletteHTTPException(
            400,
            "the upload is incomplete: the multipart body ends before its closing boundary "
            "(connection cut?); send it again",
        )
    try:
        return await request.form(max_files=len(KINDS), max_fields=10, max_part_size=64 * 1024)
    except StarletteHTTPException as exc:
        raise StarletteHTTPException(
            400, f"the upload is not valid multipart/form-data ({exc.detail}); send it again"
        ) from None


def _text(form: FormData, name: str) -> str | None:
    values = form.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise ValidationFailed(f"field {name!r} is sent {len(values)} times; send it once")
    value = values[0]
    if not isinstance(value, str):
        raise ValidationFailed(f"field {name!r} must be text, not a file")
    return value.strip()


def _number(form: FormData, name: str, low: float, high: float) -> float | None:
    text = _text(form, name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValidationFailed(f"{name} must be a number, got {text[:40]!r}") from None
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low} and {high}, got {value}")
    return value


async def _image(form: FormData, kind: str, max_bytes: int) -> PodImage | None:
    values = form.getlist(kind)
    if not values:
        return None
    if len(values) > 1:
        raise ValidationFailed(f"send one {kind}, not {len(values)}")
    part = values[0]
    if not isinstance(part, UploadFile):
        raise ValidationFailed(f"{kind} must be a file part (with a filename), not text")
    data = await part.read(max_bytes + 1)
    if not data:
        raise ValidationFailed(f"{kind} {part.filename!r} is empty; take the picture again")
    return check_image(kind, data, max_bytes=max_bytes, filename=part.filename)


async def _submission(form: FormData, max_bytes: int) -> PodSubmission:
    unknown = sorted(set(form.keys()) - set(POD_FIELDS))
    if unknown:
        raise ValidationFailed(
            f"unknown field(s) {', '.join(unknown)}; send {', '.join(POD_FIELDS)}"
        )
    photo = await _image(form, "photo", max_bytes)
    signature = await _image(form, "signature", max_bytes)
    if photo is None and signature is None:
        raise ValidationFailed(
            "no image in the upload: send a 'photo' and/or a 'signature' file part"
        )
    name = _text(form, "receiver_name")
    if not name:
        raise ValidationFailed("receiver_name is missing; write who took the parcel")
    if len(name) > 200:
        raise ValidationFailed("receiver_name is longer than 200 characters")
    try:
        name = check_name(name, what="receiver_name")
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    when_text = _text(form, "delivered_at")
    now = utcnow()
    delivered_at = now
    if when_text:
        try:
            delivered_at = datetime.fromisoformat(when_text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed(
                f"delivered_at {when_text[:40]!r} is not an RFC 3339 time"
            ) from None
        if delivered_at.tzinfo is None:
            raise ValidationFailed("delivered_at needs a time zone (e.g. ...Z or +02:00)")
        if delivered_at > now + POD_CLOCK_SKEW:
            raise ValidationFailed("delivered_at is in the future; check the phone's clock")
    return PodSubmission(
        receiver_name=name,
        delivered_at=delivered_at,
        photo=photo,
        signature=signature,
        lat=_number(form, "lat", -90, 90),
        lon=_number(form, "lon", -180, 180),
    )


@router.post(
    "/shipments/{shipment_id}/pod",
    response_model=PodOut,
    status_code=201,
    description=(
        "Roles: courier, and only the courier the shipment is assigned to. Multipart form: "
        "`photo` and/or `signature` (JPEG, PNG or WebP by content, each at most "
        "settings `pod_max_bytes`), `receiver_name`, optional `delivered_at` (RFC 3339), "
        "`lat`, `lon`. Moves the order out_for_delivery -> delivered. The same files "
        "again answer the stored proof (200); other files after delivery are refused (409)."
    ),
    responses={
        200: {"description": "the same proof was already recorded"},
        400: {"description": "truncated or malformed multipart body"},
        403: {"description": "not the courier of this shipment"},
        409: {"description": "already delivered with another proof, or not out for delivery"},
        413: {"description": "a file or the whole body is too large"},
        415: {"description": "a file is not a JPEG, PNG or WebP image"},
        422: {"description": "missing image or receiver name, bad field"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": _POD_FORM_SCHEMA}},
        }
    },
)
async def upload_pod(
    shipment_id: ShipmentId,
    request: Request,
    engine: EngineDep,
    topics: TopicsDep,
    settings: SettingsDep,
    principal: Courier,
) -> Response:
    # Refuse a stranger before reading megabytes of body.
    parties = await shipment_parties(engine, shipment_id)
    if not courier_owns(principal, parties):
        raise Forbidden(
            f"shipment {shipment_id} is not assigned to you; only its courier may deliver it"
        )
    assert principal.subject is not None
    form = await _read_form(request)
    try:
        submission = await _submission(form, settings.pod_max_bytes)
    except UploadTooLarge as exc:
        return problem(413, exc.message, code="too-large")
    except UnsupportedImage as exc:
        return problem(415, exc.message, code="unsupported-media-type")
    finally:
        await form.close()
    result = await record_pod(
        engine,
        topics,
        shipment_id,
        submission,
        courier_id=principal.subject,
        pod_dir=settings.pod_dir,
    )
    _wake(request)
    return JSONResponse(
        PodOut.model_validate(result.pod).model_dump(mode="json"),
        status_code=201 if result.created else 200,
    )


@router.get(
    "/shipments/{shipment_id}/pod",
    response_model=PodOut,
    description="Roles: staff; the assigned courier; the customer of the order.",
)
async def read_pod(
    shipment_id: ShipmentId, engine: EngineDep, principal: PrincipalDep
) -> dict[str, Any]:
    await check_shipment_reader(engine, principal, shipment_id)
    return await get_pod(engine, shipment_id)
