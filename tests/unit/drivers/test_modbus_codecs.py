"""PTL and diverter register helpers and the latched-counter edge detection."""

from __future__ import annotations

import pytest

from drivers.counters import Change, CounterTracker, counter_delta
from drivers.diverter import codec as div
from drivers.frame import BadFrame
from drivers.ptl import codec as ptl


def test_light_plan_uses_zero_based_offsets() -> None:
    plan = ptl.plan_light(3, 2, "green", blink=False)
    assert plan == ptl.LightPlan(qty_address=102, qty=2, color_address=202, color=1, coil=2)
    assert ptl.plan_light(1, 9999, "white", blink=True).color == 5 + 256
    assert ptl.decode_color(4 + 256) == ("yellow", True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1, "green", False), "slot 0 is outside"),
        ((101, 1, "green", False), "slot 101 is outside"),
        ((1, 10_000, "green", False), "quantity 10000"),
        ((1, 1, "pink", False), "colour 'pink'"),
    ],
)
def test_light_plan_refuses(args: tuple[int, int, str, bool], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ptl.plan_light(*args)


def test_heartbeat_wraps() -> None:
    assert ptl.next_heartbeat(65535) == 0


@pytest.mark.parametrize(
    ("old", "new", "delta"), [(0, 0, 0), (5, 7, 2), (65535, 0, 1), (65534, 2, 4), (7, 5, 65534)]
)
def test_counter_delta(old: int, new: int, delta: int) -> None:
    assert counter_delta(old, new) == delta


def test_tracker_reports_increments_and_wraps() -> None:
    tracker = CounterTracker([10, 65535, 0])
    assert tracker.update([10, 65535, 0]) == []
    assert tracker.update([11, 0, 3]) == [Change(0, 1), Change(1, 1), Change(2, 3)]
    assert tracker.update([11, 0, 3]) == []
    assert tracker.values == (11, 0, 3)


def test_tracker_takes_a_big_jump_back_as_a_restart() -> None:
    tracker = CounterTracker([500])
    assert tracker.update([0]) == []  # device restarted at 0: no 65,036 phantom presses
    assert tracker.resets == 1
    assert tracker.update([1]) == [Change(0, 1)]


def test_tracker_length_mismatch() -> None:
    with pytest.raises(ValueError, match="expected 2 counters"):
        CounterTracker([0, 0]).update([1])


@pytest.mark.parametrize(
    ("text", "registers"),
    [
        ("T000123", [0x5430, 0x3030, 0x3132, 0x3300] + [0] * 16),
        ("AB", [0x4142] + [0] * 19),
        ("X" * 40, [0x5858] * 20),
    ],
)
def test_barcode_round_trip(text: str, registers: list[int]) -> None:
    assert div.encode_barcode(text) == registers
    assert div.decode_barcode(registers) == text


def test_barcode_edge_cases() -> None:
    assert div.decode_barcode([0] * 20) == "NOREAD"
    assert div.decode_barcode([0x2020] + [0] * 19) == "NOREAD"
    with pytest.raises(BadFrame, match="non-printable"):
        div.decode_barcode([0x4101] + [0] * 19)
    with pytest.raises(ValueError, match="longer than 40"):
        div.encode_barcode("X" * 41)


def test_sequence_ids_skip_zero() -> None:
    assert div.next_seq(0) == 1
    assert div.next_seq(41) == 42
    assert div.next_seq(65535) == 1


def test_plc_status() -> None:
    assert div.plc_fault(0) is None
    assert div.plc_fault(1) == "conveyor jam"
    assert div.plc_fault(9) == "PLC status 9"
