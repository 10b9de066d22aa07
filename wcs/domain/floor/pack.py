"""A pack station (design §1 step 5): carton, weight check, SSCC label, confirmation.

A tote scanned here opens a package: the carton is chosen from the items, the
expected weight is items + carton, and the scale is asked for a stable weight.
Within tolerance an SSCC is drawn and the label printed on the station's printer (its
backup when the printer is down or fails the job; with both gone the station is
down and an alert raised). Scanning the printed SSCC confirms the parcel: ``packed``
plus an outbound document. Outside tolerance the tote goes back to QC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

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
from wcs.domain.floor.machines import PACKAGE_MOVES, TOTE_MOVES, PackageState, ToteState, step
from wcs.domain.packing import Item, check_weight, choose_carton, items_weight, shipping_label_zpl
from wcs.domain.states import OrderState
from wcs.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class Destination:
    """What the label and the outbound document say about the order."""

    external_id: str
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    service: str


@dataclass(frozen=True, slots=True)
class Package:
    id: str
    order_id: str
    carton: str
    expected_g: float
    to: Destination
    measured_g: float | None = None
    sscc: str | None = None
    printer: str | None = None
    state: PackageState = PackageState.WEIGHING
    failed: tuple[str, ...] = ()  # printers that failed this label: not tried again

    def moved(self, state: PackageState, **changes: Any) -> Package:
        return replace(
            self, state=step(PACKAGE_MOVES, f"package {self.id}", self.state, state), **changes
        )


@dataclass(frozen=True, slots=True)
class Tolerance:
    pct: float = 3.0
    min_g: float = 20.0


@dataclass(frozen=True, slots=True)
class LabelSetup:
    """What the parcel label needs besides the parcel: each printer's resolution (the
    GS1 minimum sizes are laid out in its dots), the ship-from block, the length of
    the company prefix (the readable SSCC is grouped by it)."""

    dpi: Mapping[str, int] = field(default_factory=dict)
    ship_from: tuple[str, ...] = ()
    company_prefix_length: int = 7


@dataclass(frozen=True, slots=True)
class PackStation:
    id: str
    scale: str | None = None
    printers: tuple[str, ...] = ()  # the station's printer, then its backup
    tolerance: Tolerance = Tolerance()
    label: LabelSetup = LabelSetup()
    packages: tuple[Package, ...] = ()  # open ones: weighing, labelling, awaiting scan
    # Devices reported down (fault or offline); a device never heard of counts as up.
    down_devices: frozenset[str] = frozenset()
    down: bool = False  # no working printer: totes go to other stations


@dataclass(frozen=True, slots=True)
class ToteAtPack:
    device: str
    code: str
    order_id: str | None
    order_state: str | None
    items: Sequence[Item]
    to: Destination | None
    package_id: str  # drawn by the edge: used if a package opens


@dataclass(frozen=True, slots=True)
class Weight:
    device: str
    grams: float
    stable: bool


@dataclass(frozen=True, slots=True)
class SsccDrawn:
    package_id: str
    sscc: str


@dataclass(frozen=True, slots=True)
class PrintAck:
    package_id: str
    printer: str
    ok: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class LabelScan:
    device: str
    sscc: str
    at: str  # RFC 3339, for the outbound document


@dataclass(frozen=True, slots=True)
class UnknownScan:
    device: str
    code: str
    reason: str = "not an SSCC"


@dataclass(frozen=True, slots=True)
class DeviceState:
    """A device of the station reported its state (online, offline, fault)."""

    device: str
    state: str


@dataclass(frozen=True, slots=True)
class Resume:
    """The station's link to its devices is (back) up: a weighing package asks its scale
    again (a request sent while the link was down went nowhere; a second one only
    brings a second reading, and the first stable one counts)."""


PackEvent = (
    ToteAtPack | Weight | SsccDrawn | PrintAck | LabelScan | UnknownScan | DeviceState | Resume
)


def decide(station: PackStation, event: PackEvent) -> tuple[PackStation, list[Effect]]:
    effects: list[Effect] = []
    match event:
        case ToteAtPack():
            station = _tote(station, event, effects)
        case Weight():
            station = _weight(station, event, effects)
        case SsccDrawn():
            package = _find(station, event.package_id)
            if package is not None and package.state == PackageState.WEIGHING:
                package = package.moved(PackageState.LABELLING, sscc=event.sscc)
                station = _print(_put(station, package), package, (), effects)
        case PrintAck():
            station = _print_ack(station, event, effects)
        case LabelScan():
            station = _label(station, event, effects)
        case UnknownScan():
            effects.append(
                _record(
                    station,
                    "pack_unknown_scan",
                    False,
                    None,
                    event.device,
                    code=event.code[:64],
                    reason=event.reason,
                )
            )
        case Resume():
            if station.scale:
                for package in station.packages:
                    if package.state == PackageState.WEIGHING:
                        effects.append(Command(station.scale, "weigh", {}, subject=package.id))
        case DeviceState():
            down = (
                station.down_devices - {event.device}
                if event.state == "online"
                else (station.down_devices | {event.device})
            )
            station = replace(station, down_devices=down)
            if event.state == "online" and station.down and event.device in station.printers:
                # A station marked down for want of a printer comes back with a printer.
                station = replace(station, down=False)
                effects.append(StationDown(station.id, False, None))
    return station, effects


def _record(
    station: PackStation,
    kind: str,
    ok: bool,
    order_id: str | None,
    device: str | None,
    **detail: Any,
) -> Record:
    return Record(kind, ok, order_id, device, {"station": station.id, **detail})


def _find(station: PackStation, package_id: str) -> Package | None:
    return next((p for p in station.packages if p.id == package_id), None)


def _put(station: PackStation, package: Package) -> PackStation:
    """Keep an open package; a finished one leaves the station's memory."""
    others = tuple(p for p in station.packages if p.id != package.id)
    if package.state in (PackageState.PACKED, PackageState.REJECTED):
        return replace(station, packages=others)
    return replace(station, packages=(*others, package))


def _saved(
    station: PackStation, package: Package, document: Mapping[str, Any] | None = None
) -> SavePackage:
    return SavePackage(
        package.id,
        package.order_id,
        station.id,
        package.carton,
        package.expected_g,
        package.measured_g,
        package.sscc,
        package.printer,
        package.state,
        document,
    )


def _tote(station: PackStation, event: ToteAtPack, effects: list[Effect]) -> PackStation:
    if event.order_id is None or event.order_state != OrderState.QC_PASSED or event.to is None:
        effects.append(
            _record(
                station,
                "pack_unexpected_tote",
                False,
                event.order_id,
                event.device,
                tote=event.code,
                state=event.order_state,
            )
        )
        return station
    try:
        carton = choose_carton(event.items)
    except ValidationFailed as exc:
        effects.append(
            Alert("no_carton", "warning", f"order {event.order_id}: {exc.message}", event.order_id)
        )
        effects.append(
            OrderMove(event.order_id, OrderState.QC_PASSED, OrderState.PACKING, "at pack station")
        )
        return station
    expected = items_weight(event.items) + carton.tare_g
    package = Package(event.package_id, event.order_id, carton.code, expected, event.to)
    effects.append(
        OrderMove(
            event.order_id,
            OrderState.QC_PASSED,
            OrderState.PACKING,
            f"at pack station {station.id}",
        )
    )
    effects.append(_saved(station, package))
    effects.append(SaveTote(event.code, event.order_id, ToteState.PACKING, station.id))
    if station.scale:
        effects.append(Command(station.scale, "weigh", {}, subject=package.id))
    effects.append(
        _record(
            station,
            "pack_start",
            True,
            event.order_id,
            event.device,
            carton=carton.code,
            expected_g=round(expected, 1),
        )
    )
    return _put(station, package)


def _weight(station: PackStation, event: Weight, effects: list[Effect]) -> PackStation:
    if not event.stable:
        return station  # dynamic readings are for the display, not for the check
    # A package weighed already waits for its SSCC: the scale's next stable reading of
    # the same parcel is not a second check (nor a second serial).
    package = next(
        (
            p
            for p in reversed(station.packages)
            if p.state == PackageState.WEIGHING and p.measured_g is None
        ),
        None,
    )
    if package is None:
        effects.append(
            _record(station, "weight_unexpected", False, None, event.device, grams=event.grams)
        )
        return station
    check = check_weight(
        package.expected_g,
        event.grams,
        tolerance_pct=station.tolerance.pct,
        tolerance_min_g=station.tolerance.min_g,
    )
    if not check.ok:
        package = package.moved(PackageState.REJECTED, measured_g=event.grams)
        effects.append(_saved(station, package))
        effects.append(
            _record(
                station,
                "weight_mismatch",
                False,
                package.order_id,
                event.device,
                expected_g=round(check.expected_g, 1),
                measured_g=event.grams,
                tolerance_g=round(check.tolerance_g, 1),
            )
        )
        effects.append(
            Alert(
                "weight_mismatch",
                "warning",
                f"order {package.order_id} at {station.id}: scale shows {event.grams:.0f} g, "
                f"expected {check.expected_g:.0f} g +/- {check.tolerance_g:.0f} g; "
                "tote goes back to QC",
                station.id,
            )
        )
        effects.append(
            OrderMove(
                package.order_id,
                OrderState.PACKING,
                OrderState.PICKED,
                "weight mismatch, back to QC",
            )
        )
        # The earlier pass no longer holds: QC counts and judges the order afresh.
        effects.append(SaveCheck(package.order_id, None, {}, None, None, None, None))
        effects.append(MoveTotes(package.order_id, (ToteState.PACKING,), ToteState.TO_QC))
        return _put(station, package)
    effects.append(
        _record(
            station,
            "weight_ok",
            True,
            package.order_id,
            event.device,
            expected_g=round(check.expected_g, 1),
            measured_g=event.grams,
        )
    )
    package = replace(package, measured_g=event.grams)
    effects.append(NextSscc(package.id))
    return _put(station, package)


def _print(
    station: PackStation, package: Package, exclude: tuple[str, ...], effects: list[Effect]
) -> PackStation:
    """Send the label to the first working printer of the station; none: station down."""
    printers = [p for p in station.printers if p not in exclude]
    printer = next((p for p in printers if p not in station.down_devices), None)
    if printer is None or package.sscc is None:
        # The package keeps the SSCC drawn for it (the serial is spent) with no label yet.
        effects.append(_saved(station, package))
        effects.append(
            Alert(
                "pack_station_down",
                "critical",
                f"pack station {station.id}: no working printer "
                f"({', '.join(station.printers) or 'none configured'}); "
                "totes are sent to other stations until a printer is back",
                station.id,
            )
        )
        effects.append(_record(station, "station_down", False, None, None, reason="no printer"))
        effects.append(StationDown(station.id, True, "no printer"))
        return replace(station, down=True)
    to = package.to
    zpl = shipping_label_zpl(
        sscc18=package.sscc,
        order_id=package.order_id,
        ship_to=[to.name, to.line1, f"{to.postal_code} {to.city}", to.country],
        carrier="pending",
        weight_g=package.measured_g or package.expected_g,
        carton=package.carton,
        dpi=station.label.dpi.get(printer, 203),
        ship_from=station.label.ship_from,
        company_prefix_length=station.label.company_prefix_length,
    )
    package = replace(package, printer=printer)
    effects.append(
        Command(printer, "print", {"zpl": zpl, "job_id": package.sscc}, subject=package.id)
    )
    effects.append(_saved(station, package))
    return _put(station, package)


def _print_ack(station: PackStation, event: PrintAck, effects: list[Effect]) -> PackStation:
    package = _find(station, event.package_id)
    if package is None or package.state != PackageState.LABELLING:
        return station
    if event.printer != package.printer or event.printer in package.failed:
        return station  # an answer for a job given up already (the broker may repeat it)
    if event.ok:
        package = package.moved(PackageState.AWAITING_SCAN)
        effects.append(_saved(station, package))
        effects.append(_record(station, "label_printed", True, package.order_id, event.printer))
        return _put(station, package)
    effects.append(
        _record(station, "print_failed", False, package.order_id, event.printer, error=event.error)
    )
    effects.append(
        Alert(
            "printer_fault",
            "warning",
            f"printer {event.printer} failed a label ({event.error or 'no reason given'}); "
            "trying the station's backup printer",
            event.printer,
        )
    )
    package = replace(package, failed=(*package.failed, event.printer))
    return _print(_put(station, package), package, package.failed, effects)


def _label(station: PackStation, event: LabelScan, effects: list[Effect]) -> PackStation:
    package = next(
        (
            p
            for p in station.packages
            if p.sscc == event.sscc
            and p.state in (PackageState.LABELLING, PackageState.AWAITING_SCAN)
        ),
        None,
    )
    if package is None:
        effects.append(
            _record(station, "label_unknown", False, None, event.device, sscc=event.sscc)
        )
        return station
    to = package.to
    document: dict[str, Any] = {
        "sscc": event.sscc,
        "order_id": package.order_id,
        "external_id": to.external_id,
        "carton": package.carton,
        "weight_g": package.measured_g,
        "ship_to": {"city": to.city, "postal_code": to.postal_code, "country": to.country},
        "service": to.service,
        "packed_at": event.at,
        "station": station.id,
    }
    package = package.moved(PackageState.PACKED)
    effects.append(_saved(station, package, document))
    effects.append(
        OrderMove(
            package.order_id, OrderState.PACKING, OrderState.PACKED, f"label {event.sscc} scanned"
        )
    )
    effects.append(
        _record(station, "packed", True, package.order_id, event.device, sscc=event.sscc)
    )
    # The parcel travels on by its label; the tote is free for the next order (from
    # wherever the tote table lets a tote be freed: never from picking).
    effects.append(
        MoveTotes(
            package.order_id,
            tuple(s for s in ToteState if ToteState.FREE in TOTE_MOVES[s]),
            ToteState.FREE,
            keep_station=False,
        )
    )
    return _put(station, package)
