"""Request and response bodies (API schemas are separate from the tables)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from api.params import FreeText, NameText, Number, Price, WholeNumber
from wcs.domain import gs1
from wcs.errors import ValidationFailed
from wcs.i18n.negotiation import BadLanguageTag, normalise

Str64 = Annotated[str, Field(min_length=1, max_length=64)]


def _lang_tag(value: str) -> str:
    try:
        return normalise(value)
    except BadLanguageTag as exc:
        raise ValueError(str(exc)) from None


# The document states the tag's shape; the check says what is wrong in words.
LangTag = Annotated[
    str,
    Field(
        min_length=2,
        max_length=35,
        json_schema_extra={"pattern": r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$"},
    ),
    AfterValidator(_lang_tag),
]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:/-]+$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(_In):
    name: NameText = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    ref: str | None = Field(default=None, max_length=64, description="the shop's customer id")


class AddressIn(_In):
    line1: NameText = Field(max_length=200)
    line2: FreeText | None = Field(default=None, max_length=200)
    city: NameText = Field(max_length=100)
    postal_code: str = Field(max_length=20)
    country: str = Field(
        min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$", description="ISO 3166 alpha-2"
    )
    lat: Number | None = Field(default=None, ge=-90, le=90)
    lon: Number | None = Field(default=None, ge=-180, le=180)


class LineIn(_In):
    sku: Code
    qty: WholeNumber = Field(gt=0, le=10_000)


class OrderIn(_In):
    external_id: str = Field(min_length=1, max_length=128)
    customer: CustomerIn
    address: AddressIn
    lines: list[LineIn] = Field(min_length=1, max_length=200)
    priority: WholeNumber = Field(default=0, ge=0, le=9)
    service: Literal["standard", "express", "same_day"] = "standard"
    lang: LangTag | None = Field(
        default=None,
        description=(
            "the customer's language, BCP 47 (zh-CN, zh-Hans, de-CH); notifications, pages "
            "and labels follow it where it is served. Default: the delivery country's"
        ),
    )


class LineOut(BaseModel):
    line_no: int
    sku: str
    qty: int
    qty_picked: int


class OrderOut(BaseModel):
    id: str
    external_id: str
    state: str
    seq: int
    priority: int
    service: str
    lines: list[LineOut]
    customer: dict[str, Any]
    address: dict[str, Any]
    lang: str | None = None
    exception_reason: str | None
    sla_deadline: datetime | None
    linked_order_id: str | None = None
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class EventOut(BaseModel):
    seq: int
    from_state: str | None = Field(serialization_alias="from")
    to_state: str = Field(serialization_alias="to")
    actor: str
    reason: str | None
    at: datetime


class CancelIn(_In):
    reason: FreeText | None = Field(default=None, max_length=500)


class SkuIn(_In):
    name: NameText = Field(min_length=1, max_length=200)
    weight_g: Number = Field(gt=0, le=1_000_000)
    dims_mm: tuple[
        Annotated[int, Field(gt=0, le=10_000)],
        Annotated[int, Field(gt=0, le=10_000)],
        Annotated[int, Field(gt=0, le=10_000)],
    ] = Field(description="length, width, height in millimetres")
    barcode: str | None = Field(default=None, min_length=1, max_length=64)
    gtins: list[Annotated[str, Field(pattern=r"^([0-9]{8}|[0-9]{12,14})$")]] = Field(
        default_factory=list,
        max_length=32,
        description="GTINs the units carry (GTIN-8/12/13/14, right check digit): each "
        "pack size or supplier of the SKU; a barcode that is a GTIN counts as one too",
    )
    min_shelf_life_days: int | None = Field(
        default=None,
        ge=0,
        le=3650,
        description="days of life a unit must have left when picked (null: the default)",
    )
    category: str | None = Field(
        default=None, max_length=64, description="substitutes come from the same category"
    )
    price: Price | None = Field(default=None, description="unit price")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    product: str | None = Field(
        default=None, max_length=64, description="SKUs of one product are its variants"
    )
    variant: str | None = Field(default=None, max_length=100, description="e.g. 'M, blue'")

    @field_validator("gtins")
    @classmethod
    def _gtins(cls, values: list[str]) -> list[str]:
        try:
            return [gs1.gtin14(v) for v in values]
        except ValidationFailed as exc:
            raise ValueError(exc.message) from None


class SkuOut(BaseModel):
    sku: str
    name: str
    weight_g: float
    # A list, not a tuple: tools that read OpenAPI 3.1 as JSON Schema draft 4 (for
    # response validation) cannot express a tuple's prefixItems.
    dims_mm: list[int] = Field(min_length=3, max_length=3, description="length, width, height")
    barcode: str | None
    gtins: list[str] = Field(description="as GTIN-14")
    min_shelf_life_days: int | None
    category: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    product: str | None = None
    variant: str | None = None


class LocationIn(_In):
    zone: Literal["pick", "reserve", "qc", "pack", "outbound", "exception", "returns"]
    aisle: int = Field(ge=1, le=999)
    bay: int = Field(ge=1, le=999)
    level: WholeNumber = Field(ge=0, le=99)


class LocationOut(LocationIn):
    code: str


class ReceiptIn(_In):
    sku: Code
    location: Code
    qty: WholeNumber = Field(gt=0, le=1_000_000)


class ReceiptOut(BaseModel):
    sku: str
    location: str
    on_hand: int
    reserved: int
    backorders_reserved: list[str]


class InventoryOut(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int
    in_totes: int
    locations: list[dict[str, Any]]
