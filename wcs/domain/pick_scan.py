"""What an item scan at a pick station says, and whether that unit may be picked.

Pure rules, no I/O; the floor's pick handling applies them to each item scan:

1. :func:`read_item` - the scanned code through the GS1 module: a GS1 code gives its
   GTIN, lot, expiry (or best-before) and serial; a code that claims to be GS1 and is
   wrong is refused with the reason; anything else (a SKU code, an in-house label)
   stays a plain code.
2. :func:`sku_of` - the SKU the unit is, by its GTIN (a SKU carries several: each
   pack size or relabelled supplier), else by the code as scanned. The catalogue's
   GTINs are GTIN-14; a barcode entered as an EAN-13 or UPC-A matches too.
3. :func:`shelf_life_refusal` - first-expired-first-out at the shelf: a unit past its
   date, or with fewer days left than the SKU needs on arrival at the customer, is
   refused (the picker takes another unit; the shelf needs checking).

The lot, the dates and the serial of an accepted unit are recorded on the pick.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass

from wcs.domain import gs1


@dataclass(frozen=True, slots=True)
class ItemCode:
    """An item code as scanned, with what its GS1 data says (all None for plain codes)."""

    code: str
    gtin: str | None = None  # GTIN-14
    lot: str | None = None
    use_by: dt.date | None = None  # expiry (AI 17), else best-before (AI 15)
    serial: str | None = None

    @property
    def traced(self) -> bool:
        """The unit carries data worth recording on its pick (lot, date or serial)."""
        return self.lot is not None or self.use_by is not None or self.serial is not None

    @property
    def lookup_key(self) -> str:
        """The key a SKU is found (and cached) by: the GTIN, else the code itself.

        Units of one GTIN with different lots and serials share it."""
        return self.gtin or self.code


@dataclass(frozen=True, slots=True)
class Refused:
    """The scan cannot count as a unit: why, in words for the picker's supervisor."""

    reason: str


# Parsing a GS1 label took a third of a scan's decision; pickers scan the same few
# labels over and over, and the answer is a frozen value of its arguments.
@functools.lru_cache(maxsize=4096)
def read_item(code: str, symbology: str | None = None) -> ItemCode | Refused:
    found = gs1.read(code, symbology)
    if isinstance(found, gs1.Gs1Refusal):
        return Refused(f"label not readable: {found.reason}")
    if found is None:
        return ItemCode(code)
    if found.gtin is None and found.sscc is not None:
        return Refused(f"that is a shipping label (SSCC {found.sscc}), not an item")
    return ItemCode(code, found.gtin, found.lot, found.use_by, found.serial)


def gtin_forms(gtin14: str) -> tuple[str, ...]:
    """The ways a catalogue may have written a GTIN: as GTIN-14, EAN-13, UPC-A, EAN-8."""
    forms = [gtin14]
    for length in (13, 12, 8):
        head, tail = gtin14[: 14 - length], gtin14[14 - length :]
        if head.strip("0") == "":
            forms.append(tail)
    return tuple(forms)


def sku_of(item: ItemCode, codes: Mapping[str, str]) -> str | None:
    """The SKU of a scanned unit in ``codes`` (GTINs and item codes -> SKU)."""
    if item.gtin is not None:
        for form in gtin_forms(item.gtin):
            sku = codes.get(form)
            if sku is not None:
                return sku
    return codes.get(item.code)


def shelf_life_refusal(use_by: dt.date | None, today: dt.date, min_days: int) -> str | None:
    """Why a unit dated ``use_by`` may not be picked ``today``, or None.

    ``min_days``: the days of life a unit of this SKU must have left when picked."""
    if use_by is None:
        return None
    if use_by < today:
        return f"expired on {use_by.isoformat()}: take a unit with a later date"
    left = (use_by - today).days
    if left < min_days:
        return (
            f"expires {use_by.isoformat()}, {left} day{'s' if left != 1 else ''} left, "
            f"{min_days} needed: take a unit with a later date"
        )
    return None
