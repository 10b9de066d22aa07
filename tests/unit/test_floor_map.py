"""The floor map is drawn from the floor file alone: every slot, device, station and
decision point has its element, and totes land where their state puts them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from wcs.floor import PtlDevice, load_floor
from wcs.floor_map import floor_map_svg, group_by_place

FLOOR = load_floor(Path(__file__).resolve().parents[2] / "floors" / "sample.yaml")


def test_every_part_of_the_floor_is_drawn() -> None:
    svg = floor_map_svg(FLOOR)
    ET.fromstring(svg)  # well-formed
    ids = set(re.findall(r'id="([^"]+)"', svg))
    for device in FLOOR.devices:
        assert f"map-dev-{device.id}" in ids, device.id
        if isinstance(device, PtlDevice):
            for slot in device.slots:
                assert f"map-slot-{device.id}-{slot}" in ids
    for station in FLOOR.stations:
        assert f"map-station-{station.id}" in ids
    assert {"map-sink-outbound", "map-sink-exception", "map-totes-point-D1"} <= ids

    # Slots sit in their aisles: aisle 1's slots left of aisle 2's.
    def x_of(slot_id: str) -> float:
        match = re.search(rf'id="{slot_id}">.*?<rect x="([0-9.]+)"', svg, re.S)
        assert match is not None
        return float(match.group(1))

    assert x_of("map-slot-ptl-a-1") < x_of("map-slot-ptl-a-5") < x_of("map-slot-ptl-b-1")


def test_totes_are_placed_by_their_state() -> None:
    places = group_by_place(
        FLOOR,
        [
            ("T001", "picking", "PK1"),
            ("T002", "to_qc", None),
            ("T003", "packing", "P2"),
            ("T004", "exception", None),
            ("T005", "free", None),
        ],
    )
    assert places == {"PK1": ["T001"], "QC1": ["T002"], "P2": ["T003"], "exception": ["T004"]}
