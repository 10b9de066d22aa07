"""Weight units a scale may report, converted to grams (the contract's unit).

The symbols are those MT-SICS and indicator manuals print after the value; the
factors are exact by definition (avoirdupois pound and ounce, troy ounce, metric
carat, pennyweight, grain).
"""

from __future__ import annotations

GRAMS_PER_UNIT: dict[str, float] = {
    "g": 1.0,
    "kg": 1000.0,
    "mg": 0.001,
    "ug": 0.000001,
    "t": 1_000_000.0,
    "lb": 453.59237,
    "oz": 28.349523125,
    "ozt": 31.1034768,
    "ct": 0.2,
    "dwt": 1.55517384,
    "GN": 0.06479891,
}


def to_grams(value: float, unit: str) -> float:
    factor = GRAMS_PER_UNIT.get(unit)
    if factor is None:
        raise ValueError(f"unknown weight unit {unit!r}")
    # Rounding to 0.1 mg removes float noise such as 1.2345 kg -> 1234.4999999 g.
    return round(value * factor, 4)
