from __future__ import annotations

import pytest

from wcs.domain.contact import address_problems, check_email, check_phone
from wcs.domain.intake import IntakeLine, IntakeOrder, check_order, examine


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
        ({"city": "y"}, "city 'y' is not a place name"),
        ({"city": "12"}, "is not a place name"),
        ({"postal_code": "!!"}, "postal code '!!' is not a CN postal code"),
        ({"postal_code": "2001"}, "is not a CN postal code"),
        ({"line1": "--"}, "names no street"),
        ({"phone": "12", "email": None}, "no reachable contact"),
        ({"phone": "12", "email": None}, "phone '12' is not a valid number in CN"),
        ({"phone": None, "email": "not-an-email"}, "e-mail 'not-an-email' is not valid"),
        ({"lines": [IntakeLine("SKU-1", 1), IntakeLine("SKU-1", 2)]}, "appears twice"),
    ],
)
def test_each_problem_is_named(changes: dict[str, object], expected: str) -> None:
    problems = check_order(order(**changes), {"SKU-1"})
    assert any(expected in p for p in problems), problems


def test_either_contact_is_enough_and_both_are_stored_normalised() -> None:
    assert check_order(order(phone=None, email="li@example.cn"), {"SKU-1"}) == []
    examined = examine(order(email="Li.Wei@Example.CN"), {"SKU-1"})
    assert examined.problems == []
    assert examined.phone == "+8613800138000" and examined.email == "Li.Wei@example.cn"
    # An invalid phone beside a valid e-mail is kept as given (customer service sees it).
    kept = examine(order(phone="call me", email="li@example.cn"), {"SKU-1"})
    assert kept.problems == [] and kept.phone == "call me"


@pytest.mark.parametrize(
    ("phone", "country", "e164"),
    [
        ("+44 20 7946 0958", "DE", "+442079460958"),
        ("030 1234567", "DE", "+49301234567"),  # national form, read in the country's way
        ("(0)30-1234567", "DE", "+49301234567"),
        ("138 0013 8000", "CN", "+8613800138000"),
    ],
)
def test_phones_become_e164(phone: str, country: str, e164: str) -> None:
    checked = check_phone(phone, country)
    assert checked.ok and checked.value == e164


@pytest.mark.parametrize("phone", ["call me", "12", "+49 1", "030 1234567 ext"])
def test_unreachable_phones(phone: str) -> None:
    assert not check_phone(phone, "CN").ok


def test_email_checks_are_offline_and_named() -> None:
    assert check_email("a.b@shop.example").ok
    assert not check_email("a@b").ok and "not valid" in str(check_email("a@b").problem)
    assert check_email(None).value is None and check_email(None).problem is None


@pytest.mark.parametrize(
    ("city", "postal", "country", "ok"),
    [
        ("Berlin", "10115", "DE", True),
        ("y", "!!", "DE", False),
        ("Berlin", "1011", "DE", False),
        ("London", "SW1A 1AA", "GB", True),
        ("London", "sw1a 1aa", "GB", True),
        ("London", "12345", "GB", False),
        ("Mountain View", "94043", "US", True),
        ("Hong Kong", "", "HK", True),  # no postal codes in Hong Kong
        ("上海", "200120", "CN", True),
        ("京", "100000", "CN", True),  # one Chinese character can be a name
        ("Lomé", "", "TG", True),
    ],
)
def test_addresses(city: str, postal: str, country: str, ok: bool) -> None:
    problems = address_problems("1 Road", city, postal, country)
    assert (problems == []) is ok, problems
