"""Request and response bodies of delivery, sign-off and after-sales endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.params import Amount, FreeText, Number, WholeNumber
from wcs.domain.delivery import COURIER_STATUSES

CarrierId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]
EventId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
Grade = Literal["resellable", "refurbish", "scrap"]
CourierStatus = Literal[COURIER_STATUSES]  # type: ignore[valid-type]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- shipments -------------------------------------------------------------------------------


class AllocateIn(_In):
    # A measured parcel has both its weight and its size, or neither is given.
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "allOf": [
                {
                    "if": {"required": [given], "properties": {given: {"not": {"type": "null"}}}},
                    "then": {"required": [other], "properties": {other: {"not": {"type": "null"}}}},
                }
                for given, other in (("weight_g", "dims_mm"), ("dims_mm", "weight_g"))
            ]
        },
    )
    carrier: CarrierId | None = Field(
        default=None, description="book this carrier (an id from the carrier rules)"
    )
    exclude: list[CarrierId] = Field(
        default_factory=list, max_length=20, description="carriers to leave out"
    )
    rebook: bool = Field(
        default=False,
        description="for an allocated order: book anew and cancel the current booking",
    )
    weight_g: Number | None = Field(default=None, gt=0, le=1_000_000, description="measured")
    dims_mm: (
        tuple[
            Annotated[int, Field(gt=0, le=10_000)],
            Annotated[int, Field(gt=0, le=10_000)],
            Annotated[int, Field(gt=0, le=10_000)],
        ]
        | None
    ) = Field(default=None, description="measured carton: length, width, height")

    @model_validator(mode="after")
    def _parcel_whole(self) -> AllocateIn:
        if (self.weight_g is None) != (self.dims_mm is None):
            raise ValueError("give weight_g and dims_mm together, or neither (estimated)")
        return self


class ShipmentOut(BaseModel):
    id: str
    order_id: str
    status: str
    carrier: str
    carrier_name: str
    service: str
    own_fleet: bool
    tracking_no: str | None
    courier_id: str | None
    parcel: dict[str, Any]
    cost: dict[str, Any] | None
    label: dict[str, Any] | None
    choice: list[str]
    last_error: str | None
    delivery_due: datetime | None
    created_at: datetime
    booked_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    deliver_to: dict[str, Any] | None = None


class AllocationOut(BaseModel):
    replayed: bool = Field(description="true when the order already had this booking")
    shipment: ShipmentOut


class CourierIn(_In):
    courier_id: str = Field(min_length=1, max_length=64, description="the courier token's subject")


class CourierEventIn(_In):
    status: CourierStatus
    detail: FreeText | None = Field(default=None, max_length=500)
    location: FreeText | None = Field(default=None, max_length=100)
    event_id: EventId | None = Field(
        default=None, description="the app's id for this report; a repeat has no second effect"
    )


class CarrierEventIn(BaseModel):
    """The carrier's webhook body (fields we do not use are ignored)."""

    model_config = ConfigDict(extra="ignore")

    event_id: str = Field(min_length=1, max_length=100)
    carrier: str = Field(min_length=1, max_length=32)
    tracking_no: str = Field(min_length=1, max_length=64)
    shipment_id: str = Field(min_length=1, max_length=40)
    status: str = Field(min_length=1, max_length=32)
    at: datetime
    detail: FreeText | None = Field(default=None, max_length=2000)
    location: FreeText | None = Field(default=None, max_length=100)


class TrackingResultOut(BaseModel):
    shipment_id: str
    order_id: str
    outcome: Literal["applied", "unchanged", "refused", "recorded"]
    order_state: str
    duplicate: bool


class PublicEventOut(BaseModel):
    status: str
    text: str
    at: datetime
    location: str | None


class PublicTrackingOut(BaseModel):
    tracking_no: str
    carrier: str
    service: str
    status: str
    text: str
    destination: dict[str, str]
    delivery_due: datetime | None
    delivered_at: datetime | None
    events: list[PublicEventOut]


class PodImageOut(BaseModel):
    sha256: str
    media_type: str
    bytes: int
    path: str


class PodOut(BaseModel):
    shipment_id: str
    order_id: str
    courier_id: str
    receiver_name: str
    delivered_at: datetime
    lat: float | None
    lon: float | None
    content_sha256: str
    photo: PodImageOut | None
    signature: PodImageOut | None
    recorded_at: datetime


# -- sign-off, returns, timeline -------------------------------------------------------------


class ConfirmIn(_In):
    rating: WholeNumber = Field(ge=1, le=5, description="1 (bad) to 5 (great)")
    comment: FreeText | None = Field(default=None, max_length=2000)


class ConfirmOut(BaseModel):
    order_id: str
    state: str
    seq: int
    rating: int
    at: datetime


class ReturnLineIn(_In):
    line_no: WholeNumber = Field(ge=1, le=10_000)
    qty: WholeNumber = Field(gt=0, le=10_000)
    reason: FreeText = Field(min_length=1, max_length=500)


class ReturnIn(_In):
    order_id: str = Field(min_length=1, max_length=40)
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=200)


class ReturnLineOut(BaseModel):
    line_no: int
    sku: str
    qty: int
    reason: str
    state: str
    grade: str | None
    restocked_location: str | None


class ReturnOut(BaseModel):
    id: str
    order_id: str
    state: str
    lines: list[ReturnLineOut]
    label: dict[str, Any]
    resolution: str | None
    refund: dict[str, Any] | None
    replacement_order_id: str | None
    note: str | None
    requested_by: str
    customer_choice: str | None = Field(
        default=None, description="what the customer asked for: refund or exchange"
    )
    exchange_skus: dict[str, str] | None = Field(
        default=None, description="per line number, the variant the customer exchanges for"
    )
    created_at: datetime
    updated_at: datetime


class LineGradeIn(_In):
    line_no: WholeNumber = Field(ge=1, le=10_000)
    grade: Grade


class InspectionIn(_In):
    grade: Grade | None = Field(default=None, description="for every line not listed in lines")
    lines: list[LineGradeIn] = Field(default_factory=list, max_length=200)
    note: FreeText | None = Field(default=None, max_length=1000)


class ResolveIn(_In):
    # A refund has an amount; an exchange or a rejection has none.
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "if": {"properties": {"resolution": {"const": "refund"}}},
            "then": {"required": ["amount"], "properties": {"amount": {"not": {"type": "null"}}}},
            "else": {"properties": {"amount": {"type": "null"}}},
        },
    )
    resolution: Literal["refund", "exchange", "rejected"]
    amount: Amount | None = Field(default=None, description="refund amount")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    note: FreeText | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _amount_with_refund(self) -> ResolveIn:
        if self.resolution == "refund" and self.amount is None:
            raise ValueError("a refund needs 'amount'")
        if self.resolution != "refund" and self.amount is not None:
            raise ValueError(f"'amount' goes with a refund, not with {self.resolution}")
        return self


class TimelineEntryOut(BaseModel):
    at: datetime
    kind: Literal[
        "correction",
        "state",
        "shipment",
        "tracking",
        "pod",
        "sign_off",
        "return",
        "claim",
        "notice",
        "notification",
    ]
    summary: str
    data: dict[str, Any]
