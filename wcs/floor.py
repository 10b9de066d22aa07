"""The floor file: which devices exist, how they are reached, where they stand.

One validated YAML file is read by ``wcs drivers`` (the host side), ``wcs sim`` (the
device side) and the controller (zones, stations, slot-to-location maps), so the three
cannot disagree about the floor. Example: ``floors/sample.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wcs.errors import ConfigError
from wcs.register_maps import DEFAULT_MAP, SHIPPED, DiverterMap, PtlMap, RegisterMap

Zone = Literal["pick", "qc", "pack", "outbound", "exception", "returns"]
DEVICE_ID = r"^[A-Za-z0-9_.:-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SerialLink(_Strict):
    """A serial port by URL: ``/dev/ttyUSB0``, ``socket://host:port`` or a pty path."""

    type: Literal["serial"] = "serial"
    url: str = Field(min_length=1)
    baudrate: int = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    xonxoff: bool = False


class TcpLink(_Strict):
    """A raw TCP socket (label printers: port 9100 by convention)."""

    type: Literal["tcp"] = "tcp"
    host: str = "127.0.0.1"
    port: int = Field(default=9100, ge=1, le=65535)


class ModbusLink(_Strict):
    type: Literal["modbus"] = "modbus"
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=247)
    timeout_s: float = Field(default=1.0, gt=0)
    poll_interval_s: float = Field(default=0.05, gt=0)
    # Pause between frames on a shared bus (RS-485 gateways need time to turn around).
    frame_gap_s: float = Field(default=0.0, ge=0, le=1.0)


class _Device(_Strict):
    id: Annotated[str, Field(pattern=DEVICE_ID)]
    zone: Zone
    station: str | None = None


class ScannerDevice(_Device):
    kind: Literal["scanner"] = "scanner"
    link: SerialLink
    terminator: Literal["CR", "CRLF", "auto"] = "auto"


class ScaleDevice(_Device):
    kind: Literal["scale"] = "scale"
    link: SerialLink
    protocol: Literal["mt-sics", "toledo-continuous"] = "mt-sics"
    # The scale's display unit; readings in any unit are converted to grams, a preset
    # tare is sent in this one.
    unit: Literal["g", "kg", "lb", "oz"] = "g"
    # MT-SICS: ``request`` asks for each weight (S, an SI probe between commands);
    # ``continuous`` keeps the scale streaming (SIR) and publishes each weight it
    # settles on.
    mode: Literal["request", "continuous"] = "request"
    # How long a weigh command waits for the pan to settle before it gives up. Below
    # the drivers' command timeout (15 s), so the reason reaches the ack.
    stable_within_s: float = Field(default=8.0, gt=0, le=12)
    # Continuous mode: a weight is published once the scale has reported it stable
    # this many readings in a row (the scale's own flag flickers on a busy bench).
    settle_readings: int = Field(default=3, ge=1, le=50)
    # Continuous mode: publish the moving readings as ``stable: false`` events too.
    dynamic_events: bool = False


class PrinterDevice(_Device):
    kind: Literal["printer"] = "printer"
    link: TcpLink | SerialLink = Field(discriminator="type")
    status_poll_s: float = Field(default=2.0, gt=0)
    status_timeout_s: float = Field(default=1.0, gt=0)
    # Print resolution: labels are laid out in the printer's dots (bar code module
    # widths and heights at the GS1 minimums).
    dpi: Literal[203, 300, 600] = 203


class PtlDevice(_Device):
    kind: Literal["ptl"] = "ptl"
    link: ModbusLink
    # slot number (1-based, as printed on the panel) -> location code it lights
    slots: dict[int, str] = Field(min_length=1)
    # The panel's Modbus register map: a shipped profile or one of register_maps.
    register_map: str = DEFAULT_MAP["ptl"]


class DiverterDevice(_Device):
    kind: Literal["diverter"] = "diverter"
    link: ModbusLink
    point: str = Field(min_length=1, max_length=64)
    # lane number as the PLC knows it -> route name: qc, pack:<station>, outbound, exception
    lanes: dict[int, str] = Field(min_length=1)
    default_lane: int = 0  # lane the PLC takes when no decision arrives in time
    # The PLC's Modbus register map: a shipped profile or one of register_maps.
    register_map: str = DEFAULT_MAP["diverter"]

    @model_validator(mode="after")
    def _lanes_are_routes(self) -> DiverterDevice:
        for number, route in self.lanes.items():
            lane = route.split(":", 1)[0]
            if lane not in ("qc", "pack", "outbound", "exception"):
                raise ValueError(f"diverter {self.id}: lane {number} route {route!r} is unknown")
        if self.default_lane and self.default_lane not in self.lanes:
            raise ValueError(f"diverter {self.id}: default_lane {self.default_lane} is not a lane")
        return self

    def lane_for(self, lane: str, station: str | None = None) -> int | None:
        wanted = f"{lane}:{station}" if station else lane
        for number, route in sorted(self.lanes.items()):
            if route == wanted or (station is None and route.split(":", 1)[0] == lane):
                return number
        return None


Device = Annotated[
    ScannerDevice | ScaleDevice | PrinterDevice | PtlDevice | DiverterDevice,
    Field(discriminator="kind"),
]


class Station(_Strict):
    """A work place that groups devices: a QC bench or a pack station."""

    id: Annotated[str, Field(pattern=DEVICE_ID)]
    # outbound: where carrier labels print when the floor has one (its printer)
    kind: Literal["qc", "pack", "pick", "returns", "outbound"]
    scanner: str | None = None
    scale: str | None = None
    printer: str | None = None
    backup_printer: str | None = None
    # Pick stations: the PTL panels whose slots this station's picker works.
    panels: list[str] = Field(default_factory=list)


class Floor(_Strict):
    site: str = "wh1"
    # Register maps of this floor's panels and PLCs, by name, beside the shipped ones.
    register_maps: dict[Annotated[str, Field(pattern=DEVICE_ID)], RegisterMap] = Field(
        default_factory=dict
    )
    devices: list[Device] = Field(default_factory=list)
    stations: list[Station] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> Floor:
        ids = [d.id for d in self.devices]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"device ids used twice: {', '.join(dupes)}")
        for name in self.register_maps:
            if name in SHIPPED:
                raise ValueError(f"register_maps.{name}: a shipped profile has that name")
        for device in self.devices:
            if isinstance(device, PtlDevice | DiverterDevice):
                self._check_map(device)
        known = set(ids)
        for station in self.stations:
            for role in ("scanner", "scale", "printer", "backup_printer"):
                ref = getattr(station, role)
                if ref is not None and ref not in known:
                    raise ValueError(f"station {station.id}: {role} {ref!r} is not a device")
            for panel in station.panels:
                if panel not in known:
                    raise ValueError(f"station {station.id}: panel {panel!r} is not a device")
        return self

    def _check_map(self, device: PtlDevice | DiverterDevice) -> None:
        name = device.register_map
        found = self.register_maps.get(name) or SHIPPED.get(name)
        if found is None:
            known = ", ".join(sorted({*SHIPPED, *self.register_maps}))
            raise ValueError(
                f"device {device.id}: register_map {name!r} is not defined (known: {known})"
            )
        if found.kind != device.kind:
            raise ValueError(
                f"device {device.id}: register_map {name!r} is for a {found.kind}, "
                f"not a {device.kind}"
            )
        last = max(device.slots) if isinstance(device, PtlDevice) else 0
        if isinstance(found, PtlMap) and last > found.max_slots:
            raise ValueError(
                f"device {device.id}: slot {last} is past register_map "
                f"{name!r}, which has {found.max_slots} slots"
            )

    def register_map(self, device: PtlDevice | DiverterDevice) -> PtlMap | DiverterMap:
        """The register map ``device`` speaks (checked when the floor was read)."""
        return self.register_maps.get(device.register_map) or SHIPPED[device.register_map]

    def ptl_map(self, device: PtlDevice) -> PtlMap:
        found = self.register_map(device)
        assert isinstance(found, PtlMap)
        return found

    def diverter_map(self, device: DiverterDevice) -> DiverterMap:
        found = self.register_map(device)
        assert isinstance(found, DiverterMap)
        return found

    def device(self, device_id: str) -> Device:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise ConfigError(f"device {device_id!r} is not on this floor")

    def of_kind(self, kind: str) -> list[Device]:
        return [d for d in self.devices if d.kind == kind]

    def slot_of(self, location: str) -> tuple[str, int] | None:
        """The PTL (panel, slot) that lights ``location``, if any."""
        for device in self.devices:
            if isinstance(device, PtlDevice):
                for slot, code in device.slots.items():
                    if code == location:
                        return device.id, slot
        return None

    def station_of_device(self, device_id: str) -> Station | None:
        for station in self.stations:
            if device_id in (station.scanner, station.scale, station.printer):
                return station
            if device_id in station.panels:
                return station
        return None

    def station(self, station_id: str) -> Station:
        for station in self.stations:
            if station.id == station_id:
                return station
        raise ConfigError(f"station {station_id!r} is not on this floor")


def printer_dpi(floor: Floor, printer_id: str) -> int:
    """The print resolution of ``printer_id`` (203 dpi when the floor does not know it)."""
    for device in floor.devices:
        if device.id == printer_id and isinstance(device, PrinterDevice):
            return device.dpi
    return 203


def load_floor(path: str | Path) -> Floor:
    """Read and validate a floor file; errors name the file and the offending entry."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"floor file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"floor file {path} is not valid YAML: {exc}") from None
    try:
        return Floor.model_validate(data or {})
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise ConfigError(f"floor file {path} is invalid:\n" + "\n".join(lines)) from None
