"""Lookups over the floor file, plus the live status of every device."""

from __future__ import annotations

from dataclasses import dataclass, field

from wcs.floor import DiverterDevice, Floor, PtlDevice, Station


@dataclass
class DeviceLive:
    state: str = "offline"
    detail: str | None = None


@dataclass
class FloorIndex:
    floor: Floor
    live: dict[str, DeviceLive] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kind = {d.id: d.kind for d in self.floor.devices}
        self.zone = {d.id: d.zone for d in self.floor.devices}
        self.slot_of: dict[str, tuple[str, int]] = {}
        self.location_of: dict[tuple[str, int], str] = {}
        for device in self.floor.devices:
            if isinstance(device, PtlDevice):
                for slot, code in device.slots.items():
                    self.slot_of[code] = (device.id, slot)
                    self.location_of[(device.id, slot)] = code
        self.station_of: dict[str, Station] = {}
        for station in self.floor.stations:
            for ref in (station.scanner, station.scale, station.printer, *station.panels):
                if ref:
                    self.station_of.setdefault(ref, station)
        for device in self.floor.devices:
            if device.station and device.id not in self.station_of:
                self.station_of[device.id] = self.floor.station(device.station)
        self.diverters: dict[str, DiverterDevice] = {
            d.id: d for d in self.floor.devices if isinstance(d, DiverterDevice)
        }

    def known(self, device_id: str) -> bool:
        return device_id in self.kind

    def usable(self, device_id: str | None) -> bool:
        """Online, or never heard of (a floor without status reports still works)."""
        if device_id is None:
            return False
        live = self.live.get(device_id)
        return live is None or live.state == "online"

    def pack_stations(self) -> list[Station]:
        return [s for s in self.floor.stations if s.kind == "pack"]

    def pick_stations(self) -> list[Station]:
        return [s for s in self.floor.stations if s.kind == "pick"]

    def station_printers(self, station: Station) -> list[str]:
        return [p for p in (station.printer, station.backup_printer) if p]

    def pack_station_available(self, station: Station, down: set[str]) -> bool:
        if station.id in down:
            return False
        if not self.usable(station.scale) or not self.usable(station.scanner):
            return False
        return any(self.usable(p) for p in self.station_printers(station))
