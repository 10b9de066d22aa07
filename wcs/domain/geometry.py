"""Pick-zone geometry: one block of parallel aisles and walking distances in it.

Conventions (design §8), every length in metres:

- Aisles are numbered 1..A from left to right, ``aisle_spacing_m`` (3.0) apart centre
  to centre. Bays are numbered 1..B along each aisle, ``bay_spacing_m`` (1.0) apart.
  Both sides of an aisle are picked from its centre line; the level does not add
  distance.
- A position on an aisle centre line is ``Position(aisle, y)`` where ``y`` is measured
  from the front cross-aisle: the front cross-aisle is at ``y = 0``, bay 1 at
  ``y = cross_aisle_gap_m`` (1.0), bay B at ``gap + (B - 1) * bay_spacing`` and the back
  cross-aisle at ``aisle_length_m = 2 * gap + (B - 1) * bay_spacing``.
- The depot, where every route starts and ends, is ``Position(1, 0)``: on the front
  cross-aisle in front of aisle 1.
- Walking is along aisle centre lines and the two cross-aisles only. Between two
  positions in one aisle the walk is straight; between aisles it leaves by the front
  or the back cross-aisle, whichever is shorter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from wcs.errors import ValidationFailed


@dataclass(frozen=True, order=True, slots=True)
class PickPoint:
    """Where a picker stands to reach a location: the aisle and the bay, not the level."""

    aisle: int
    bay: int


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A point on an aisle centre line, ``y`` metres from the front cross-aisle."""

    aisle: int
    y: float


@dataclass(frozen=True, slots=True)
class Location:
    """A storage location as ``PUT /locations/{code}`` describes it."""

    code: str
    aisle: int
    bay: int
    level: int = 1
    zone: str = "pick"

    @property
    def point(self) -> PickPoint:
        return PickPoint(self.aisle, self.bay)


@dataclass(frozen=True, slots=True)
class Layout:
    """A single-block pick zone; the defaults are the spacings of design §8."""

    aisles: int
    bays: int
    aisle_spacing_m: float = 3.0
    bay_spacing_m: float = 1.0
    cross_aisle_gap_m: float = 1.0

    def __post_init__(self) -> None:
        if self.aisles < 1 or self.bays < 1:
            raise ValidationFailed(
                f"a layout needs at least one aisle and one bay, got {self.aisles}x{self.bays}",
                aisles=self.aisles,
                bays=self.bays,
            )
        if self.aisle_spacing_m <= 0 or self.bay_spacing_m <= 0 or self.cross_aisle_gap_m < 0:
            raise ValidationFailed(
                "aisle and bay spacings must be positive and the cross-aisle gap not negative"
            )

    @property
    def aisle_length_m(self) -> float:
        """Front cross-aisle to back cross-aisle along one aisle."""
        return 2 * self.cross_aisle_gap_m + (self.bays - 1) * self.bay_spacing_m

    @property
    def depot(self) -> Position:
        return Position(1, 0.0)

    def check(self, point: PickPoint) -> None:
        """Refuse a point outside the block: a location table pointing there is wrong."""
        if not (1 <= point.aisle <= self.aisles and 1 <= point.bay <= self.bays):
            raise ValidationFailed(
                f"aisle {point.aisle} bay {point.bay} is outside the "
                f"{self.aisles}-aisle x {self.bays}-bay block",
                aisle=point.aisle,
                bay=point.bay,
            )

    def y(self, bay: int) -> float:
        return self.cross_aisle_gap_m + (bay - 1) * self.bay_spacing_m

    def position(self, point: PickPoint) -> Position:
        self.check(point)
        return Position(point.aisle, self.y(point.bay))

    def walk(self, a: Position, b: Position) -> float:
        """Shortest walking distance between two positions on aisle centre lines."""
        if a.aisle == b.aisle:
            return abs(a.y - b.y)
        across = abs(a.aisle - b.aisle) * self.aisle_spacing_m
        via_front = a.y + b.y
        via_back = 2 * self.aisle_length_m - a.y - b.y
        return across + min(via_front, via_back)

    def distance(self, a: PickPoint, b: PickPoint) -> float:
        """Shortest walking distance between two pick points."""
        return self.walk(self.position(a), self.position(b))

    def path(self, a: Position, b: Position) -> list[Position]:
        """The corners of a shortest walk from ``a`` to ``b``, both ends included.

        Consecutive positions share an aisle or lie on one cross-aisle, so each leg is
        straight. Ties between the front and back cross-aisles go to the front, where
        the depot is.
        """
        if a.aisle == b.aisle:
            corners = [a, b]
        else:
            length = self.aisle_length_m
            cross = 0.0 if a.y + b.y <= 2 * length - a.y - b.y else length
            corners = [a, Position(a.aisle, cross), Position(b.aisle, cross), b]
        out: list[Position] = []
        for corner in corners:
            if not out or out[-1] != corner:
                out.append(corner)
        return out

    def leg(self, a: Position, b: Position) -> float:
        """Length of one straight leg of a walk; refuses a leg that cuts through racks."""
        if a.aisle == b.aisle:
            return abs(a.y - b.y)
        if a.y == b.y and a.y in (0.0, self.aisle_length_m):
            return abs(a.aisle - b.aisle) * self.aisle_spacing_m
        raise ValidationFailed(f"{a} -> {b} is not along an aisle or a cross-aisle")

    def polyline_length(self, waypoints: Sequence[Position]) -> float:
        return sum(self.leg(a, b) for a, b in pairwise(waypoints))


def layouts_for(
    locations: Iterable[Location],
    *,
    aisle_spacing_m: float = 3.0,
    bay_spacing_m: float = 1.0,
    cross_aisle_gap_m: float = 1.0,
) -> dict[str, Layout]:
    """One layout per zone, just large enough for its known locations.

    For sites that describe a zone only through its location table: the back
    cross-aisle is taken to run behind the highest bay number in use. A zone whose
    racks go further than its stocked bays should be given an explicit ``Layout``.
    """
    extent: dict[str, tuple[int, int]] = {}
    for location in locations:
        aisles, bays = extent.get(location.zone, (1, 1))
        extent[location.zone] = (max(aisles, location.aisle), max(bays, location.bay))
    return {
        zone: Layout(aisles, bays, aisle_spacing_m, bay_spacing_m, cross_aisle_gap_m)
        for zone, (aisles, bays) in sorted(extent.items())
    }
