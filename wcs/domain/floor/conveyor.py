"""A conveyor decision point: where a tote or parcel goes (``wcs.domain.conveyor``).

The point holds no state of its own between arrivals: each arrival comes with what
the edge found (the tote's order and its state, or the parcel's order by its SSCC,
and the pack stations' availability and load).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wcs.domain.conveyor import PackStation, decide_lane
from wcs.domain.floor.effects import Command, Effect, Record, SaveTote
from wcs.domain.floor.machines import ToteState

TOTE_STATE_FOR_LANE: Mapping[str, ToteState] = {
    "qc": ToteState.TO_QC,
    "pack": ToteState.TO_PACK,
    "outbound": ToteState.TO_OUTBOUND,
}


@dataclass(frozen=True, slots=True)
class ConveyorPoint:
    id: str
    device: str
    routes: frozenset[str]  # the diverter's lanes: "qc", "pack:P1", "outbound", ...


@dataclass(frozen=True, slots=True)
class Arrival:
    device: str
    code: str  # the tote's barcode or the parcel's label
    point: str
    order_id: str | None
    order_state: str | None
    tote: bool  # a known tote (not a parcel): its row follows the decision
    stations: Sequence[PackStation]


def has_lane(point: ConveyorPoint, lane: str, station: str | None) -> bool:
    if station is not None:
        return f"{lane}:{station}" in point.routes
    return any(route.split(":", 1)[0] == lane for route in point.routes)


def decide(point: ConveyorPoint, event: Arrival) -> tuple[ConveyorPoint, list[Effect]]:
    decision = decide_lane(
        event.order_state, event.stations, lambda lane, st: has_lane(point, lane, st)
    )
    effects: list[Effect] = [
        Command(
            point.device,
            "route",
            {"tote": event.code, "lane": decision.lane, "station": decision.station},
            subject=event.order_id or event.code,
        )
    ]
    if event.tote:
        effects.append(
            SaveTote(
                event.code,
                event.order_id,
                TOTE_STATE_FOR_LANE.get(decision.lane, ToteState.EXCEPTION),
                decision.station,
            )
        )
    effects.append(
        Record(
            "route",
            decision.lane != "exception",
            event.order_id,
            event.device,
            {
                "station": decision.station,
                "tote": event.code,
                "lane": decision.lane,
                "reason": decision.reason,
                "point": event.point,
            },
        )
    )
    return point, effects
