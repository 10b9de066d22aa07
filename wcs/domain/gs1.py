"""GS1 data: what a scanned code means, on biip. The one GS1 module of the project.

Check digits, SSCCs, GTINs and element strings all go through `biip`_, a maintained
GS1 parser; this module adds only our policy on top of it:

- **Recognition.** A code is GS1 data when its AIM symbology identifier says so
  (``]C1`` GS1-128, ``]d2`` GS1 DataMatrix, ``]Q3`` GS1 QR, ``]e0`` DataBar, ``]J1``
  DotCode; ``]E0``/``]E3``/``]E4``/``]I1`` carry a GTIN), and - because most handheld
  scanners ship without AIM identifiers - also when it has none but its content
  leaves no doubt: a leading FNC1 (sent as GS), a GS between elements, the
  human-readable form with parentheses, a GS1 Digital Link URI, 12-14 bare digits (an
  EAN-13, UPC-A or ITF-14) or 18 (an SSCC), or a numeric string that parses as element
  strings and carries a GTIN or an SSCC whose check digit is right.
- **Validation.** Data recognised as GS1 must be right: check digits, dates (a month
  13 is refused; day 00 means the month's last day, as the specification says),
  known application identifiers, lengths. A code that claims to be GS1 and is not is
  refused with the reason (:class:`Gs1Refusal`), never taken for an ordinary code.
- Anything else (a tote label, a SKU code, a Code 128 of our own) is not GS1:
  :func:`read` answers ``None`` and the caller matches it as before.

.. _biip: https://biip.readthedocs.io/
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from biip import ParseConfig, ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_application_identifiers import GS1ApplicationIdentifier
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from biip.sscc import Sscc

from wcs.errors import ValidationFailed

GS = "\x1d"
# AIM identifiers whose data is a GS1 element string.
GS1_SYMBOLOGIES = frozenset({"]C1", "]e0", "]e1", "]e2", "]d2", "]Q3", "]J1"})
# AIM identifiers whose data is a GTIN (EAN/UPC, with or without add-on; ITF-14).
GTIN_SYMBOLOGIES = frozenset({"]E0", "]E3", "]E4", "]I1"})
# Symbologies that may carry a GS1 Digital Link URI (plain QR and Data Matrix too).
_URI_SYMBOLOGIES = frozenset({"]Q1", "]Q3", "]d1", "]d2", None})
_CONFIG = ParseConfig(separator_chars=(GS,))
_HRI = re.compile(r"^\(\d{2,4}\)")


@dataclass(frozen=True, slots=True)
class Gs1Scan:
    """What a valid GS1 code says, in the fields the floor uses."""

    hri: str  # human-readable form: (01)09506000134352(17)201225(10)ABC123
    gtin: str | None = None  # as GTIN-14 (an EAN-13 gets a leading 0)
    sscc: str | None = None
    lot: str | None = None  # AI 10
    expiry: dt.date | None = None  # AI 17
    best_before: dt.date | None = None  # AI 15
    serial: str | None = None  # AI 21

    @property
    def use_by(self) -> dt.date | None:
        """The date the unit must be used by: expiry, else best-before."""
        return self.expiry or self.best_before


@dataclass(frozen=True, slots=True)
class Gs1Refusal:
    """A code that claims to be GS1 data and is not valid: why, in words."""

    reason: str


# --- check digits and SSCCs ----------------------------------------------------------


def check_digit(data: str) -> int:
    """GS1 mod-10: weights 3,1,3,1... from the rightmost data digit (not Luhn)."""
    if not data.isascii() or not data.isdigit():
        raise ValidationFailed(f"GS1 data {data!r} must be digits")
    return gs1_standard_check_digit(data)


def with_check_digit(data: str) -> str:
    return data + str(check_digit(data))


def valid_check_digit(digits: str) -> bool:
    """Whether the last digit of ``digits`` is its GS1 check digit."""
    return (
        len(digits) >= 2
        and digits.isascii()
        and digits.isdigit()
        and check_digit(digits[:-1]) == int(digits[-1])
    )


def sscc(extension: int, company_prefix: str, serial: int) -> str:
    """The 18 digits of an SSCC: extension + prefix + serial reference + check digit."""
    if not 0 <= extension <= 9:
        raise ValidationFailed("SSCC extension digit must be 0-9")
    if not company_prefix.isdigit() or not 6 <= len(company_prefix) <= 12:
        raise ValidationFailed("GS1 company prefix must be 6-12 digits")
    width = 16 - len(company_prefix)
    if not 0 <= serial < 10**width:
        raise ValidationFailed(f"SSCC serial {serial} does not fit {width} digits")
    return with_check_digit(f"{extension}{company_prefix}{serial:0{width}d}")


def sscc_error(digits: str) -> str | None:
    """Why ``digits`` (the 18 digits after AI 00) is not a valid SSCC, or None."""
    try:
        Sscc.parse(digits, config=_CONFIG)
    except ParseError as exc:
        return _plain(str(exc))
    return None


def valid_sscc(digits: str) -> bool:
    return len(digits) == 18 and sscc_error(digits) is None


def gtin14(value: str) -> str:
    """A GTIN (8, 12, 13 or 14 digits, right check digit) as GTIN-14; else ValidationFailed."""
    try:
        return Gtin.parse(value, config=_CONFIG).as_gtin_14()
    except ParseError as exc:
        raise ValidationFailed(_plain(str(exc))) from None


def human_readable(sscc18: str) -> str:
    """``(00) 1 0614141 123456789 7`` is the logistic label's form; ours: ``(00)`` + digits."""
    return f"(00){sscc18}"


# --- reading a scan -----------------------------------------------------------------


def read(code: str, symbology: str | None = None) -> Gs1Scan | Gs1Refusal | None:
    """What ``code`` (as scanned, without its AIM identifier) means as GS1 data.

    ``None``: not GS1 data at all. :class:`Gs1Refusal`: it is (or claims to be) GS1
    data and is wrong. :class:`Gs1Scan`: valid GS1 data."""
    text = code.strip(" \r\n")
    if symbology in _URI_SYMBOLOGIES and text.lower().startswith(("http://", "https://")):
        return _uri(text)
    if symbology in GS1_SYMBOLOGIES:
        return _message(text.strip(GS), symbology) or Gs1Refusal(f"no GS1 data in {text!r}")
    if symbology in GTIN_SYMBOLOGIES:
        return _bare_gtin(text, symbology)
    if symbology is not None:
        return None  # Code 128, Code 39, a plain QR: not GS1 data, whatever it holds
    if text.startswith(GS) or GS in text:
        return _message(text.strip(GS), "FNC1")
    if _HRI.match(text):
        return _hri(text)
    if text.isascii() and text.isdigit():
        if len(text) in (12, 13, 14):
            return _bare_gtin(text, None)
        if len(text) == 18:
            return _bare_sscc(text)
        if len(text) == 8 and valid_check_digit(text):
            return _bare_gtin(text, None)  # EAN-8
    if text[:2].isdigit():
        found = _message(text, None)
        if isinstance(found, Gs1Scan) and (found.gtin or found.sscc):
            return found  # element strings confirmed by a check digit
    return None


def sscc_in(code: str, symbology: str | None = None) -> str | None:
    """The SSCC a scanned code carries, at whatever position of its element strings."""
    found = read(code, symbology)
    return found.sscc if isinstance(found, Gs1Scan) else None


def _message(text: str, symbology: str | None) -> Gs1Scan | Gs1Refusal | None:
    """Element strings (FNC1 as GS). ``symbology`` None: only a guess, so a failure
    means "not GS1" rather than "wrong GS1"."""
    try:
        message = GS1Message.parse(text, config=_CONFIG)
    except ParseError as exc:
        if symbology is None:
            return None
        return Gs1Refusal(_plain(str(exc)))
    return _from_elements(list(message.element_strings), guessed=symbology is None)


def _hri(text: str) -> Gs1Scan | Gs1Refusal:
    try:
        message = GS1Message.parse_hri(text, config=_CONFIG)
    except ParseError as exc:
        return Gs1Refusal(_plain(str(exc)))
    found = _from_elements(list(message.element_strings), guessed=False)
    assert found is not None
    return found


def _uri(text: str) -> Gs1Scan | Gs1Refusal | None:
    try:
        uri = GS1DigitalLinkURI.parse(text, config=_CONFIG)
    except ParseError:
        return None  # an ordinary web address, not a GS1 Digital Link
    return _from_elements(list(uri.element_strings), guessed=False)


def _from_elements(
    elements: list[GS1ElementString], *, guessed: bool
) -> Gs1Scan | Gs1Refusal | None:
    fields: dict[str, str] = {}
    for element in elements:
        error = element.gtin_error or element.sscc_error or element.gln_error
        if error:
            return None if guessed else Gs1Refusal(_plain(error))
        fields.setdefault(element.ai.ai, element.value)
    by_ai = {e.ai.ai: e for e in elements}
    gtin = by_ai["01"].gtin if "01" in by_ai else None
    sscc_ = by_ai["00"].sscc if "00" in by_ai else None
    return Gs1Scan(
        hri="".join(e.as_hri() for e in elements),
        gtin=gtin.as_gtin_14() if gtin is not None else None,
        sscc=sscc_.value if sscc_ is not None else None,
        lot=fields.get("10"),
        expiry=by_ai["17"].date if "17" in by_ai else None,
        best_before=by_ai["15"].date if "15" in by_ai else None,
        serial=fields.get("21"),
    )


def _bare_gtin(text: str, symbology: str | None) -> Gs1Scan | Gs1Refusal:
    digits = text.split(" ", 1)[0]  # an add-on (]E3) follows after the GTIN
    if symbology == "]E3" and len(text) in (15, 18) and " " not in text:
        digits = text[:13]  # EAN-13 + 2 or 5 add-on digits sent as one string
    try:
        gtin = Gtin.parse(digits, config=_CONFIG)
    except ParseError as exc:
        return Gs1Refusal(_plain(str(exc)))
    return Gs1Scan(hri=f"(01){gtin.as_gtin_14()}", gtin=gtin.as_gtin_14())


def _bare_sscc(text: str) -> Gs1Scan | Gs1Refusal:
    error = sscc_error(text)
    if error:
        return Gs1Refusal(error)
    return Gs1Scan(hri=human_readable(text), sscc=text)


_UNKNOWN_AI = re.compile(r"Failed to get GS1 Application Identifier from '(.*)'\.$", re.S)
_NO_MATCH = re.compile(r"Failed to match '(.*)' with GS1 AI \((\d+)\) pattern", re.S)
_BAD_DATE = re.compile(r"Failed to parse GS1 AI \((\d+)\) date/time from '(.*)'\.$", re.S)


def _plain(message: str) -> str:
    """biip's reason, in the words a floor supervisor reads (no regular expressions)."""
    if found := _UNKNOWN_AI.match(message):
        return f"no known GS1 application identifier at {found.group(1)[:16]!r}"
    if found := _NO_MATCH.match(message):
        ai = _ai(found.group(2))
        data = found.group(1)[len(found.group(2)) :]
        return f"({ai.ai}) {ai.description}: {data[:40]!r} does not fit {ai.format}"
    if found := _BAD_DATE.match(message):
        ai = _ai(found.group(1))
        return f"({ai.ai}) {ai.description}: {found.group(2)!r} is not a date"
    return message


def _ai(number: str) -> GS1ApplicationIdentifier:
    return GS1ApplicationIdentifier.extract(number)
