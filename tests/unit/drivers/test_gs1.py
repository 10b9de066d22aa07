from __future__ import annotations

import pytest

from drivers.gs1 import check_digit, sscc_error, with_check_digit


@pytest.mark.parametrize(
    ("data", "digit"),
    [
        ("10614141123456789", 7),  # the GS1 General Specifications' SSCC example
        ("400638133393", 1),  # EAN-13 4006381333931
        ("9501101530003"[:-1], 3),
        ("0", 0),
    ],
)
def test_check_digit(data: str, digit: int) -> None:
    assert check_digit(data) == digit


def test_check_digit_refuses_non_digits() -> None:
    with pytest.raises(ValueError, match="digits"):
        check_digit("12a4")


def test_sscc_error() -> None:
    assert sscc_error("106141411234567897") is None
    assert sscc_error("106141411234567890") == (
        "SSCC 106141411234567890 has check digit 0, expected 7"
    )
    assert "18 digits" in (sscc_error("1061414112345678") or "")
    assert with_check_digit("10614141123456789") == "106141411234567897"
