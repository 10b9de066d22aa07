"""Pure frame builders of the simulators, byte for byte."""

from __future__ import annotations

import pytest

from device_sim.diverter import barcode_registers
from device_sim.modbus_server import address_runs
from device_sim.scale import format_weight, toledo_frame
from device_sim.scanner import scan_frame


@pytest.mark.parametrize(
    ("grams", "unit", "decimals", "text"),
    [
        (1234.5, "g", 1, "    1234.5 g"),
        (100.0, "g", 2, "    100.00 g"),
        (-3.2, "g", 1, "      -3.2 g"),
        (-0.01, "g", 1, "       0.0 g"),  # no negative zero
        (1234.5, "kg", 4, "    1.2345 kg"),
        (0.0, "kg", 3, "     0.000 kg"),
    ],
)
def test_mt_sics_weight_field(grams: float, unit: str, decimals: int, text: str) -> None:
    assert format_weight(grams, unit, decimals) == text


def test_toledo_frame_stable_gross_in_grams() -> None:
    frame = toledo_frame(1234.5, 0.0, unit="g", decimals=1)
    # SWA 0x2B: 1 decimal (3) + increment x1 (0x08) + 0x20; SWB 0x20; SWC 0x21 grams.
    body = b"\x02\x2b\x20\x21" + b"012345" + b"000000" + b"\r"
    assert frame == body + bytes([-sum(body) & 0x7F])
    assert sum(frame) & 0x7F == 0


def test_toledo_frame_flags() -> None:
    frame = toledo_frame(-2.5, 500.0, unit="kg", decimals=3, moving=True, checksum=False)
    assert frame[:4] == bytes([0x02, 0x20 | 0x08 | 5, 0x20 | 0x01 | 0x02 | 0x08 | 0x10, 0x20])
    assert frame[4:] == b"000003000500\r"
    over = toledo_frame(2_000_000.0, 0.0, decimals=1, checksum=False)
    assert over[2] & 0x04 and over[4:10] == b"999999"
    with pytest.raises(ValueError, match="0-5 decimals"):
        toledo_frame(1.0, 0.0, decimals=6)


def test_scan_frames() -> None:
    assert scan_frame("ABC") == b"]C1ABC\r\n"
    assert scan_frame("ABC", None, "CR") == b"ABC\r"
    assert scan_frame("01\x1d10", "]d2") == b"]d201\x1d10\r\n"


def test_barcode_registers_high_byte_first_nul_padded() -> None:
    regs = barcode_registers("T000123")
    assert len(regs) == 20
    assert regs[:4] == [0x5430, 0x3030, 0x3132, 0x3300]
    assert regs[4:] == [0] * 16
    assert barcode_registers("X" * 50)[-1] == 0x5858, "longer codes are cut at 40 chars"


def test_address_runs() -> None:
    assert address_runs([0, 100, 101, 102, 200, 201]) == [(0, 1), (100, 3), (200, 2)]
    assert address_runs([]) == []
