"""Bounds of the parameters and the text types of bodies.

Path ids fit the column they are looked up in.

Without them an integer past 2^63 reached the database driver (SQLite raised
``OverflowError``: a 500) and a megabyte-long string id a query. Out of bounds is a
422 problem naming the parameter, on every database alike.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, BeforeValidator, StringConstraints

from wcs.domain.text import check_name, check_text

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
CourierId = Annotated[str, _key("courier", 64)]
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


# Body fields: a person's or a thing's name (something visible, no control characters)
# and free text (line breaks allowed, no other control characters).
NameText = Annotated[str, AfterValidator(_name)]
FreeText = Annotated[str, AfterValidator(_text)]


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
