"""GS1 check digits and SSCC-18 numbers (the kernel's own; drivers and the simulator
keep theirs, so a bug cannot hide by being shared)."""

from __future__ import annotations

from wcs.errors import ValidationFailed


def check_digit(data: str) -> int:
    """GS1 mod-10: weights 3,1,3,1... from the rightmost data digit (not Luhn)."""
    if not data.isdigit():
        raise ValidationFailed(f"GS1 data {data!r} must be digits")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(data)))
    return (10 - total % 10) % 10


def sscc(extension: int, company_prefix: str, serial: int) -> str:
    """The 18 digits of an SSCC: extension + prefix + serial reference + check digit."""
    if not 0 <= extension <= 9:
        raise ValidationFailed("SSCC extension digit must be 0-9")
    if not company_prefix.isdigit() or not 6 <= len(company_prefix) <= 12:
        raise ValidationFailed("GS1 company prefix must be 6-12 digits")
    width = 16 - len(company_prefix)
    if not 0 <= serial < 10**width:
        raise ValidationFailed(f"SSCC serial {serial} does not fit {width} digits")
    body = f"{extension}{company_prefix}{serial:0{width}d}"
    return body + str(check_digit(body))


def valid_sscc(digits: str) -> bool:
    return len(digits) == 18 and digits.isdigit() and check_digit(digits[:17]) == int(digits[17])


def sscc_from_scan(code: str) -> str | None:
    """The SSCC in a scanned GS1 string ``00`` + 18 digits (with or without parentheses)."""
    text = code.replace("(", "").replace(")", "").lstrip("\x1d")
    if text.startswith("00") and len(text) >= 20 and valid_sscc(text[2:20]):
        return text[2:20]
    return None
