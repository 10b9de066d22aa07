"""Packing decisions: carton choice, expected weight, the scale check and the label.

Items are packed as a simple volumetric fit with a fill factor: a carton fits when
every item fits along its sorted dimensions and the summed volume stays under the
fill factor times the carton volume. Good enough for parcel e-commerce; a 3D
bin-packer would be overkill at a pack bench where people place the items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wcs.domain.labels import logistic_label_zpl
from wcs.errors import ValidationFailed

FILL_FACTOR = 0.75


@dataclass(frozen=True, slots=True)
class Carton:
    code: str
    inner_mm: tuple[int, int, int]
    tare_g: float
    max_load_g: float
    cost: float = 0.0

    @property
    def volume(self) -> int:
        a, b, c = self.inner_mm
        return a * b * c


@dataclass(frozen=True, slots=True)
class Item:
    sku: str
    qty: int
    weight_g: float
    dims_mm: tuple[int, int, int]


DEFAULT_CARTONS: tuple[Carton, ...] = (
    Carton("S", (200, 150, 100), 90.0, 5_000, 0.30),
    Carton("M", (300, 250, 150), 160.0, 10_000, 0.45),
    Carton("L", (400, 300, 250), 260.0, 20_000, 0.70),
    Carton("XL", (600, 400, 400), 450.0, 30_000, 1.10),
)


def items_weight(items: Sequence[Item]) -> float:
    return sum(i.weight_g * i.qty for i in items)


def choose_carton(items: Sequence[Item], cartons: Sequence[Carton] = DEFAULT_CARTONS) -> Carton:
    """The cheapest (then smallest) carton the items fit in."""
    if not items:
        raise ValidationFailed("nothing to pack")
    weight = items_weight(items)
    volume = sum(i.qty * i.dims_mm[0] * i.dims_mm[1] * i.dims_mm[2] for i in items)
    for carton in sorted(cartons, key=lambda c: (c.cost, c.volume)):
        inner = sorted(carton.inner_mm)
        fits_each = all(
            all(d <= room for d, room in zip(sorted(i.dims_mm), inner, strict=True)) for i in items
        )
        if fits_each and volume <= FILL_FACTOR * carton.volume and weight <= carton.max_load_g:
            return carton
    raise ValidationFailed(
        f"no carton fits {sum(i.qty for i in items)} items of {weight:.0f} g; split the order"
    )


@dataclass(frozen=True, slots=True)
class WeightCheck:
    expected_g: float
    measured_g: float
    tolerance_g: float

    @property
    def deviation_g(self) -> float:
        return self.measured_g - self.expected_g

    @property
    def ok(self) -> bool:
        return abs(self.deviation_g) <= self.tolerance_g


def check_weight(
    expected_g: float, measured_g: float, *, tolerance_pct: float, tolerance_min_g: float
) -> WeightCheck:
    """Within ``tolerance_pct`` of expected, but never tighter than ``tolerance_min_g``
    (light parcels would otherwise fail on the scale's own resolution)."""
    tolerance = max(expected_g * tolerance_pct / 100.0, tolerance_min_g)
    return WeightCheck(expected_g, measured_g, tolerance)


def shipping_label_zpl(
    *,
    sscc18: str,
    order_id: str,
    ship_to: Sequence[str],
    carrier: str,
    weight_g: float,
    carton: str,
    dpi: int = 203,
    ship_from: Sequence[str] = (),
    company_prefix_length: int = 7,
) -> str:
    """The parcel's GS1 logistic label (see :mod:`wcs.domain.labels`) for a ``dpi``
    printer: ship-from and ship-to blocks, the SSCC as GS1-128 (``^BC`` mode D, the
    printer adds FNC1 and the check character) at the GS1 minimum sizes, and readable."""
    return logistic_label_zpl(
        sscc18=sscc18,
        ship_from=ship_from,
        ship_to=ship_to,
        order_id=order_id,
        carrier=carrier,
        weight_g=weight_g,
        carton=carton,
        dpi=dpi,
        company_prefix_length=company_prefix_length,
    )
