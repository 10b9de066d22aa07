"""Bounds of the parameters and the text types of bodies.

Path ids fit the column they are looked up in.

Without them an integer past 2^63 reached the database driver (SQLite raised
``OverflowError``: a 500) and a megabyte-long string id a query. Out of bounds is a
422 problem naming the parameter, on every database alike.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Path
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    Strict,
    StringConstraints,
    WithJsonSchema,
)

from wcs.domain.text import check_name, check_text, name_pattern, text_pattern

# BIGINT on PostgreSQL, INTEGER on SQLite: both signed 64-bit.
MAX_ROW_ID = 2**63 - 1


def _number(what: str) -> object:
    return Path(ge=1, le=MAX_ROW_ID, description=f"the {what}'s number")


def _key(what: str, length: int) -> object:
    return Path(min_length=1, max_length=length, description=f"the {what}'s id")


# A state or status name in a query filter.
Word = Annotated[str, StringConstraints(min_length=1, max_length=40)]
OrderId = Annotated[str, _key("order", 40)]
ShipmentId = Annotated[str, _key("shipment", 40)]
ReturnId = Annotated[str, _key("return", 40)]
RouteId = Annotated[str, _key("route", 40)]
FloorRequestId = Annotated[str, _key("floor request", 40)]
CourierId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
        description="the courier's id (the subject of the courier's token)",
    ),
]
# A location's code as its column holds it.
LocationCode = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$", description="location")
]
TrackingNo = Annotated[
    str,
    Path(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="tracking number"),
]
NotificationId = Annotated[int, _number("notification")]
FeedbackId = Annotated[int, _number("feedback entry")]
AlertId = Annotated[int, _number("alert")]
StopId = Annotated[int, _number("stop")]


def _name(value: str) -> str:
    return check_name(value)


def _text(value: str) -> str:
    return check_text(value)


def _name_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = name_pattern()


def _text_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = text_pattern()


# Body fields: a person's or a thing's name (something visible, no control characters)
# and free text (line breaks allowed, no other control characters). Their documents
# carry the rule as a pattern, so that a client can check it as the API does.
NameText = Annotated[str, AfterValidator(_name), Field(json_schema_extra=_name_schema)]
FreeText = Annotated[str, AfterValidator(_text), Field(json_schema_extra=_text_schema)]


def _whole_number(value: object) -> object:
    # JSON Schema's integer is any number without a fraction, 2.0 as well as 2. Strings
    # and booleans stay refused (the type is strict): "2" and true are not numbers.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A count or a number in a body: an integer, written with or without ".0".
WholeNumber = Annotated[int, BeforeValidator(_whole_number), Strict()]
# A measure in a body: a JSON number (not a string, not a boolean).
Number = Annotated[float, Strict()]


def _money_pattern(digits: int) -> str:
    return rf"^(0|[1-9][0-9]{{0,{digits - 1}}})(\.[0-9]{{1,2}})?$"


def _money(digits: int) -> Any:
    pattern = re.compile(_money_pattern(digits))
    ceiling = 10**digits

    def check(value: object) -> Decimal:
        # Money is exact: a decimal string with at most two decimals, or a whole number.
        # A JSON number with a fraction is binary floating point (0.1 + 0.2 is not 0.3),
        # so it is refused rather than rounded, as are more decimals than cents.
        if isinstance(value, str) and pattern.fullmatch(value):
            return Decimal(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < ceiling:
            return Decimal(value)
        raise ValueError(
            f"write an amount as a string of at most {digits} digits and two decimals, "
            'like "19.99", or as a whole number'
        )

    return check


def _money_schema(digits: int) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string", "pattern": _money_pattern(digits)},
            {"type": "integer", "minimum": 0, "maximum": 10**digits - 1},
        ],
        "examples": ["19.99"],
    }


# Amounts of money, at most two decimals: a unit price (under a million) and a refund.
Price = Annotated[Decimal, PlainValidator(_money(6)), WithJsonSchema(_money_schema(6))]
Amount = Annotated[Decimal, PlainValidator(_money(10)), WithJsonSchema(_money_schema(10))]


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _iso_only(value: object) -> object:
    # Pydantic reads a bare number as a Unix time: in a query string that is a typo,
    # not a date.
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        raise ValueError("write the date as ISO 8601 (2026-12-06, 2026-12-06T08:00:00Z)")
    return value


# Query dates and times in ISO 8601 only.
IsoDate = Annotated[dt.date, BeforeValidator(_iso_only)]
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_only)]
