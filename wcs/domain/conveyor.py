"""Where a tote goes at a divert point (design §1 steps 4-6).

picked -> QC; QC passed -> the least-loaded available pack station; packed or
allocated -> outbound; anything unknown, failed or in an unexpected state -> the
exception lane. Only lanes the diverter actually has are chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wcs.domain.states import OrderState


@dataclass(frozen=True, slots=True)
class PackStation:
    id: str
    available: bool
    load: int  # totes routed to it and not packed yet


@dataclass(frozen=True, slots=True)
class LaneDecision:
    lane: str
    station: str | None
    reason: str


EXCEPTION = "exception"


def decide_lane(
    order_state: str | None,
    stations: Sequence[PackStation],
    has_lane: Callable[[str, str | None], bool],
) -> LaneDecision:
    """``has_lane(lane, station)`` says whether this diverter can send there."""

    def to_exception(reason: str) -> LaneDecision:
        return LaneDecision(EXCEPTION, None, reason)

    if order_state is None:
        return to_exception("unknown tote or parcel")
    if order_state == OrderState.PICKED:
        if has_lane("qc", None):
            return LaneDecision("qc", None, "picked, to QC")
        return to_exception("picked but this point has no QC lane")
    if order_state == OrderState.QC_PASSED:
        candidates = sorted(
            (s for s in stations if s.available and has_lane("pack", s.id)),
            key=lambda s: (s.load, s.id),
        )
        if candidates:
            best = candidates[0]
            return LaneDecision("pack", best.id, f"QC passed, to pack station {best.id}")
        if has_lane("pack", None) and not stations:
            return LaneDecision("pack", None, "QC passed, to packing")
        return to_exception("QC passed but no pack station is available")
    if order_state in (OrderState.PACKED, OrderState.ALLOCATED):
        if has_lane("outbound", None):
            return LaneDecision("outbound", None, "packed, to outbound")
        return to_exception("packed but this point has no outbound lane")
    return to_exception(f"order is '{order_state}', not routable")
