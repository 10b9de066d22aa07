"""PTL and diverter register helpers and the latched-counter edge detection."""

from __future__ import annotations

import pytest

from drivers.counters import Change, CounterTracker, counter_delta
from drivers.diverter import codec as div
from drivers.frame import BadFrame
from drivers.modbus_map import ReadPlan, decode, encode, next_heartbeat, plan_read
from drivers.ptl import codec as ptl
from wcs.register_maps import SHIPPED, DiverterMap, PtlMap, Reg

WCS_PTL = SHIPPED["wcs-ptl"]
BLOCK_PTL = SHIPPED["block-ptl"]
WCS_DIV = SHIPPED["wcs-diverter"]
SORTER = SHIPPED["sorter-plc"]
assert isinstance(WCS_PTL, PtlMap) and isinstance(BLOCK_PTL, PtlMap)
assert isinstance(WCS_DIV, DiverterMap) and isinstance(SORTER, DiverterMap)


def wires(m: PtlMap, writes: list[ptl.Write], slot: int) -> list[tuple[str, int, int]]:
    return [(w.reg.table, w.reg.wire(m.numbering, slot), w.value) for w in writes]


def test_light_plan_on_the_default_map() -> None:
    # quantity and colour first, the light last
    assert wires(WCS_PTL, ptl.plan_light(WCS_PTL, 3, 2, "green", blink=False), 3) == [
        ("holding", 102, 2),
        ("holding", 202, 1),
        ("coil", 2, 1),
    ]
    assert ptl.plan_light(WCS_PTL, 1, 9999, "white", blink=True)[1].value == 5 + 256
    assert ptl.decode_color(WCS_PTL, 4 + 256) == ("yellow", True)
    assert ptl.light_off(WCS_PTL) == 0


def test_light_plan_on_a_block_map() -> None:
    # slot 2's block starts at 1011 (numbered from 1): wire 1010; blinking is a light mode
    assert wires(BLOCK_PTL, ptl.plan_light(BLOCK_PTL, 2, 3, "green", blink=True), 2) == [
        ("holding", 1010, 3),  # the register holds 30: scale 10, see modbus_map.encode
        ("holding", 1012, 2),  # green is 2 on this panel
        ("holding", 1011, 2),  # light mode: blink
    ]
    assert ptl.light_off(BLOCK_PTL) == 0
    assert ptl.decode_color(BLOCK_PTL, 4) == ("blue", False)


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
        ptl.plan_light(WCS_PTL, *args)


def test_heartbeats() -> None:
    assert WCS_PTL.heartbeat is not None and SORTER.heartbeat is not None
    assert next_heartbeat(WCS_PTL.heartbeat, 65535) == 0
    assert next_heartbeat(WCS_PTL.heartbeat, 7) == 8
    assert next_heartbeat(SORTER.heartbeat, 0) == 1  # a coil toggles
    assert next_heartbeat(SORTER.heartbeat, 1) == 0


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
    ("text", "registers", "order"),
    [
        ("T000123", [0x5430, 0x3030, 0x3132, 0x3300] + [0] * 16, "high_first"),
        ("AB", [0x4142] + [0] * 19, "high_first"),
        ("X" * 40, [0x5858] * 20, "high_first"),
        ("T000123", [0x3054, 0x3030, 0x3231, 0x0033] + [0] * 12, "low_first"),
    ],
)
def test_barcodes(text: str, registers: list[int], order: str) -> None:
    assert div.decode_barcode(registers, order) == text  # type: ignore[arg-type]


def test_barcode_edge_cases() -> None:
    assert div.decode_barcode([0] * 20) == "NOREAD"
    assert div.decode_barcode([0x2020] + [0] * 19) == "NOREAD"
    with pytest.raises(BadFrame, match="non-printable"):
        div.decode_barcode([0x4101] + [0] * 19)


def test_sequence_ids_skip_zero() -> None:
    assert div.next_seq(0) == 1
    assert div.next_seq(41) == 42
    assert div.next_seq(65535) == 1
    assert div.next_seq(65535, SORTER.seq_limit()) == 65536  # 32 bits on this PLC
    assert div.next_seq(2**32 - 1, SORTER.seq_limit()) == 1


def test_plc_status() -> None:
    assert div.plc_fault(WCS_DIV, 0) is None
    assert div.plc_fault(WCS_DIV, 1) == "conveyor jam"
    assert div.plc_fault(WCS_DIV, 9) == "PLC status 9"
    assert div.plc_fault(SORTER, 5) == "emergency stop"
    assert div.plc_fault(SORTER, 1) == "PLC status 1"


@pytest.mark.parametrize(
    ("value", "reg", "order", "registers"),
    [
        (7, Reg(table="holding", address=0), "high_first", [7]),
        (3, Reg(table="holding", address=0, scale=10), "high_first", [30]),
        (70000, Reg(table="input", address=0, words=2), "high_first", [1, 4464]),
        (70000, Reg(table="input", address=0, words=2), "low_first", [4464, 1]),
        (2**32 - 1, Reg(table="input", address=0, words=2), "low_first", [65535, 65535]),
    ],
)
def test_encode_decode(value: int, reg: Reg, order: str, registers: list[int]) -> None:
    assert encode(value, reg, order) == registers  # type: ignore[arg-type]
    assert decode(registers, reg, order) == value  # type: ignore[arg-type]


def test_encode_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit 16 bits"):
        encode(65536, Reg(table="holding", address=0), "high_first")
    with pytest.raises(ValueError, match="at scale 10"):
        encode(6554, Reg(table="holding", address=0, scale=10), "high_first")
    assert decode([35], Reg(table="holding", address=0, scale=10), "high_first") == 4


def test_read_plans_stay_within_modbus_limits() -> None:
    counter = Reg(table="input", address=100)
    assert plan_read(counter, 0, 8) == [ReadPlan(100, 8)]
    block = Reg(table="holding", address=1005, stride=10, words=2)
    assert plan_read(block, 1, 3) == [ReadPlan(1004, 22)]
    plans = plan_read(block, 1, 64)  # 632 registers: 13 slots a request, none split
    assert [p.count for p in plans] == [122, 122, 122, 122, 112]
    assert plans[0].start == 1004 and plans[-1].start + plans[-1].count == 1004 + 632
    coils = Reg(table="coil", address=0)
    assert plan_read(coils, 0, 100) == [ReadPlan(0, 100)]


def test_a_32_bit_counter_wraps_at_32_bits() -> None:
    tracker = CounterTracker([2**32 - 1], modulo=2**32)
    assert tracker.update([0]) == [Change(0, 1)]
    assert tracker.update([65536]) == []  # 65,536 presses at once: a reset, not presses
