"""Register map profiles: the shipped ones hold, bad ones are refused at start with the
profile and the field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from wcs.errors import ConfigError
from wcs.floor import load_floor
from wcs.register_maps import SHIPPED, DiverterMap, PtlMap

PANEL = {
    "id": "ptl-x",
    "kind": "ptl",
    "zone": "pick",
    "link": {"type": "modbus", "port": 1502},
    "slots": {1: "A-01-01-1", 2: "A-01-02-1"},
}
GOOD_MAP: dict[str, Any] = {
    "kind": "ptl",
    "numbering": 1,
    "light": {"table": "coil", "address": 1},
    "qty": {"table": "holding", "address": 101},
    "color": {"table": "holding", "address": 201},
    "confirm_counter": {"table": "input", "address": 101},
    "confirm_qty": {"table": "input", "address": 201},
}


def floor_file(tmp_path: Path, maps: dict[str, Any], device: dict[str, Any]) -> Path:
    path = tmp_path / "floor.yaml"
    path.write_text(yaml.safe_dump({"register_maps": maps, "devices": [device]}))
    return path


def test_shipped_profiles_are_valid_and_distinct() -> None:
    assert {n: m.kind for n, m in SHIPPED.items()} == {
        "wcs-ptl": "ptl",
        "wcs-diverter": "diverter",
        "block-ptl": "ptl",
        "sorter-plc": "diverter",
    }
    for m in SHIPPED.values():
        assert type(m).model_validate(m.model_dump()) == m


def test_a_floor_defines_and_uses_its_own_map(tmp_path: Path) -> None:
    path = floor_file(tmp_path, {"my-panel": GOOD_MAP}, {**PANEL, "register_map": "my-panel"})
    floor = load_floor(path)
    panel = floor.device("ptl-x")
    m = floor.register_map(panel)  # type: ignore[arg-type]
    assert isinstance(m, PtlMap) and m.qty.wire(m.numbering, 2) == 101


@pytest.mark.parametrize(
    ("change", "device_map", "message"),
    [
        # the field and what is wrong with it, named
        ({"light": {"table": "input", "address": 1}}, "bad", "light.table: the host writes it"),
        (
            {"qty": {"table": "holding", "address": 201}},
            "bad",
            "color and qty share holding 200",
        ),
        (
            {"confirm_counter": {"table": "coil", "address": 50, "words": 2}},
            "bad",
            "confirm_counter: Value error, a coil holds one bit",
        ),
        ({"qty": {"table": "holding", "address": 0}}, "bad", "qty.address: 0 is below"),
        (
            {"qty": {"table": "holding", "address": 65530}},
            "bad",
            "qty.address: its registers run past 65535",
        ),
        ({"light": {"table": "holding", "address": 1}}, "bad", "light_values: a light in a"),
        ({"qty": {"table": "holding", "address": "x"}}, "bad", "register_maps.bad.ptl.qty.address"),
        ({"colour": {"table": "holding", "address": 9}}, "bad", "colour: Extra inputs"),
    ],
)
def test_bad_profiles_are_refused_with_the_field_named(
    tmp_path: Path, change: dict[str, Any], device_map: str, message: str
) -> None:
    path = floor_file(tmp_path, {"bad": {**GOOD_MAP, **change}}, PANEL)
    with pytest.raises(ConfigError) as info:
        load_floor(path)
    assert message in info.value.message
    assert "register_maps.bad" in info.value.message


def test_a_device_naming_an_unknown_or_wrong_kind_of_map(tmp_path: Path) -> None:
    path = floor_file(tmp_path, {}, {**PANEL, "register_map": "nope"})
    with pytest.raises(ConfigError, match=r"register_map 'nope' is not defined \(known: "):
        load_floor(path)
    path = floor_file(tmp_path, {}, {**PANEL, "register_map": "sorter-plc"})
    with pytest.raises(ConfigError, match="is for a diverter, not a ptl"):
        load_floor(path)
    path = floor_file(tmp_path, {"wcs-ptl": GOOD_MAP}, PANEL)
    with pytest.raises(ConfigError, match=r"register_maps\.wcs-ptl: a shipped profile"):
        load_floor(path)
    many = {**PANEL, "register_map": "block-ptl", "slots": {65: "A-09-09-1"}}
    with pytest.raises(ConfigError, match=r"slot 65 is past register_map 'block-ptl'"):
        load_floor(floor_file(tmp_path, {}, many))


def test_diverter_maps() -> None:
    sorter = SHIPPED["sorter-plc"]
    assert isinstance(sorter, DiverterMap)
    assert sorter.seq_limit() == 2**32 - 1
    with pytest.raises(ValueError, match="status_codes: one code must mean running"):
        DiverterMap.model_validate({**sorter.model_dump(), "status_codes": {1: "jam"}})
    with pytest.raises(ValueError, match="barcode\\[0\\] and arrivals share input 0"):
        DiverterMap.model_validate(
            {**sorter.model_dump(), "barcode": {"table": "input", "address": 1}}
        )
