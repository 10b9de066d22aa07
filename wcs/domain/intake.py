"""Business checks of a well-formed order (design §1 step 1).

The API's schema already refused malformed bodies (types, missing fields, sizes).
What reaches this module is an order we keep: if a check fails it goes to
``exception`` with the reasons below and customer service is alerted.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field

from wcs.domain.contact import address_problems, check_email, check_phone

MAX_LINE_QTY = 10_000


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


@dataclass(frozen=True, slots=True)
class Examined:
    """Why an order cannot proceed (empty: it can) and its contact as stored: a valid
    phone in E.164, a valid e-mail normalised, anything else as it was given."""

    problems: list[str] = field(default_factory=list)
    phone: str | None = None
    email: str | None = None


def check_order(order: IntakeOrder, known_skus: Container[str]) -> list[str]:
    """Every reason this order cannot proceed; empty means valid."""
    return examine(order, known_skus).problems


def examine(order: IntakeOrder, known_skus: Container[str]) -> Examined:
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
    if not order.customer_name.strip():
        problems.append("customer name is empty")
    problems.extend(address_problems(order.line1, order.city, order.postal_code, order.country))
    phone = check_phone(order.phone, order.country)
    email = check_email(order.email)
    if not (phone.ok or email.ok):
        why = [c.problem for c in (phone, email) if c.problem]
        problems.append(
            "no reachable contact: give a valid phone number or e-mail address"
            + (f" ({'; '.join(why)})" if why else "")
        )
    return Examined(problems, phone.value, email.value)
