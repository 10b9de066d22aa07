"""GS1 helpers the drivers need: the mod-10 check digit and SSCC validation.

GS1 mod-10 (not Luhn): weights 3, 1, 3, 1 ... from the rightmost data digit;
check = (10 - sum mod 10) mod 10. Data ``10614141123456789`` -> check 7.
"""

from __future__ import annotations

GS = "\x1d"


def check_digit(data: str) -> int:
    """The GS1 check digit for ``data`` (digits only, without the check digit)."""
    if not data.isdigit() or not data.isascii():
        raise ValueError(f"GS1 check digit needs digits only, got {data!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(data)))
    return (10 - total % 10) % 10


def sscc_error(sscc: str) -> str | None:
    """Why ``sscc`` (the 18 digits after AI 00) is not a valid SSCC, or None."""
    if len(sscc) != 18 or not sscc.isdigit() or not sscc.isascii():
        return f"SSCC {sscc!r} must be 18 digits"
    expected = check_digit(sscc[:17])
    if int(sscc[17]) != expected:
        return f"SSCC {sscc} has check digit {sscc[17]}, expected {expected}"
    return None


def with_check_digit(data: str) -> str:
    return data + str(check_digit(data))
