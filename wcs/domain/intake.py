"""Business checks of a well-formed order (design §1 step 1).

The API's schema already refused malformed bodies (types, missing fields, sizes).
What reaches this module is an order we keep: if a check fails it goes to
``exception`` with the reasons below and customer service is alerted.
"""

from __future__ import annotations

import re
from collections.abc import Container, Sequence
from dataclasses import dataclass

from wcs.domain.countries import ISO_3166_ALPHA2

MAX_LINE_QTY = 10_000
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()./-]{6,25}$")


@dataclass(frozen=True, slots=True)
class IntakeLine:
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class IntakeOrder:
    external_id: str
    customer_name: str
    phone: str | None
    email: str | None
    line1: str
    city: str
    postal_code: str
    country: str
    lines: Sequence[IntakeLine]


def phone_reachable(phone: str) -> bool:
    digits = re.sub(r"\D", "", phone)
    return bool(_PHONE_CHARS.fullmatch(phone.strip())) and 7 <= len(digits) <= 15


def email_reachable(email: str) -> bool:
    return bool(_EMAIL.fullmatch(email.strip()))


def check_order(order: IntakeOrder, known_skus: Container[str]) -> list[str]:
    """Every reason this order cannot proceed; empty means valid."""
    problems: list[str] = []
    if not order.lines:
        problems.append("order has no lines")
    seen: set[str] = set()
    for number, line in enumerate(order.lines, start=1):
        if line.sku not in known_skus:
            problems.append(f"line {number}: unknown SKU {line.sku!r}")
        if line.qty <= 0:
            problems.append(f"line {number}: quantity must be > 0, got {line.qty}")
        elif line.qty > MAX_LINE_QTY:
            problems.append(f"line {number}: quantity {line.qty} exceeds {MAX_LINE_QTY}")
        if line.sku in seen:
            problems.append(f"line {number}: SKU {line.sku!r} appears twice; merge the lines")
        seen.add(line.sku)
    for field, value in (
        ("customer name", order.customer_name),
        ("address line1", order.line1),
        ("city", order.city),
        ("postal code", order.postal_code),
    ):
        if not value.strip():
            problems.append(f"{field} is empty")
    if order.country.upper() not in ISO_3166_ALPHA2:
        problems.append(f"country {order.country!r} is not an ISO 3166 alpha-2 code")
    phone_ok = order.phone is not None and phone_reachable(order.phone)
    email_ok = order.email is not None and email_reachable(order.email)
    if not (phone_ok or email_ok):
        problems.append("no reachable contact: give a valid phone number or e-mail address")
    return problems
