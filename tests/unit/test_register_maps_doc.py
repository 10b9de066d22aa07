"""mqtt_topics.md documents every shipped register map profile, and exactly as shipped:
each field's table, address, words and scale, and each profile's settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wcs.register_maps import SHIPPED, DiverterMap, PtlMap, Reg

DOC = Path(__file__).resolve().parents[2] / "mqtt_topics.md"
FIELD_ROW = re.compile(r"^\| `([a-z_]+)` \| (\w+) \| `([^`]+)` \| (\d) \| (\d+) \|")
SETTING_ROW = re.compile(r"^\| `([a-z_]+)` \| ([^|]+) \|$")


def documented() -> dict[str, tuple[dict[str, tuple[str, ...]], dict[str, str]]]:
    profiles: dict[str, tuple[dict[str, tuple[str, ...]], dict[str, str]]] = {}
    current: str | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### Profile `([^`]+)`", line)
        if heading:
            current = heading.group(1)
            profiles[current] = ({}, {})
            continue
        if line.startswith("## ") or (line.startswith("### ") and not heading):
            current = None
        if current is None:
            continue
        if found := FIELD_ROW.match(line):
            profiles[current][0][found.group(1)] = found.groups()[1:]
        elif found := SETTING_ROW.match(line):
            profiles[current][1][found.group(1)] = found.group(2).strip()
    return profiles


def where(reg: Reg, per_slot: bool, count: int | None = None) -> str:
    first = str(reg.address)
    if reg.words == 2:
        first = f"{reg.address}-{reg.address + 1}"
    elif count is not None:
        first = f"{reg.address}-{reg.address + count - 1}"
    if not per_slot:
        return first
    return f"{first} + {'(n-1)' if reg.stride == 1 else f'{reg.stride}(n-1)'}"


def row(reg: Reg, per_slot: bool, count: int | None = None) -> tuple[str, ...]:
    return (reg.table, where(reg, per_slot, count), str(reg.words), str(reg.scale))


def pairs(mapping: dict[str, int] | dict[int, str | None]) -> str:
    return ", ".join(f"{k} {v if v is not None else 'running'}" for k, v in mapping.items())


def expected(m: PtlMap | DiverterMap) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    fields: dict[str, tuple[str, ...]] = {}
    settings = {"numbering": str(m.numbering), "word_order": m.word_order}
    if isinstance(m, PtlMap):
        for name in ("light", "qty", "color", "confirm_counter", "confirm_qty", "button"):
            reg = getattr(m, name)
            if reg is not None:
                fields[name] = row(reg, True)
        if m.slot_count is not None:
            fields["slot_count"] = row(m.slot_count, False)
        if m.message is not None:
            fields["message"] = row(m.message, False)
        settings |= {
            "max_slots": str(m.max_slots),
            "max_qty": str(m.max_qty),
            "colors": ", ".join(
                f"{k} {v}" for k, v in sorted(m.colors.items(), key=lambda x: x[1])
            ),
            "blink_flag": str(m.blink_flag) if m.blink_flag is not None else "-",
            "light_values": ", ".join(f"{k} {v}" for k, v in m.light_values.items())
            if m.light_values
            else "-",
        }
        if m.message is not None:
            settings["messages"] = ", ".join(f"{k} {v}" for k, v in m.messages.items())
    else:
        for name in ("lane", "request_seq", "arrivals", "seq_echo", "lane_taken", "status"):
            fields[name] = row(getattr(m, name), False)
        for name in ("eye", "in_position", "fault_flag"):
            if getattr(m, name) is not None:
                fields[name] = row(getattr(m, name), False)
        fields["barcode"] = row(m.barcode, False, m.barcode_registers)
        settings |= {"byte_order": m.byte_order, "status_codes": pairs(m.status_codes)}
    if m.heartbeat is not None:
        fields["heartbeat"] = row(m.heartbeat.at, False)
    return fields, settings


def test_every_shipped_profile_is_documented() -> None:
    assert set(documented()) == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_profile_matches_the_doc(name: str) -> None:
    fields, settings = documented()[name]
    want_fields, want_settings = expected(SHIPPED[name])
    assert fields == want_fields, f"{name}: doc {fields} != shipped {want_fields}"
    heartbeat = settings.pop("heartbeat")
    assert settings == want_settings
    beat = SHIPPED[name].heartbeat
    if beat is None:
        assert heartbeat == "-"
    else:
        assert heartbeat.startswith(f"every {beat.period_s:g} s")
        assert f"after {beat.timeout_s:g} s" in heartbeat
