"""Real GS1 inputs, as scanners send them, read by our GS1 module and by biip alone.

Each row is a line a scanner transmits (AIM identifier first when the scanner is set
to send one; FNC1 as GS). It goes through the scanner codec and the kernel's GS1
module (:func:`wcs.domain.gs1.read`), and separately through ``biip.parse`` on the
raw line - the library's own interpretation, without our policy. The two must agree
on what the code says (GTIN, SSCC, lot, dates), except where a row says why they
differ: an unexplained disagreement fails, and so does an explanation for rows that
agree.

Sources of the numbers: the GS1 General Specifications' examples (SSCC
106141411234567897, GTIN 09506000134352 with lot ABC123), the EAN-13 4006381333931,
5901234123457 and UPC-A 036000291452 printed on retail goods and in the symbology
standards, the EAN-8 96385074 and 73513537; the rest are the same numbers with one
digit changed, a date made impossible, an application identifier that does not exist,
or noise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import biip
import pytest
from biip import ParseConfig

from drivers.frame import BadFrame
from drivers.scanner.codec import decode_scan
from wcs.domain import gs1
from wcs.errors import ValidationFailed

GS = "\x1d"
BIIP = ParseConfig(separator_chars=(GS,))


@dataclass(frozen=True)
class View:
    """What a code says, in the fields the floor uses."""

    gtin: str | None = None
    sscc: str | None = None
    lot: str | None = None
    expiry: dt.date | None = None
    best_before: dt.date | None = None


REFUSED = "refused"


@dataclass(frozen=True)
class Case:
    raw: str  # the line as the scanner sends it
    ours: View | str | None  # View; REFUSED + ": part of the reason"; None: not GS1 data
    why: str | None = None  # why biip alone reads it differently, when it does

    @property
    def id(self) -> str:
        return repr(self.raw.replace(GS, "<GS>"))[1:-1][:60]


SSCC = "106141411234567897"
GTIN = "09506000134352"
D = dt.date

# Explanations shared by several rows.
HRI = (
    "the parenthesised form is what a person types from the label; biip.parse does not "
    "read it, biip's GS1Message.parse_hri does, and the module uses that"
)
BARE_13_AS_AI_400 = (
    "13 bare digits on a floor are an EAN-13 whose check digit is wrong; biip alone also "
    "reads them as AI (400), a customer purchase order number, which no product carries "
    "alone - accepting that reading would let a misread EAN pass as a scan"
)
BARE_AS_AI_10 = (
    "bare digits starting with 10 are read by biip alone both as the number they are and "
    "as AI (10), a batch number holding the rest; only the first reading is a label's"
)
CODE_128 = (
    "]C0 is plain Code 128: its data is not an element string whatever digits it holds "
    "(a GS1-128 says ]C1); biip alone, seeing no GS1 identifier, tries every format"
)
PLAIN_QR = (
    "]Q1 is a plain QR code: only a GS1 Digital Link URI in it is GS1 data; biip alone, "
    "seeing no GS1 identifier, tries every format on the text"
)
NO_CHECK_DIGIT = (
    "without an AIM identifier we take a bare numeric string for GS1 data only when a "
    "check digit (a GTIN or an SSCC in it) confirms it - any number starting with two "
    "digits of a date AI would pass otherwise; biip alone reads it as element strings"
)

CASES = [
    # --- GS1-128 (]C1) ---------------------------------------------------------------
    Case(f"]C100{SSCC}", View(sscc=SSCC)),
    Case(f"]C1{GS}00{SSCC}", View(sscc=SSCC)),  # FNC1 sent although implied
    Case(f"]C142012345{GS}00{SSCC}", View(sscc=SSCC)),  # SSCC not first: ship-to ZIP first
    Case(f"]C1400PO-4711{GS}00{SSCC}", View(sscc=SSCC)),
    Case(f"]C100{SSCC}02{GTIN}3712", View(sscc=SSCC)),  # content GTIN (02) is not the item
    Case(f"]C101{GTIN}17261231", View(gtin=GTIN, expiry=D(2026, 12, 31))),
    Case(f"]C101{GTIN}10LOT42{GS}17270630", View(gtin=GTIN, lot="LOT42", expiry=D(2027, 6, 30))),
    Case(f"]C101{GTIN}15270115", View(gtin=GTIN, best_before=D(2027, 1, 15))),
    Case(f"]C101{GTIN}17261200", View(gtin=GTIN, expiry=D(2026, 12, 31))),  # day 00
    Case("]C10110614141000415", View(gtin="10614141000415")),  # GTIN-14, a case of 10
    Case("]C1001061414112345678", f"{REFUSED}: '1061414112345678' does not fit N2+N18"),
    Case("]C100106141411234567890", f"{REFUSED}: Expected 7, got 0"),
    Case("]C1001061414112", f"{REFUSED}: does not fit"),  # truncated SSCC
    Case("]C10109506000134351", f"{REFUSED}: Expected 2, got 1"),  # GTIN check digit
    Case(f"]C101{GTIN}17261331", f"{REFUSED}: '261331' does not fit"),  # month 13
    Case(f"]C101{GTIN}17260230", f"{REFUSED}: '260230' is not a date"),  # 30 February
    Case(f"]C101{GTIN}17260000", f"{REFUSED}: '260000' is not a date"),  # month 00
    Case("]C12312345", f"{REFUSED}: no known GS1 application identifier"),  # AI 23 unused
    Case("]C1HELLO WORLD", f"{REFUSED}: no known GS1 application identifier"),
    Case(f"]C142012345{GS}0010614141123456789X", f"{REFUSED}: does not fit"),
    Case("]C19912ABC", View()),  # AI 99, company internal: GS1, nothing for us
    Case(f"]C1{GS}00{SSCC}{GS}", View(sscc=SSCC)),  # trailing FNC1 some printers add
    # --- GS1 DataMatrix (]d2) ------------------------------------------------------
    Case(
        f"]d201{GTIN}17261231{GS}10ABC123{GS}21SN0001",
        View(gtin=GTIN, lot="ABC123", expiry=D(2026, 12, 31)),
    ),
    Case(f"]d201{GTIN}10ABC123{GS}17261231", View(gtin=GTIN, lot="ABC123", expiry=D(2026, 12, 31))),
    Case(f"]d201{GTIN}21SN0001", View(gtin=GTIN)),
    Case(f"]d2{GS}01{GTIN}10B-7", View(gtin=GTIN, lot="B-7")),
    Case(f"]d201{GTIN}17250930", View(gtin=GTIN, expiry=D(2025, 9, 30))),
    Case(f"]d201{GTIN}17251301{GS}10X", f"{REFUSED}: '251301' does not fit"),
    Case(f"]d201{GTIN[:-1]}7", f"{REFUSED}: Expected 2, got 7"),
    Case(f"]d201{GTIN}17261231 10ABC", f"{REFUSED}: no known GS1 application identifier"),
    Case("]d2https://id.gs1.org/01/09506000134352/10/ABC", View(gtin=GTIN, lot="ABC")),
    # --- GS1 QR (]Q3) and plain QR (]Q1) -------------------------------------------
    Case(f"]Q301{GTIN}10QR1{GS}17280101", View(gtin=GTIN, lot="QR1", expiry=D(2028, 1, 1))),
    Case(f"]Q300{SSCC}", View(sscc=SSCC)),
    Case("]Q3not gs1 at all", f"{REFUSED}: no known GS1 application identifier"),
    Case(
        "]Q1https://id.gs1.org/01/09506000134352/10/ABC?17=261231",
        View(gtin=GTIN, lot="ABC", expiry=D(2026, 12, 31)),
        "a GS1 Digital Link is printed as a plain QR code (the Digital Link standard), so "
        "scanners send ]Q1; biip looks for a Digital Link only after ]d2/]Q3 or with no "
        "identifier at all",
    ),
    Case("]Q1https://example.com/t/42", None),
    Case(f"]Q1{GS}01{GTIN}", None, PLAIN_QR),
    # --- GS1 DataBar (]e0), ITF-14 (]I1) -------------------------------------------
    Case(f"]e001{GTIN}", View(gtin=GTIN)),
    Case(f"]e001{GTIN}3103001250", View(gtin=GTIN)),  # with a net weight (3103)
    Case("]I110614141000415", View(gtin="10614141000415")),
    Case("]I110614141000416", f"{REFUSED}: Expected 5, got 6"),
    # --- EAN-13, UPC-A, EAN-8 (]E0, ]E4) ---------------------------------------------
    Case("]E04006381333931", View(gtin="04006381333931")),
    Case("]E05901234123457", View(gtin="05901234123457")),
    Case("]E0036000291452", View(gtin="00036000291452")),  # UPC-A
    Case("]E04006381333932", f"{REFUSED}: Expected 1, got 2"),
    Case("]E0400638133393", f"{REFUSED}: Expected 0, got 3"),  # a digit lost: 12 left
    Case("]E040063813339", f"{REFUSED}: Expected 8, 12, 13, or 14 digits"),
    Case("]E496385074", View(gtin="00000096385074")),
    Case("]E473513537", View(gtin="00000073513537")),
    Case("]E496385075", f"{REFUSED}: Expected 4, got 5"),
    # --- Without AIM identifiers (most handheld scanners out of the box) -----------
    Case(f"00{SSCC}", View(sscc=SSCC)),
    Case(f"{GS}00{SSCC}", View(sscc=SSCC)),
    Case(f"42012345{GS}00{SSCC}", View(sscc=SSCC)),
    Case(f"(00){SSCC}", View(sscc=SSCC), HRI),
    Case(f"(00) {SSCC[:1]} {SSCC[1:8]} {SSCC[8:17]} {SSCC[17]}", View(sscc=SSCC), HRI),
    Case(SSCC, View(sscc=SSCC), BARE_AS_AI_10),  # the SSCC printed under a label's barcode
    Case(
        "106141411234567890",
        f"{REFUSED}: Expected 7, got 0",
        "18 bare digits are an SSCC with a wrong check digit; biip alone also reads them "
        "as AI (10), a batch number - a reading that would let a misread label pass",
    ),
    Case(f"01{GTIN}17261231", View(gtin=GTIN, expiry=D(2026, 12, 31))),
    Case(f"01{GTIN}10LOT42{GS}17270630", View(gtin=GTIN, lot="LOT42", expiry=D(2027, 6, 30))),
    Case(f"{GS}01{GTIN}10LOT42", View(gtin=GTIN, lot="LOT42")),
    Case(
        f"(01){GTIN}(17)261231(10)ABC123",
        View(gtin=GTIN, lot="ABC123", expiry=D(2026, 12, 31)),
        HRI,
    ),
    Case(f"(01){GTIN}(17)261331(10)ABC123", f"{REFUSED}: '261331' does not fit"),
    Case("(23)12345", f"{REFUSED}: Unknown GS1 Application Identifier"),
    Case(f"{GS}2312345", f"{REFUSED}: no known GS1 application identifier"),
    Case(f"{GS}01{GTIN[:-1]}1", f"{REFUSED}: Expected 2, got 1"),
    Case("4006381333931", View(gtin="04006381333931")),
    Case("4006381333932", f"{REFUSED}: Expected 1, got 2", BARE_13_AS_AI_400),
    Case("036000291452", View(gtin="00036000291452")),
    Case("036000291453", f"{REFUSED}: Expected 2, got 3"),
    Case("10614141000415", View(gtin="10614141000415"), BARE_AS_AI_10),
    Case("96385074", View(gtin="00000096385074")),
    Case("15210527", None, NO_CHECK_DIGIT),  # AI (15), or just a number?
    Case("0109506000134351", None),  # no check digit confirms it: not GS1 data
    Case("https://id.gs1.org/01/09506000134352", View(gtin=GTIN)),
    # --- Not GS1 data: labels of our own, noise -------------------------------------
    Case("T000123", None),
    Case("SKU-0001", None),
    Case("A-01-02-1", None),
    Case("]C0HELLO", None),
    Case(f"]C000{SSCC}", None, CODE_128),
    Case("]A0CODE39", None),
    Case("%%%", None),
    Case("12345", None),
]


def our_view(raw: str) -> View | str | None:
    scan = decode_scan(raw.encode())
    found = gs1.read(scan.code, scan.symbology)
    if isinstance(found, gs1.Gs1Refusal):
        return f"{REFUSED}: {found.reason}"
    if found is None:
        return None
    return View(found.gtin, found.sscc, found.lot, found.expiry, found.best_before)


def biip_view(raw: str) -> View | None:
    """biip's own reading of the raw line: the valid data it finds, or None."""
    result = biip.parse(raw, config=BIIP)
    message = result.gs1_message or result.gs1_digital_link_uri
    if message is not None:
        elements = list(message.element_strings)
        if not any(e.gtin_error or e.sscc_error for e in elements):
            by_ai = {e.ai.ai: e for e in elements}
            return View(
                gtin=result.gtin.as_gtin_14() if result.gtin else None,
                sscc=result.sscc.value if result.sscc else None,
                lot=by_ai["10"].value if "10" in by_ai else None,
                expiry=by_ai["17"].date if "17" in by_ai else None,
                best_before=by_ai["15"].date if "15" in by_ai else None,
            )
    if result.gtin is not None:
        return View(gtin=result.gtin.as_gtin_14())
    if result.sscc is not None:
        return View(sscc=result.sscc.value)
    return None


def test_the_table_is_large_and_varied() -> None:
    assert len(CASES) >= 50
    prefixes = {case.raw[:3] for case in CASES if case.raw.startswith("]")}
    assert {"]C1", "]d2", "]Q3", "]Q1", "]E0", "]E4", "]I1", "]e0", "]C0"} <= prefixes
    assert sum(1 for case in CASES if not case.raw.startswith("]")) >= 20
    assert sum(1 for case in CASES if isinstance(case.ours, str)) >= 15
    assert len({case.raw for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_our_reading(case: Case) -> None:
    ours = our_view(case.raw)
    if isinstance(case.ours, str):
        assert isinstance(ours, str), ours
        assert case.ours.removeprefix(f"{REFUSED}: ") in ours
    else:
        assert ours == case.ours


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_against_biip(case: Case) -> None:
    ours = our_view(case.raw)
    theirs = biip_view(case.raw)
    valid_ours = ours if isinstance(ours, View) else None
    if case.why is None:
        assert valid_ours == theirs, f"biip reads {theirs}, we read {ours}: explain or fix"
    else:
        assert valid_ours != theirs, f"both read {theirs}: the explanation is stale"


def test_a_refusal_never_shows_a_regular_expression() -> None:
    for case in CASES:
        ours = our_view(case.raw)
        if isinstance(ours, str):
            assert "pattern" not in ours and "\\d" not in ours and "Gs1" not in ours


def test_frames_that_are_not_codes_never_reach_the_module() -> None:
    with pytest.raises(BadFrame):
        decode_scan(b"]C1")


@pytest.mark.parametrize(
    ("data", "digit"),
    [
        ("10614141123456789", 7),  # the GS1 General Specifications' SSCC example
        ("400638133393", 1),  # EAN-13 4006381333931
        ("950600013435", 2),
        ("0950600013435", 2),  # leading zeros change nothing
        ("0", 0),
    ],
)
def test_check_digit(data: str, digit: int) -> None:
    assert gs1.check_digit(data) == digit


def test_check_digit_is_not_luhn_and_refuses_non_digits() -> None:
    assert gs1.check_digit("7992739871") != 3  # Luhn would say 3
    with pytest.raises(ValidationFailed, match="digits"):
        gs1.check_digit("12a4")
    with pytest.raises(ValidationFailed, match="digits"):
        gs1.check_digit("١٢٣")  # Arabic-Indic digits are digits to Python, not to GS1


def test_sscc_and_gtin_helpers() -> None:
    assert gs1.sscc(1, "0614141", 123456789) == SSCC
    assert gs1.valid_sscc(SSCC) and not gs1.valid_sscc("106141411234567898")
    assert gs1.sscc_error("106141411234567890") == (
        "Invalid SSCC check digit for '106141411234567890': Expected 7, got 0."
    )
    assert gs1.gtin14("4006381333931") == "04006381333931"
    assert gs1.gtin14("96385074") == "00000096385074"
    with pytest.raises(ValidationFailed, match="Expected 1, got 2"):
        gs1.gtin14("4006381333932")
    assert gs1.sscc_in(f"42012345{GS}00{SSCC}") == SSCC
    assert gs1.sscc_in("T000123") is None
