"""The order state machine as one table.

Everything that needs to know which moves are legal reads ``TRANSITIONS``: the
domain's ``transition()``, the API's error messages, the generated flow diagram on
the status page and the operator manuals. Nothing else lists transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from wcs.i18n.markers import N_


class OrderState(StrEnum):
    RECEIVED = "received"
    VALIDATED = "validated"
    EXCEPTION = "exception"
    BACKORDERED = "backordered"
    RESERVED = "reserved"
    PICK_PLANNED = "pick_planned"
    PICKING = "picking"
    PICKED = "picked"
    QC_PASSED = "qc_passed"
    QC_FAILED = "qc_failed"
    PACKING = "packing"
    PACKED = "packed"
    ALLOCATED = "allocated"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    DELAYED = "delayed"
    DAMAGED = "damaged"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ReturnState(StrEnum):
    """After-sales runs per order line, on its own small machine."""

    RETURN_REQUESTED = "return_requested"
    RETURN_IN_TRANSIT = "return_in_transit"
    RETURN_RECEIVED = "return_received"
    INSPECTED = "inspected"
    REFUNDED = "refunded"
    EXCHANGED = "exchanged"
    REJECTED = "rejected"


Kind = Literal["flow", "contingency", "cancel"]
Stage = Literal[
    "intake", "reservation", "picking", "qc", "packing", "outbound", "delivery", "after_sales"
]


@dataclass(frozen=True, slots=True)
class Transition:
    src: str
    dst: str
    label: str
    kind: Kind = "flow"


S = OrderState
R = ReturnState

# The happy path first, then contingencies; cancellations are added below.
_ORDER_MOVES: tuple[Transition, ...] = (
    Transition(S.RECEIVED, S.VALIDATED, N_("checks pass")),
    Transition(S.RECEIVED, S.EXCEPTION, N_("invalid order"), "contingency"),
    Transition(S.VALIDATED, S.RESERVED, N_("stock reserved")),
    Transition(S.VALIDATED, S.BACKORDERED, N_("shortage"), "contingency"),
    Transition(S.BACKORDERED, S.RESERVED, N_("stock arrived")),
    Transition(S.RESERVED, S.PICK_PLANNED, N_("wave released")),
    # A stock count found fewer units than were reserved and none elsewhere.
    Transition(S.RESERVED, S.BACKORDERED, N_("count found fewer, none elsewhere"), "contingency"),
    # A stock count took its units: the order leaves its batch (not begun) to be planned again.
    Transition(S.PICK_PLANNED, S.RESERVED, N_("re-planned after a count"), "contingency"),
    Transition(S.PICK_PLANNED, S.PICKING, N_("first pick")),
    # The first task confirmed short (nothing picked yet) with no stock elsewhere.
    Transition(S.PICK_PLANNED, S.EXCEPTION, N_("short pick, no stock elsewhere"), "contingency"),
    Transition(S.PICKING, S.PICKED, N_("all lines picked")),
    Transition(S.PICKING, S.EXCEPTION, N_("short pick, no stock elsewhere"), "contingency"),
    Transition(S.PICKED, S.QC_PASSED, N_("QC pass")),
    Transition(S.PICKED, S.QC_FAILED, N_("QC fail"), "contingency"),
    Transition(S.QC_FAILED, S.PICKING, N_("re-pick"), "contingency"),
    Transition(S.QC_FAILED, S.EXCEPTION, N_("damage write-off"), "contingency"),
    Transition(S.QC_PASSED, S.PACKING, N_("at pack station")),
    Transition(S.PACKING, S.PACKED, N_("weight ok, label scanned")),
    Transition(S.PACKING, S.PICKED, N_("weight mismatch, back to QC"), "contingency"),
    Transition(S.PACKED, S.ALLOCATED, N_("carrier allocated")),
    Transition(S.ALLOCATED, S.SHIPPED, N_("handed to carrier")),
    Transition(S.SHIPPED, S.IN_TRANSIT, N_("carrier scan")),
    Transition(S.SHIPPED, S.OUT_FOR_DELIVERY, N_("out for delivery")),
    Transition(S.IN_TRANSIT, S.OUT_FOR_DELIVERY, N_("out for delivery")),
    Transition(S.OUT_FOR_DELIVERY, S.DELIVERED, N_("proof of delivery")),
    Transition(S.DELIVERED, S.CLOSED, N_("customer sign-off or timeout")),
    Transition(S.OUT_FOR_DELIVERY, S.DELIVERY_FAILED, N_("nobody home, refused"), "contingency"),
    Transition(S.DELIVERY_FAILED, S.OUT_FOR_DELIVERY, N_("redelivery"), "contingency"),
    Transition(S.DELIVERY_FAILED, S.IN_TRANSIT, N_("back to depot"), "contingency"),
    Transition(S.SHIPPED, S.DELAYED, N_("late"), "contingency"),
    Transition(S.IN_TRANSIT, S.DELAYED, N_("late"), "contingency"),
    Transition(S.OUT_FOR_DELIVERY, S.DELAYED, N_("late"), "contingency"),
    Transition(S.DELAYED, S.IN_TRANSIT, N_("moving again"), "contingency"),
    Transition(S.DELAYED, S.OUT_FOR_DELIVERY, N_("out for delivery"), "contingency"),
    Transition(S.SHIPPED, S.DAMAGED, N_("damaged in transit"), "contingency"),
    Transition(S.IN_TRANSIT, S.DAMAGED, N_("damaged in transit"), "contingency"),
    Transition(S.OUT_FOR_DELIVERY, S.DAMAGED, N_("damaged in transit"), "contingency"),
    Transition(S.DELAYED, S.DAMAGED, N_("damaged in transit"), "contingency"),
    Transition(S.DAMAGED, S.CLOSED, N_("claim filed, reshipped"), "contingency"),
    Transition(S.EXCEPTION, S.VALIDATED, N_("corrected by customer service"), "contingency"),
)

# "cancelled from any state before shipped releases reservations"
CANCELLABLE: frozenset[str] = frozenset(
    {
        S.RECEIVED,
        S.VALIDATED,
        S.EXCEPTION,
        S.BACKORDERED,
        S.RESERVED,
        S.PICK_PLANNED,
        S.PICKING,
        S.PICKED,
        S.QC_PASSED,
        S.QC_FAILED,
        S.PACKING,
        S.PACKED,
        S.ALLOCATED,
    }
)

TRANSITIONS: tuple[Transition, ...] = _ORDER_MOVES + tuple(
    Transition(src, S.CANCELLED, N_("cancelled"), "cancel") for src in sorted(CANCELLABLE)
)

RETURN_TRANSITIONS: tuple[Transition, ...] = (
    Transition(R.RETURN_REQUESTED, R.RETURN_IN_TRANSIT, N_("return label used")),
    Transition(R.RETURN_IN_TRANSIT, R.RETURN_RECEIVED, N_("received at returns desk")),
    Transition(R.RETURN_REQUESTED, R.RETURN_RECEIVED, N_("brought in person")),
    Transition(R.RETURN_RECEIVED, R.INSPECTED, N_("inspected and graded")),
    Transition(R.INSPECTED, R.REFUNDED, N_("refund paid")),
    Transition(R.INSPECTED, R.EXCHANGED, N_("replacement ordered")),
    Transition(R.INSPECTED, R.REJECTED, N_("return refused"), "contingency"),
)

TERMINAL: frozenset[str] = frozenset({S.CLOSED, S.CANCELLED})
RETURN_TERMINAL: frozenset[str] = frozenset({R.REFUNDED, R.EXCHANGED, R.REJECTED})
INITIAL = S.RECEIVED

# Which stage of the process each state belongs to (manuals, KPIs, feedback tags).
STAGE_OF: dict[str, Stage] = {
    S.RECEIVED: "intake",
    S.VALIDATED: "intake",
    S.EXCEPTION: "intake",
    S.BACKORDERED: "reservation",
    S.RESERVED: "reservation",
    S.PICK_PLANNED: "picking",
    S.PICKING: "picking",
    S.PICKED: "qc",
    S.QC_PASSED: "qc",
    S.QC_FAILED: "qc",
    S.PACKING: "packing",
    S.PACKED: "packing",
    S.ALLOCATED: "outbound",
    S.SHIPPED: "delivery",
    S.IN_TRANSIT: "delivery",
    S.OUT_FOR_DELIVERY: "delivery",
    S.DELIVERED: "delivery",
    S.DELIVERY_FAILED: "delivery",
    S.DELAYED: "delivery",
    S.DAMAGED: "delivery",
    S.CLOSED: "after_sales",
    S.CANCELLED: "intake",
}


def _index(moves: tuple[Transition, ...]) -> dict[str, dict[str, Transition]]:
    table: dict[str, dict[str, Transition]] = {}
    for move in moves:
        table.setdefault(move.src, {})[move.dst] = move
    return table


_ORDER_INDEX = _index(TRANSITIONS)
_RETURN_INDEX = _index(RETURN_TRANSITIONS)


def allowed_targets(state: str) -> tuple[str, ...]:
    return tuple(_ORDER_INDEX.get(state, {}))


def find_transition(src: str, dst: str) -> Transition | None:
    return _ORDER_INDEX.get(src, {}).get(dst)


def find_return_transition(src: str, dst: str) -> Transition | None:
    return _RETURN_INDEX.get(src, {}).get(dst)


def allowed_return_targets(state: str) -> tuple[str, ...]:
    return tuple(_RETURN_INDEX.get(state, {}))
