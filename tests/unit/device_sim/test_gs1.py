"""GS1 helpers of the simulator, checked against published examples."""

from __future__ import annotations

import pytest

from device_sim import gs1


@pytest.mark.parametrize(
    ("data", "check"),
    [
        ("10614141123456789", "7"),  # GS1 General Specifications SSCC example
        ("400638133393", "1"),  # EAN-13 4006381333931
        ("950600013435", "2"),  # EAN-13 9506000134352
        ("0950600013435", "2"),  # the same as a GTIN-14 body: leading zeros change nothing
        ("629104150021", "3"),
        ("0", "0"),
    ],
)
def test_check_digit(data: str, check: str) -> None:
    assert gs1.check_digit(data) == check


def test_check_digit_is_not_luhn() -> None:
    # Luhn doubles every second digit from the right; GS1 weights them 3 and 1.
    assert gs1.check_digit("79927398713"[:-1]) != "3"


def test_sscc_and_ean() -> None:
    assert gs1.sscc18("10614141123456789") == "106141411234567897"
    assert gs1.sscc18_from(1, "0614141", 123456789) == "106141411234567897"
    assert gs1.ean13("400638133393") == "4006381333931"
    assert gs1.is_valid("106141411234567897")
    assert not gs1.is_valid("106141411234567898")
    with pytest.raises(ValueError, match="17 digits"):
        gs1.sscc18("1234")
    with pytest.raises(ValueError, match="12 digits"):
        gs1.ean13("40063813339A")
    with pytest.raises(ValueError, match="does not fit"):
        gs1.sscc18_from(1, "0614141", 10**9)


def test_element_strings_separate_variable_length_fields_with_gs() -> None:
    code = gs1.element_string(
        ("01", "09506000134352"), ("10", "ABC1"), ("17", "261231"), ("21", "X9")
    )
    assert code == "0109506000134352" + "10ABC1\x1d" + "17261231" + "21X9"
    assert gs1.parse_element_string(code) == [
        ("01", "09506000134352"),
        ("10", "ABC1"),
        ("17", "261231"),
        ("21", "X9"),
    ]
    assert gs1.human_readable(code) == "(01)09506000134352(10)ABC1(17)261231(21)X9"


def test_sscc_element_and_four_digit_ais() -> None:
    assert gs1.sscc_element("106141411234567897") == "00106141411234567897"
    net_weight = gs1.element_string(
        ("3103", "001250"), ("400", "PO42"), ("00", "106141411234567897")
    )
    assert net_weight == "3103001250400PO42\x1d00106141411234567897"
    assert gs1.parse_element_string(net_weight)[1] == ("400", "PO42")
    with pytest.raises(ValueError, match="valid SSCC"):
        gs1.sscc_element("106141411234567898")
    with pytest.raises(ValueError, match="takes 18"):
        gs1.element_string(("00", "1234"))


def test_tote_barcode() -> None:
    assert gs1.tote_barcode(123) == "T000123"
    assert gs1.tote_barcode(7, prefix="TT", width=3) == "TT007"
    with pytest.raises(ValueError, match="does not fit"):
        gs1.tote_barcode(1000, width=3)
