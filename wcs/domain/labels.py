"""The GS1 logistic label, laid out for the printer's resolution. Pure: text in, ZPL out.

A GS1 logistic label (GS1 Logistic Label Guideline) carries, top to bottom: the
shipper's block (ship from), the customer's block (ship to, carrier), and the
logistics block with the SSCC as a GS1-128 bar code and its human-readable form.
What makes a scanner at the customer's dock read it first time is the bar code's
size, so it is computed for the printer's resolution rather than fixed in dots:

- module width X >= 0.495 mm (and at most 0.940 mm): the smallest whole number of
  printer dots that reaches it - 4 dots at 203 dpi (0.500 mm), 6 at 300 dpi
  (0.508 mm), 12 at 600 dpi;
- bar height >= 31.75 mm: 32 mm in whole dots;
- quiet zones >= 10 X on both sides: the symbol is centred on a 4 x 6 inch label;
- the SSCC in human-readable form under the bar code, grouped as the guideline
  shows it: ``(00) 1 0614141 123456789 7`` (extension, company prefix, serial
  reference, check digit).

Code 128 in ZPL's mode D (``^BC...,D``) encodes ``(00)`` + 18 digits as start C,
FNC1, ten digit pairs, the check character and stop: 156 modules, so the symbol is
156 X wide (78.1 mm at 203 dpi, 79.2 mm at 300 dpi).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MM_PER_INCH = 25.4
MIN_MODULE_MM = 0.495
MAX_MODULE_MM = 0.940
MIN_BAR_HEIGHT_MM = 31.75
BAR_HEIGHT_MM = 32.0
QUIET_MODULES = 10
# Start C, FNC1, ten pairs of digits ((00) + 18), check character, stop (13 modules).
SSCC_SYMBOL_MODULES = 11 + 11 + 10 * 11 + 11 + 13
LABEL_MM = (101.6, 152.4)  # 4 x 6 inches
DPI = (203, 300, 600)


@dataclass(frozen=True, slots=True)
class Geometry:
    """The label in printer dots."""

    dpi: int
    module: int  # dots per bar code module (X)
    bar_height: int  # dots
    width: int  # the label's width and length in dots
    length: int

    def mm(self, dots: float) -> float:
        return dots * MM_PER_INCH / self.dpi

    def dots(self, mm: float) -> int:
        return round(mm * self.dpi / MM_PER_INCH)

    @property
    def symbol_width(self) -> int:
        return SSCC_SYMBOL_MODULES * self.module


def geometry(dpi: int) -> Geometry:
    if dpi not in DPI:
        raise ValueError(f"printer resolution {dpi} dpi is not one of {DPI}")
    dot = MM_PER_INCH / dpi
    module = math.ceil(MIN_MODULE_MM / dot - 1e-9)
    if module * dot > MAX_MODULE_MM:  # pragma: no cover - holds for every DPI above
        raise ValueError(f"no module width between the GS1 limits at {dpi} dpi")
    return Geometry(
        dpi=dpi,
        module=module,
        bar_height=math.ceil(BAR_HEIGHT_MM / dot),
        width=round(LABEL_MM[0] / dot),
        length=round(LABEL_MM[1] / dot),
    )


def sscc_hri(sscc18: str, company_prefix_length: int = 7) -> str:
    """``(00) 1 0614141 123456789 7``: extension, company prefix, serial, check digit."""
    if len(sscc18) != 18 or not sscc18.isdigit():
        raise ValueError(f"an SSCC has 18 digits, not {sscc18!r}")
    if not 6 <= company_prefix_length <= 12:
        raise ValueError("a GS1 company prefix has 6-12 digits")
    prefix_end = 1 + company_prefix_length
    return f"(00) {sscc18[0]} {sscc18[1:prefix_end]} {sscc18[prefix_end:17]} {sscc18[17]}"


def _clean(text: str, limit: int = 48) -> str:
    # ^ and ~ start ZPL commands; they must never reach the printer from data.
    return text.replace("^", " ").replace("~", " ").strip()[:limit]


def logistic_label_zpl(
    *,
    sscc18: str,
    ship_from: Sequence[str],
    ship_to: Sequence[str],
    order_id: str,
    carrier: str,
    weight_g: float,
    carton: str,
    dpi: int = 203,
    company_prefix_length: int = 7,
) -> str:
    """A 4 x 6 inch GS1 logistic label for one parcel, as ZPL II for a ``dpi`` printer."""
    g = geometry(dpi)
    d = g.dots
    margin = d(5)
    small, body, large = d(3), d(4.5), d(6)  # character heights: 3, 4.5 and 6 mm
    parts = [f"^XA^CI28^PW{g.width}^LL{g.length}^LH0,0"]

    def text(x: int, y: int, height: int, value: str) -> None:
        parts.append(f"^FO{x},{y}^A0N,{height},{height}^FD{_clean(value)}^FS")

    def rule(y: int) -> None:
        parts.append(
            f"^FO{margin},{y}^GB{g.width - 2 * margin},{max(d(0.5), 2)},{max(d(0.5), 2)}^FS"
        )

    # Shipper's block.
    text(margin, d(4), small, "SHIP FROM")
    for n, line in enumerate(list(ship_from)[:4]):
        text(margin, d(8) + n * d(4), small, line)
    rule(d(26))
    # Customer's block.
    text(margin, d(29), small, "SHIP TO")
    for n, line in enumerate(list(ship_to)[:5]):
        text(margin, d(34) + n * d(6.5), large if n == 0 else body, line)
    rule(d(68))
    text(margin, d(71), body, f"CARRIER {carrier}")
    text(margin, d(78), small, f"ORDER {order_id}   CARTON {carton}   {weight_g / 1000:.2f} KG")
    rule(d(85))
    # Logistics block: the SSCC, readable and as GS1-128.
    hri = sscc_hri(sscc18, company_prefix_length)
    text(margin, d(88), small, "SSCC")
    text(margin, d(92), large, hri)
    x = (g.width - g.symbol_width) // 2
    bar_y = d(102)
    parts.append(
        f"^BY{g.module},3,{g.bar_height}^FO{x},{bar_y}^BCN,{g.bar_height},N,N,N,D^FD(00){sscc18}^FS"
    )
    hri_y = bar_y + g.bar_height + d(2)
    hri_width = round(len(hri) * body * 0.55)
    text(max((g.width - hri_width) // 2, margin), hri_y, body, hri)
    parts.append("^XZ")
    return "".join(parts)
