"""Pack station rules (``wcs.domain.floor.pack``): carton, weight, SSCC label, printers,
confirmation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.unit.domain.floor.legal import check_pack, check_tote_moves, of, payload
from wcs.domain.floor.effects import (
    Alert,
    Command,
    Effect,
    MoveTotes,
    NextSscc,
    OrderMove,
    Record,
    SaveCheck,
    SavePackage,
    SaveTote,
    StationDown,
)
from wcs.domain.floor.machines import PackageState, ToteState
from wcs.domain.floor.pack import (
    Destination,
    DeviceState,
    LabelScan,
    PackEvent,
    PackStation,
    PrintAck,
    SsccDrawn,
    ToteAtPack,
    UnknownScan,
    Weight,
    decide,
)
from wcs.domain.gs1 import sscc
from wcs.domain.packing import Item
from wcs.domain.states import OrderState

STATION = "PK1"
SCALE = "PK1-SCALE"
PRINTER, BACKUP = "PK1-PRN-1", "PK1-PRN-2"
TO = Destination("EXT-1", "Ada Lovelace", "1 Main St", "London", "N1 9GU", "GB", "standard")
# 2 x 250 g in a small carton (tare 90 g): 590 g expected, +/- 20 g (3 % is less).
ITEMS = (Item("SKU-A", 2, 250.0, (100, 80, 50)),)
EXPECTED_G = 590.0
SSCC = sscc(0, "0614141", 1)
AT = "2026-12-06T08:00:00Z"


def station(**changes: Any) -> PackStation:
    return replace(PackStation(STATION, SCALE, (PRINTER, BACKUP)), **changes)


def run(state: PackStation, event: PackEvent) -> tuple[PackStation, list[Effect]]:
    after, effects = decide(state, event)
    assert decide(state, event) == (after, effects)  # deterministic
    check_pack(of(Command, effects), state.scale, state.printers)
    check_tote_moves(effects)
    return after, effects


def tote(
    state: PackStation, order: str = "O1", pid: str = "p1"
) -> tuple[PackStation, list[Effect]]:
    return run(state, ToteAtPack("PS", f"T-{order}", order, OrderState.QC_PASSED, ITEMS, TO, pid))


def weighed(grams: float = EXPECTED_G, state: PackStation | None = None) -> PackStation:
    state, _ = tote(state or station())
    state, _ = run(state, Weight(SCALE, grams, True))
    return state


def labelled(state: PackStation | None = None) -> PackStation:
    state, _ = run(weighed(state=state), SsccDrawn("p1", SSCC))
    return state


def package_states(effects: list[Effect]) -> list[str]:
    return [p.state for p in of(SavePackage, effects)]


def printed_on(effects: list[Effect]) -> list[str]:
    return [c.device for c in of(Command, effects) if c.name == "print"]


# --- the tote opens a package ----------------------------------------------------------


def test_a_qc_passed_tote_opens_a_package_and_asks_for_its_weight() -> None:
    state, effects = tote(station())
    assert effects == [
        OrderMove("O1", OrderState.QC_PASSED, OrderState.PACKING, f"at pack station {STATION}"),
        SavePackage("p1", "O1", STATION, "S", EXPECTED_G, None, None, None, "weighing"),
        SaveTote("T-O1", "O1", ToteState.PACKING, STATION),
        Command(SCALE, "weigh", {}, subject="p1"),
        Record(
            "pack_start",
            True,
            "O1",
            "PS",
            {"station": STATION, "carton": "S", "expected_g": EXPECTED_G},
        ),
    ]
    [package] = state.packages
    assert (package.id, package.state, package.expected_g) == ("p1", "weighing", EXPECTED_G)


def test_without_a_scale_the_package_waits_for_a_weight_unasked() -> None:
    state, effects = tote(station(scale=None))
    assert of(Command, effects) == []
    assert len(state.packages) == 1


@pytest.mark.parametrize(
    ("order", "state", "to"),
    [
        (None, None, TO),
        ("O1", OrderState.PICKED, TO),  # not through QC yet
        ("O1", OrderState.PACKING, TO),  # scanned twice
        ("O1", OrderState.QC_PASSED, None),  # no address known
    ],
)
def test_a_tote_not_ready_for_packing_is_logged_and_left(
    order: str | None, state: str | None, to: Destination | None
) -> None:
    before = station()
    after, effects = run(before, ToteAtPack("PS", "T-1", order, state, ITEMS, to, "p1"))
    assert after == before
    assert effects == [
        Record(
            "pack_unexpected_tote",
            False,
            order,
            "PS",
            {"station": STATION, "tote": "T-1", "state": state},
        )
    ]


def test_items_no_carton_fits_raise_an_alert_and_open_no_package() -> None:
    huge = (Item("SOFA", 1, 40_000.0, (2000, 900, 800)),)
    before = station()
    after, effects = run(
        before, ToteAtPack("PS", "T-1", "O1", OrderState.QC_PASSED, huge, TO, "p1")
    )
    assert after == before
    [alert] = of(Alert, effects)
    assert alert.code == "no_carton" and alert.subject == "O1"
    assert of(OrderMove, effects) == [
        OrderMove("O1", OrderState.QC_PASSED, OrderState.PACKING, "at pack station")
    ]
    assert of(SavePackage, effects) == []


# --- the weight ----------------------------------------------------------------------


@pytest.mark.parametrize("grams", [EXPECTED_G, EXPECTED_G - 20, EXPECTED_G + 20])
def test_a_weight_within_tolerance_draws_an_sscc(grams: float) -> None:
    state, _ = tote(station())
    state, effects = run(state, Weight(SCALE, grams, True))
    assert [r.kind for r in of(Record, effects)] == ["weight_ok"]
    assert effects[-1] == NextSscc("p1")
    assert state.packages[0].measured_g == grams


@pytest.mark.parametrize("grams", [EXPECTED_G - 21, EXPECTED_G + 21, 0.0])
def test_a_weight_mismatch_sends_the_tote_back_to_a_fresh_qc(grams: float) -> None:
    state, _ = tote(station())
    state, effects = run(state, Weight(SCALE, grams, True))
    assert of(SavePackage, effects) == [
        SavePackage("p1", "O1", STATION, "S", EXPECTED_G, grams, None, None, "rejected")
    ]
    [record] = of(Record, effects)
    assert (record.kind, record.detail["tolerance_g"]) == ("weight_mismatch", 20.0)
    [alert] = of(Alert, effects)
    assert alert.code == "weight_mismatch" and "back to QC" in alert.message
    assert of(OrderMove, effects) == [
        OrderMove("O1", OrderState.PACKING, OrderState.PICKED, "weight mismatch, back to QC")
    ]
    assert of(SaveCheck, effects) == [SaveCheck("O1", None, {}, None, None, None, None)]
    assert of(MoveTotes, effects) == [MoveTotes("O1", (ToteState.PACKING,), ToteState.TO_QC)]
    assert state.packages == ()


def test_a_moving_reading_is_not_a_weight() -> None:
    before, _ = tote(station())
    assert run(before, Weight(SCALE, 9999.0, False)) == (before, [])


def test_a_weight_with_nothing_to_weigh_is_logged() -> None:
    before = station()
    after, effects = run(before, Weight(SCALE, 500.0, True))
    assert after == before
    assert [r.kind for r in of(Record, effects)] == ["weight_unexpected"]


def test_a_second_reading_before_the_sscc_is_not_a_second_check() -> None:
    state = weighed()  # its SSCC not drawn yet
    after, effects = run(state, Weight(SCALE, EXPECTED_G + 1, True))
    assert after == state
    assert [r.kind for r in of(Record, effects)] == ["weight_unexpected"]
    assert of(NextSscc, effects) == []


def test_the_weight_goes_to_the_latest_package_weighing() -> None:
    state, _ = tote(station(), "O1", "p1")
    state, _ = tote(state, "O2", "p2")
    state, effects = run(state, Weight(SCALE, EXPECTED_G, True))
    assert effects[-1] == NextSscc("p2")


# --- the label -----------------------------------------------------------------------


def test_the_sscc_label_goes_to_the_stations_printer() -> None:
    state, effects = run(weighed(), SsccDrawn("p1", SSCC))
    [command] = of(Command, effects)
    assert (command.device, command.name, command.subject) == (PRINTER, "print", "p1")
    label = payload(command)
    assert label.model_dump()["job_id"] == SSCC
    assert f"(00){SSCC}" in command.fields["zpl"] and "Ada Lovelace" in command.fields["zpl"]
    assert of(SavePackage, effects) == [
        SavePackage("p1", "O1", STATION, "S", EXPECTED_G, EXPECTED_G, SSCC, PRINTER, "labelling")
    ]
    assert state.packages[0].state == PackageState.LABELLING


@pytest.mark.parametrize("how", ["fault", "offline"])
def test_a_printer_down_sends_the_label_to_the_backup(how: str) -> None:
    state, _ = run(station(), DeviceState(PRINTER, how))
    state, effects = run(weighed(state=state), SsccDrawn("p1", SSCC))
    assert printed_on(effects) == [BACKUP]


def test_a_failed_job_goes_to_the_backup_printer() -> None:
    state, effects = run(labelled(), PrintAck("p1", PRINTER, False, "paper out"))
    [record] = of(Record, effects)
    assert (record.kind, record.device_id, record.detail["error"]) == (
        "print_failed",
        PRINTER,
        "paper out",
    )
    [alert] = of(Alert, effects)
    assert (alert.code, alert.subject) == ("printer_fault", PRINTER)
    assert printed_on(effects) == [BACKUP]
    assert state.packages[0].printer == BACKUP


def test_when_both_printers_fail_the_job_the_station_goes_down() -> None:
    state, _ = run(labelled(), PrintAck("p1", PRINTER, False, "paper out"))
    state, effects = run(state, PrintAck("p1", BACKUP, False, "ribbon out"))
    assert printed_on(effects) == []  # not back to the printer that already failed it
    assert effects[-1] == StationDown(STATION, True, "no printer")
    assert state.down


def test_with_no_working_printer_the_station_goes_down_with_an_alert() -> None:
    state = station()
    for printer in (PRINTER, BACKUP):
        state, _ = run(state, DeviceState(printer, "fault"))
    state, effects = run(weighed(state=state), SsccDrawn("p1", SSCC))
    assert printed_on(effects) == []
    [alert] = of(Alert, effects)
    assert (alert.code, alert.severity, alert.subject) == ("pack_station_down", "critical", STATION)
    assert f"{PRINTER}, {BACKUP}" in alert.message
    assert [r.kind for r in of(Record, effects)] == ["station_down"]
    assert effects[-1] == StationDown(STATION, True, "no printer")
    assert state.down


def test_a_station_without_printers_says_so() -> None:
    state, effects = run(weighed(state=station(printers=())), SsccDrawn("p1", SSCC))
    assert "none configured" in of(Alert, effects)[0].message
    assert state.down


def test_a_printer_back_online_brings_the_station_back() -> None:
    state = station()
    for printer in (PRINTER, BACKUP):
        state, _ = run(state, DeviceState(printer, "offline"))
    state, _ = run(weighed(state=state), SsccDrawn("p1", SSCC))
    # Another device of the station coming back prints nothing: the station stays down.
    for device in (SCALE, "PK1-SCANNER"):
        after, effects = run(state, DeviceState(device, "online"))
        assert after.down and effects == []
    state, effects = run(state, DeviceState(BACKUP, "online"))
    assert effects == [StationDown(STATION, False, None)]
    assert not state.down and state.down_devices == {PRINTER}


def test_a_device_state_is_remembered() -> None:
    state, effects = run(station(), DeviceState(SCALE, "fault"))
    assert effects == [] and state.down_devices == {SCALE}
    state, effects = run(state, DeviceState(SCALE, "online"))
    assert effects == [] and state.down_devices == frozenset()


def test_a_printed_label_waits_for_its_scan() -> None:
    state, effects = run(labelled(), PrintAck("p1", PRINTER, True, None))
    assert package_states(effects) == ["awaiting_scan"]
    assert [(r.kind, r.device_id) for r in of(Record, effects)] == [("label_printed", PRINTER)]
    assert state.packages[0].state == PackageState.AWAITING_SCAN


@pytest.mark.parametrize(
    "event",
    [
        SsccDrawn("p9", SSCC),
        PrintAck("p9", PRINTER, True, None),
        PrintAck("p9", PRINTER, False, "jam"),
    ],
)
def test_answers_for_no_package_here_change_nothing(event: PackEvent) -> None:
    before = labelled()
    assert run(before, event) == (before, [])


def test_late_answers_change_nothing() -> None:
    before = labelled()
    # A second SSCC for a package already labelling; a second ack after the first.
    assert run(before, SsccDrawn("p1", sscc(0, "0614141", 2))) == (before, [])
    state, _ = run(before, PrintAck("p1", PRINTER, True, None))
    assert run(state, PrintAck("p1", PRINTER, False, "late")) == (state, [])


# --- the label scan --------------------------------------------------------------------


@pytest.mark.parametrize("acked", [True, False])
def test_the_label_scan_packs_the_parcel_and_frees_the_tote(acked: bool) -> None:
    state = labelled()
    if acked:
        state, _ = run(state, PrintAck("p1", PRINTER, True, None))
    state, effects = run(state, LabelScan("PS", SSCC, AT))
    [saved] = of(SavePackage, effects)
    assert saved.state == "packed"
    assert saved.document == {
        "sscc": SSCC,
        "order_id": "O1",
        "external_id": "EXT-1",
        "carton": "S",
        "weight_g": EXPECTED_G,
        "ship_to": {"city": "London", "postal_code": "N1 9GU", "country": "GB"},
        "service": "standard",
        "packed_at": AT,
        "station": STATION,
    }
    assert of(OrderMove, effects) == [
        OrderMove("O1", OrderState.PACKING, OrderState.PACKED, f"label {SSCC} scanned")
    ]
    assert [r.kind for r in of(Record, effects)] == ["packed"]
    [move] = of(MoveTotes, effects)
    assert (move.order_id, move.dst, move.keep_station) == ("O1", ToteState.FREE, False)
    assert ToteState.PACKING in move.src
    assert state.packages == ()


@pytest.mark.parametrize("code", [sscc(0, "0614141", 7), "not-a-label"])
def test_an_unknown_label_is_logged(code: str) -> None:
    before = labelled()
    after, effects = run(before, LabelScan("PS", code, AT))
    assert after == before
    assert effects == [
        Record("label_unknown", False, None, "PS", {"station": STATION, "sscc": code})
    ]


def test_a_label_scanned_twice_is_unknown_the_second_time() -> None:
    state, _ = run(labelled(), LabelScan("PS", SSCC, AT))
    _, effects = run(state, LabelScan("PS", SSCC, AT))
    assert [r.kind for r in of(Record, effects)] == ["label_unknown"]


def test_an_unknown_scan_is_logged() -> None:
    before = station()
    after, effects = run(before, UnknownScan("PS", "X" * 100))
    assert after == before
    assert effects == [
        Record(
            "pack_unknown_scan",
            False,
            None,
            "PS",
            {"station": STATION, "code": "X" * 64, "reason": "not an SSCC"},
        )
    ]


def test_a_label_with_no_printer_keeps_its_sscc() -> None:
    state = station()
    for printer in (PRINTER, BACKUP):
        state, _ = run(state, DeviceState(printer, "fault"))
    state, effects = run(weighed(state=state), SsccDrawn("p1", SSCC))
    assert of(SavePackage, effects) == [
        SavePackage("p1", "O1", STATION, "S", EXPECTED_G, EXPECTED_G, SSCC, None, "labelling")
    ]


def test_an_ack_repeated_for_a_failed_job_changes_nothing() -> None:
    state, _ = run(labelled(), PrintAck("p1", PRINTER, False, "paper out"))
    assert run(state, PrintAck("p1", PRINTER, False, "paper out")) == (state, [])


def test_an_ack_from_a_printer_without_the_job_changes_nothing() -> None:
    fresh = labelled()
    assert run(fresh, PrintAck("p1", BACKUP, True, None)) == (fresh, [])
    # The first printer's late word, once the job went to the backup.
    state, _ = run(fresh, PrintAck("p1", PRINTER, False, "paper out"))
    assert run(state, PrintAck("p1", PRINTER, True, None)) == (state, [])
