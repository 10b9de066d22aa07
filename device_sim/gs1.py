"""GS1 helpers for building the codes simulated scanners read and printers print.

Check digits come from the project's one GS1 module (:mod:`wcs.domain.gs1`, on biip);
what is the simulator's own is how codes are put together and framed:

- SSCC-18 = extension digit + company prefix + serial reference (17 digits) + check.
- Element strings: AI + data; an element whose AI has no predefined length is followed
  by GS (FNC1 sent as ASCII 0x1D) unless it is the last one.
"""

from __future__ import annotations

from wcs.domain import gs1 as kernel_gs1
from wcs.errors import ValidationFailed

GS = "\x1d"

# Element strings whose total length (AI + data) is fixed by the first two digits of
# the AI, so no FNC1 separator follows them (GS1 General Specifications, "predefined
# length" table).
_PREDEFINED_LENGTH = {
    "00": 20,
    "01": 16,
    "02": 16,
    "03": 16,
    "04": 18,
    **{str(prefix): 8 for prefix in range(11, 20)},
    "20": 4,
    **{str(prefix): 10 for prefix in range(31, 37)},
    "41": 16,
}
_THREE_DIGIT_AI = {"23", "24", "25", "40", "41", "42", "71"}
_FOUR_DIGIT_AI = {"31", "32", "33", "34", "35", "36", "39", "43", "70", "72", "80", "81", "82"}


def check_digit(digits: str) -> str:
    """GS1 mod-10 check digit of ``digits`` (the data without its check digit)."""
    try:
        return str(kernel_gs1.check_digit(digits))
    except ValidationFailed as exc:
        raise ValueError(f"GS1 check digit needs digits only, got {digits!r}") from exc


def with_check_digit(digits: str) -> str:
    return digits + check_digit(digits)


def is_valid(code: str) -> bool:
    """Whether the last digit of ``code`` is the right GS1 check digit."""
    return len(code) >= 2 and code.isdigit() and check_digit(code[:-1]) == code[-1]


def ean13(first12: str) -> str:
    """EAN-13 from its first 12 digits: ``400638133393`` -> ``4006381333931``."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"EAN-13 needs 12 digits before the check digit, got {first12!r}")
    return with_check_digit(first12)


def sscc18(data17: str) -> str:
    """SSCC-18 from its 17 data digits: ``10614141123456789`` -> ``106141411234567897``."""
    if len(data17) != 17 or not data17.isdigit():
        raise ValueError(f"SSCC needs 17 digits before the check digit, got {data17!r}")
    return with_check_digit(data17)


def sscc18_from(extension: int, company_prefix: str, serial_reference: int) -> str:
    """SSCC-18 from its parts; the serial reference is zero-padded to fill 16 digits."""
    if not 0 <= extension <= 9:
        raise ValueError("SSCC extension digit must be 0-9")
    if not company_prefix.isdigit() or not 6 <= len(company_prefix) <= 12:
        raise ValueError("GS1 company prefix must be 6-12 digits")
    width = 16 - len(company_prefix)
    if not 0 <= serial_reference < 10**width:
        raise ValueError(f"serial reference does not fit in {width} digits")
    return sscc18(f"{extension}{company_prefix}{serial_reference:0{width}d}")


def ai_length(element: str) -> int:
    """Number of digits of the AI at the start of ``element``."""
    head = element[:2]
    if len(head) < 2 or not head.isdigit():
        raise ValueError(f"no GS1 application identifier at {element[:8]!r}")
    if head in _FOUR_DIGIT_AI:
        return 4
    if head in _THREE_DIGIT_AI:
        return 3
    return 2


def is_fixed_length(ai: str) -> bool:
    return ai[:2] in _PREDEFINED_LENGTH


def element_string(*elements: tuple[str, str]) -> str:
    """Concatenate ``(ai, data)`` pairs the way a GS1-128 scanner transmits them."""
    parts: list[str] = []
    for index, (ai, data) in enumerate(elements):
        if ai_length(ai) != len(ai):
            raise ValueError(f"{ai!r} is not a complete GS1 application identifier")
        total = _PREDEFINED_LENGTH.get(ai[:2])
        if total is not None and len(ai) + len(data) != total:
            raise ValueError(f"AI ({ai}) takes {total - len(ai)} characters, got {data!r}")
        parts.append(ai + data)
        if total is None and index < len(elements) - 1:
            parts.append(GS)
    return "".join(parts)


def sscc_element(sscc: str) -> str:
    """The element string ``00`` + SSCC-18, as scanned from a GS1-128 shipping label."""
    if len(sscc) != 18 or not is_valid(sscc):
        raise ValueError(f"{sscc!r} is not a valid SSCC-18")
    return element_string(("00", sscc))


def parse_element_string(code: str) -> list[tuple[str, str]]:
    """Split a GS1 element string (GS separated) into ``(ai, data)`` pairs."""
    elements: list[tuple[str, str]] = []
    rest = code.lstrip(GS)
    while rest:
        size = ai_length(rest)
        ai = rest[:size]
        total = _PREDEFINED_LENGTH.get(rest[:2])
        if total is not None:
            if len(rest) < total:
                raise ValueError(f"AI ({ai}) is cut short in {code!r}")
            data, rest = rest[size:total], rest[total:]
        else:
            end = rest.find(GS)
            end = len(rest) if end < 0 else end
            data, rest = rest[size:end], rest[end:]
        elements.append((ai, data))
        rest = rest.lstrip(GS)
    return elements


def human_readable(code: str) -> str:
    """``(00)106141411234567897`` style text of an element string."""
    return "".join(f"({ai}){data}" for ai, data in parse_element_string(code))


def tote_barcode(number: int, prefix: str = "T", width: int = 6) -> str:
    """A tote label such as ``T000123``."""
    if number < 0 or number >= 10**width:
        raise ValueError(f"tote number {number} does not fit in {width} digits")
    return f"{prefix}{number:0{width}d}"
