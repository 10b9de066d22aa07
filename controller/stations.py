"""The units of ownership, read from the floor file.

A station is what one controller instance owns at a time: a pick station (its PTL
panels and scanner), a QC bench, a pack station (scanner, scale, printers), a
conveyor decision point (a diverter), and the floor itself (wave release, requests
about orders at no station, carrier allocation, devices at no station). Each has its
own MQTT session, subscribed to its devices only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wcs.floor import DiverterDevice, Floor, PtlDevice, Station

Kind = Literal["pick", "qc", "pack", "conveyor", "floor", "returns", "outbound"]
FLOOR = "floor"


@dataclass(frozen=True)
class StationSpec:
    id: str
    kind: Kind
    devices: tuple[str, ...]  # events, statuses and acks of these come to the station
    # Devices another station owns whose acks and statuses this one needs as well
    # (a pack station's backup printer belongs to its neighbour).
    borrowed: tuple[str, ...] = ()
    station: Station | None = None
    diverter: DiverterDevice | None = None
    slots: dict[str, tuple[int, ...]] = field(default_factory=dict)  # PTL panel -> its slots


@dataclass(frozen=True)
class FloorPlan:
    floor: Floor
    specs: dict[str, StationSpec]
    owner_of: dict[str, str]  # device -> the station whose session hears its events
    location_of: dict[str, tuple[str, int]]  # location code -> (PTL panel, slot)

    @property
    def device_ids(self) -> frozenset[str]:
        return frozenset(self.owner_of)


def plan_floor(floor: Floor) -> FloorPlan:
    owner_of: dict[str, str] = {}
    specs: dict[str, StationSpec] = {}
    panels = {d.id: d for d in floor.devices if isinstance(d, PtlDevice)}
    for station in floor.stations:
        own = [
            ref for ref in (station.scanner, station.scale, station.printer, *station.panels) if ref
        ]
        own += [d.id for d in floor.devices if d.station == station.id and d.id not in own]
        shared = [d for d in own if d in owner_of]
        own = [d for d in own if d not in owner_of]
        for device in own:
            owner_of[device] = station.id
        borrowed = tuple(
            dict.fromkeys(d for d in (*shared, station.backup_printer) if d and d not in own)
        )
        specs[station.id] = StationSpec(
            station.id,
            station.kind,
            tuple(own),
            borrowed,
            station=station,
            slots={p: tuple(sorted(panels[p].slots)) for p in station.panels if p in panels},
        )
    for diverter in floor.devices:
        if isinstance(diverter, DiverterDevice) and diverter.id not in owner_of:
            sid = f"conveyor:{diverter.id}"
            owner_of[diverter.id] = sid
            specs[sid] = StationSpec(sid, "conveyor", (diverter.id,), diverter=diverter)
    orphans = tuple(d.id for d in floor.devices if d.id not in owner_of)
    for device_id in orphans:
        owner_of[device_id] = FLOOR
    specs[FLOOR] = StationSpec(FLOOR, "floor", orphans)
    location_of = {
        code: (panel.id, slot) for panel in panels.values() for slot, code in panel.slots.items()
    }
    return FloorPlan(floor, specs, owner_of, location_of)
