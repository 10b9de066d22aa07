"""Walking distances in the single-block layout, against numbers worked out by hand.

Default layout (design §8), 10 aisles x 30 bays: aisle x = 3 (aisle - 1), bay y = bay
(front cross-aisle at y = 0, bay 1 at 1.0, bay 30 at 30.0), back cross-aisle at 31.
"""

from __future__ import annotations

import math

import pytest

from wcs.domain.geometry import Layout, Location, PickPoint, Position, layouts_for
from wcs.errors import ValidationFailed

BLOCK = Layout(aisles=10, bays=30)
# 4 aisles x 10 bays, aisle spacing 2.5, bay spacing 1.2, cross-aisles 2.0 beyond the
# end bays: aisle length 2 * 2.0 + 9 * 1.2 = 14.8, bay b at 2.0 + 1.2 (b - 1).
ODD = Layout(aisles=4, bays=10, aisle_spacing_m=2.5, bay_spacing_m=1.2, cross_aisle_gap_m=2.0)


def test_default_dimensions() -> None:
    assert BLOCK.aisle_length_m == 31.0
    assert BLOCK.y(1) == 1.0
    assert BLOCK.y(30) == 30.0
    assert BLOCK.depot == Position(1, 0.0)
    assert math.isclose(ODD.aisle_length_m, 14.8)


@pytest.mark.parametrize(
    ("a", "b", "metres"),
    [
        # same aisle: straight along it
        ((1, 1), (1, 5), 4.0),
        ((4, 30), (4, 1), 29.0),
        ((7, 12), (7, 12), 0.0),
        # neighbours near the front: 3 across + (5 + 5) via the front
        ((1, 5), (2, 5), 13.0),
        # near the back: 3 across + (1 + 1) via the back beats 3 + 60 via the front
        ((5, 30), (6, 30), 5.0),
        # 6 across; front 28 + 25 = 53, back 3 + 6 = 9
        ((1, 28), (3, 25), 15.0),
        # 6 across; front 15 + 16 = 31, back 16 + 15 = 31: a tie
        ((2, 15), (4, 16), 37.0),
        # symmetric
        ((3, 25), (1, 28), 15.0),
        # far corners: 27 across; front 1 + 30 = 31, back 30 + 1 = 31
        ((1, 1), (10, 30), 58.0),
    ],
)
def test_distance_default_block(a: tuple[int, int], b: tuple[int, int], metres: float) -> None:
    assert BLOCK.distance(PickPoint(*a), PickPoint(*b)) == metres


@pytest.mark.parametrize(
    ("point", "metres"),
    [
        ((1, 1), 1.0),  # straight up aisle 1
        ((3, 10), 16.0),  # 6 across the front + 10 up
        ((10, 30), 57.0),  # 27 across the front + 30 up (the back way is 27 + 31 + 1)
    ],
)
def test_distance_from_depot(point: tuple[int, int], metres: float) -> None:
    assert BLOCK.walk(BLOCK.depot, BLOCK.position(PickPoint(*point))) == metres


@pytest.mark.parametrize(
    ("a", "b", "metres"),
    [
        # y 2.0 and 12.8; 5.0 across; front 14.8, back 29.6 - 14.8 = 14.8
        ((1, 1), (3, 10), 19.8),
        # y 11.6 and 12.8; 2.5 across; front 24.4, back 29.6 - 24.4 = 5.2
        ((2, 9), (3, 10), 7.7),
        # same aisle: (7 - 2) * 1.2
        ((4, 2), (4, 7), 6.0),
    ],
)
def test_distance_configured_spacing(a: tuple[int, int], b: tuple[int, int], metres: float) -> None:
    assert math.isclose(ODD.distance(PickPoint(*a), PickPoint(*b)), metres)


def test_path_goes_round_the_shorter_end() -> None:
    start, end = Position(1, 28.0), Position(3, 25.0)
    assert BLOCK.path(start, end) == [start, Position(1, 31.0), Position(3, 31.0), end]
    assert BLOCK.polyline_length(BLOCK.path(start, end)) == BLOCK.walk(start, end)
    low = Position(2, 4.0)
    assert BLOCK.path(BLOCK.depot, low) == [BLOCK.depot, Position(2, 0.0), low]


def test_leg_must_follow_aisles_or_cross_aisles() -> None:
    assert BLOCK.leg(Position(2, 0.0), Position(5, 0.0)) == 9.0
    with pytest.raises(ValidationFailed, match="not along"):
        BLOCK.leg(Position(2, 5.0), Position(3, 5.0))


@pytest.mark.parametrize("point", [(0, 1), (11, 1), (1, 0), (1, 31)])
def test_points_outside_the_block_are_refused(point: tuple[int, int]) -> None:
    with pytest.raises(ValidationFailed, match="outside"):
        BLOCK.position(PickPoint(*point))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"aisles": 0, "bays": 5},
        {"aisles": 3, "bays": 0},
        {"aisles": 3, "bays": 5, "aisle_spacing_m": 0.0},
        {"aisles": 3, "bays": 5, "cross_aisle_gap_m": -1.0},
    ],
)
def test_bad_layouts_are_refused(kwargs: dict[str, int | float]) -> None:
    with pytest.raises(ValidationFailed):
        Layout(**kwargs)  # type: ignore[arg-type]


def test_layouts_for_a_location_table() -> None:
    table = [
        Location("A-03-07-1", 3, 7, 1, "A"),
        Location("A-01-22-4", 1, 22, 4, "A"),
        Location("B-02-05-1", 2, 5, 1, "B"),
    ]
    assert layouts_for(table) == {"A": Layout(3, 22), "B": Layout(2, 5)}
    assert layouts_for(table, aisle_spacing_m=2.0)["B"] == Layout(2, 5, aisle_spacing_m=2.0)
