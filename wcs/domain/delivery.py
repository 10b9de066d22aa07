"""Pure decisions of the delivery and after-sales stages (design §1 steps 6-8).

Nothing here does I/O; the services in ``wcs.services`` (shipments, tracking, pod,
signoff, returns) read and write the database and call these.

- Tracking: which order state a carrier or courier status means, and the wording the
  public tracking page shows for it (fixed texts: a carrier's free-text detail may
  name people, so it never reaches the public page).
- Delivery promise: when a shipment handed over now should have arrived, per service.
- Parcel estimate: weight and a box size from the SKUs when the pack station did not
  measure them.
- Proof-of-delivery images: the file type is decided by its first bytes, never by
  the name or the declared content type.
- Returns: quantity checks against what was delivered and already returned.
- Labels: ZPL for own-fleet parcels and customer return labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from wcs.domain.carriers import Parcel
from wcs.domain.states import OrderState
from wcs.errors import ValidationFailed

S = OrderState

# Carrier/courier status -> the order state it moves to. The names are the states'.
TRACKING_STATES: Mapping[str, str] = {
    "shipped": S.SHIPPED,
    "in_transit": S.IN_TRANSIT,
    "out_for_delivery": S.OUT_FOR_DELIVERY,
    "delivered": S.DELIVERED,
    "delivery_failed": S.DELIVERY_FAILED,
    "delayed": S.DELAYED,
    "damaged": S.DAMAGED,
}

# What a courier may report from the road; "delivered" needs a proof of delivery.
COURIER_STATUSES: tuple[str, ...] = (
    "in_transit",
    "out_for_delivery",
    "delivery_failed",
    "delayed",
    "damaged",
)

PUBLIC_TEXT: Mapping[str, str] = {
    "pending": "Shipment being prepared",
    "booked": "Label created, parcel not yet handed over",
    "shipped": "Handed over for delivery",
    "in_transit": "On its way",
    "out_for_delivery": "Out for delivery today",
    "delivered": "Delivered",
    "delivery_failed": "Delivery attempt failed; another attempt will follow",
    "delayed": "Delayed",
    "damaged": "Damaged in transit; a replacement is being sent",
    "cancelled": "Shipment cancelled",
}

# How long after handover a parcel is promised to arrive, per service level.
TRANSIT_PROMISE: Mapping[str, timedelta] = {
    "same_day": timedelta(hours=12),
    "express": timedelta(days=1),
    "standard": timedelta(days=3),
}


def target_state(status: str) -> str | None:
    """The order state a tracking status moves to; None for statuses we only record."""
    return TRACKING_STATES.get(status)


def public_text(status: str) -> str:
    return PUBLIC_TEXT.get(status, "Status update")


def delivery_due(service: str, shipped_at: datetime) -> datetime:
    return shipped_at + TRANSIT_PROMISE.get(service, TRANSIT_PROMISE["standard"])


# -- parcel estimate -------------------------------------------------------------------------

CARTON_ALLOWANCE_G = 150.0
CARTON_PADDING_MM = 20


@dataclass(frozen=True, slots=True)
class Item:
    weight_g: float
    dims_mm: tuple[int, int, int]
    qty: int


def estimate_parcel(items: Sequence[Item]) -> Parcel:
    """A conservative parcel for carrier choice when nothing was measured.

    Items are laid flat and stacked: the box is as long and wide as the largest
    item's two longest sides and as high as all items' shortest sides together,
    plus padding; the weight adds a carton allowance. Over-estimating costs a little
    money; under-estimating gets a parcel refused at the carrier's hub.
    """
    if not items:
        raise ValidationFailed("cannot estimate a parcel without items")
    length = width = 0
    height = 0
    weight = CARTON_ALLOWANCE_G
    for item in items:
        a, b, c = sorted(item.dims_mm, reverse=True)
        length = max(length, a)
        width = max(width, b)
        height += c * item.qty
        weight += item.weight_g * item.qty
    pad = CARTON_PADDING_MM
    return Parcel(weight, (float(length + pad), float(width + pad), float(height + pad)))


# -- proof-of-delivery images ----------------------------------------------------------------

ImageType = Literal["image/jpeg", "image/png", "image/webp"]
EXTENSION: Mapping[str, str] = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def sniff_image(data: bytes) -> ImageType | None:
    """JPEG, PNG or WebP from the file's magic bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def describe_bytes(data: bytes) -> str:
    """A short guess of what a refused upload is, for the error message."""
    if data.startswith(b"%PDF"):
        return "a PDF document"
    if data.startswith(b"GIF8"):
        return "a GIF image"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "a HEIC image (set the camera to 'most compatible' / JPEG)"
    if data.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if not data:
        return "an empty file"
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "an unknown binary file"
    return "text"


# -- returns ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReturnWish:
    line_no: int
    qty: int
    reason: str


def check_return(
    delivered: Mapping[int, int], already_returned: Mapping[int, int], wishes: Sequence[ReturnWish]
) -> list[str]:
    """Problems with a return request; empty when every line may be returned as asked.

    ``delivered`` maps line number to delivered quantity, ``already_returned`` to the
    quantity in earlier returns that were not rejected.
    """
    problems: list[str] = []
    seen: set[int] = set()
    for wish in wishes:
        if wish.line_no in seen:
            problems.append(f"line {wish.line_no} is listed twice; give one entry per line")
            continue
        seen.add(wish.line_no)
        if wish.line_no not in delivered:
            known = ", ".join(str(n) for n in sorted(delivered)) or "none"
            problems.append(f"order has no line {wish.line_no} (lines: {known})")
            continue
        if wish.qty <= 0:
            problems.append(f"line {wish.line_no}: quantity must be at least 1")
            continue
        left = delivered[wish.line_no] - already_returned.get(wish.line_no, 0)
        if wish.qty > left:
            problems.append(
                f"line {wish.line_no}: {wish.qty} to return but only {left} of "
                f"{delivered[wish.line_no]} delivered are not already being returned"
            )
    return problems


def to_minor_units(amount: Decimal) -> int:
    """Money as integer cents; more than two decimals is refused rather than rounded."""
    try:
        cents = (amount * 100).to_integral_value(rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValidationFailed(f"amount {amount} is not a number") from None
    if cents != amount * 100:
        raise ValidationFailed(f"amount {amount} has more than two decimals")
    if cents < 0:
        raise ValidationFailed(f"amount {amount} must not be negative")
    return int(cents)


def from_minor_units(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


# -- labels ----------------------------------------------------------------------------------


def _zpl_text(value: str) -> str:
    # ^ and ~ start ZPL commands; text containing them must not break the label.
    return value.replace("^", " ").replace("~", " ")


def _address_fields(lines: Sequence[str], top: int) -> str:
    return "".join(
        f"^FO50,{top + 40 * i}^FD{_zpl_text(line)}^FS" for i, line in enumerate(lines) if line
    )


def own_fleet_label(tracking_no: str, service: str, address: Sequence[str]) -> str:
    """The label our own vans use: service, address and the tracking number as Code 128."""
    return (
        "^XA^CI28^CF0,32"
        f"^FO50,40^FDOWN FLEET {_zpl_text(service.upper())}^FS"
        f"{_address_fields(address, 120)}"
        f"^FO50,480^BY3^BCN,140,Y,N,N^FD{_zpl_text(tracking_no)}^FS"
        "^XZ"
    )


def return_label(rma: str, sender: Sequence[str], returns_desk: Sequence[str]) -> str:
    """A customer return label: RMA number as Code 128, scanned at the returns desk."""
    return (
        "^XA^CI28^CF0,28"
        "^FO50,30^FDRETURN / RETOUR^FS"
        "^FO50,70^FDFrom:^FS"
        f"{_address_fields(sender, 100)}"
        "^FO50,320^FDTo:^FS"
        f"{_address_fields(returns_desk, 350)}"
        f"^FO50,560^BY2^BCN,120,Y,N,N^FD{_zpl_text(rma)}^FS"
        "^XZ"
    )


def notice_channel(email: str | None, phone: str | None) -> str:
    """How a customer notice goes out: e-mail when known, else text message, else none."""
    if email:
        return "email"
    if phone:
        return "sms"
    return "none"
