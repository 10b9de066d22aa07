"""The pick-scan rules: what a scanned unit is, which SKU, and may it be picked."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wcs.domain.pick_scan import (
    ItemCode,
    Refused,
    gtin_forms,
    read_item,
    shelf_life_refusal,
    sku_of,
)

GS = "\x1d"
GTIN = "09506000134352"
TODAY = dt.date(2026, 12, 6)


@pytest.mark.parametrize(
    ("code", "symbology", "expected"),
    [
        ("SKU-0001", None, ItemCode("SKU-0001")),
        ("4006381333931", "]E0", ItemCode("4006381333931", "04006381333931")),
        ("4006381333931", None, ItemCode("4006381333931", "04006381333931")),
        (
            f"01{GTIN}17270630{GS}10LOT42",
            "]d2",
            ItemCode(f"01{GTIN}17270630{GS}10LOT42", GTIN, "LOT42", dt.date(2027, 6, 30)),
        ),
        (
            f"01{GTIN}15270115{GS}21SN9",
            None,
            ItemCode(f"01{GTIN}15270115{GS}21SN9", GTIN, None, dt.date(2027, 1, 15), "SN9"),
        ),
    ],
)
def test_read_item(code: str, symbology: str | None, expected: ItemCode) -> None:
    assert read_item(code, symbology) == expected


@pytest.mark.parametrize(
    ("code", "symbology", "reason"),
    [
        ("4006381333932", "]E0", "label not readable: Invalid GTIN check digit"),
        (f"01{GTIN}17261331", "]d2", "'261331' does not fit"),
        ("00106141411234567897", "]C1", "shipping label (SSCC 106141411234567897)"),
    ],
)
def test_read_item_refuses(code: str, symbology: str | None, reason: str) -> None:
    found = read_item(code, symbology)
    assert isinstance(found, Refused) and reason in found.reason


def test_traced_and_lookup_key() -> None:
    assert not ItemCode("SKU-1").traced and ItemCode("SKU-1").lookup_key == "SKU-1"
    plain = ItemCode("4006381333931", "04006381333931")
    assert not plain.traced and plain.lookup_key == "04006381333931"
    assert ItemCode("x", GTIN, lot="L").traced
    assert ItemCode("x", GTIN, use_by=TODAY).traced


def test_gtin_forms_and_sku_of() -> None:
    assert gtin_forms("04006381333931") == ("04006381333931", "4006381333931")
    assert gtin_forms("00036000291452") == ("00036000291452", "0036000291452", "036000291452")
    assert gtin_forms("00000096385074")[-1] == "96385074"
    assert gtin_forms("10614141000415") == ("10614141000415",)
    codes = {"4006381333931": "A", GTIN: "B", "SKU-9": "C"}
    assert sku_of(ItemCode("4006381333931", "04006381333931"), codes) == "A"
    assert sku_of(ItemCode("whatever", GTIN, lot="L1"), codes) == "B"
    assert sku_of(ItemCode("SKU-9"), codes) == "C"
    assert sku_of(ItemCode("nope"), codes) is None


@pytest.mark.parametrize(
    ("use_by", "min_days", "reason"),
    [
        (None, 30, None),
        (dt.date(2026, 12, 5), 0, "expired on 2026-12-05"),
        (dt.date(2026, 12, 6), 0, None),  # the last day is still a day
        (dt.date(2026, 12, 6), 1, "expires 2026-12-06, 0 days left, 1 needed"),
        (dt.date(2026, 12, 7), 7, "expires 2026-12-07, 1 day left, 7 needed"),
        (dt.date(2026, 12, 13), 7, None),
    ],
)
def test_shelf_life(use_by: dt.date | None, min_days: int, reason: str | None) -> None:
    found = shelf_life_refusal(use_by, TODAY, min_days)
    if reason is None:
        assert found is None
    else:
        assert found is not None and found.startswith(reason)
        assert found.endswith("take a unit with a later date")


@given(
    days=st.integers(min_value=-4000, max_value=4000),
    min_days=st.integers(min_value=0, max_value=3650),
)
def test_shelf_life_refuses_exactly_the_short_dated(days: int, min_days: int) -> None:
    use_by = TODAY + dt.timedelta(days=days)
    refused = shelf_life_refusal(use_by, TODAY, min_days) is not None
    assert refused == (days < 0 or days < min_days)
