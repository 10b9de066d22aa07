from __future__ import annotations

import pytest

from wcs.domain.intake import IntakeLine, IntakeOrder, check_order, email_reachable, phone_reachable


def order(**changes: object) -> IntakeOrder:
    base: dict[str, object] = {
        "external_id": "X1",
        "customer_name": "Li Wei",
        "phone": "+86 138 0013 8000",
        "email": None,
        "line1": "1 Road",
        "city": "Shanghai",
        "postal_code": "200000",
        "country": "CN",
        "lines": [IntakeLine("SKU-1", 2)],
    }
    base.update(changes)
    return IntakeOrder(**base)  # type: ignore[arg-type]


def test_valid_order_has_no_problems() -> None:
    assert check_order(order(), {"SKU-1"}) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"lines": [IntakeLine("NOPE", 1)]}, "unknown SKU 'NOPE'"),
        ({"lines": [IntakeLine("SKU-1", 0)]}, "quantity must be > 0"),
        ({"lines": [IntakeLine("SKU-1", 10_001)]}, "exceeds"),
        ({"lines": []}, "no lines"),
        ({"country": "XX"}, "ISO 3166"),
        ({"city": "  "}, "city is empty"),
        ({"phone": "12", "email": None}, "no reachable contact"),
        ({"phone": None, "email": "not-an-email"}, "no reachable contact"),
        ({"lines": [IntakeLine("SKU-1", 1), IntakeLine("SKU-1", 2)]}, "appears twice"),
    ],
)
def test_each_problem_is_named(changes: dict[str, object], expected: str) -> None:
    problems = check_order(order(**changes), {"SKU-1"})
    assert any(expected in p for p in problems), problems


def test_either_contact_is_enough() -> None:
    assert check_order(order(phone=None, email="li@example.cn"), {"SKU-1"}) == []
    assert phone_reachable("+44 20 7946 0958")
    assert not phone_reachable("call me")
    assert email_reachable("a.b@shop.example")
    assert not email_reachable("a@b")
