"""What a floor decision asks the world to do.

Plain values: the controller's edge writes them to the database in the batch's
transaction (rows are written as absolute values from the owner's state, so writing
one twice changes nothing), and sends the commands after commit. Two kinds ask the
edge for a fact it must read first (``Reallocate``, ``NextBatch``, ``NextSscc``):
the edge answers with a follow-up event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wcs.domain.floor.counts import Count


@dataclass(frozen=True, slots=True)
class Command:
    """A device command (``wcs.contract.payloads.COMMAND_MODELS``), sent after commit."""

    device: str
    name: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    subject: str | None = None  # the order, tote or package it is about


@dataclass(frozen=True, slots=True)
class Record:
    """One line of the floor's activity log (pick accuracy, station KPIs, audits)."""

    kind: str
    ok: bool = True
    order_id: str | None = None
    device_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Alert:
    code: str
    severity: str
    message: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class OrderMove:
    """An order state change through the order table (``wcs.domain.states``).

    ``src`` guards it: the move happens only from that state (None: from whatever
    state the order is in, if the table allows it)."""

    order_id: str
    src: str | None
    dst: str
    reason: str


# --- rows the owner's state projects ------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaveTask:
    task_id: int
    picked: int
    state: str
    panel: str | None
    slot: int | None


@dataclass(frozen=True, slots=True)
class PlaceTask:
    """A task planned into the batch after it started (a short pick's replacement):
    its place in the walking order."""

    task_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class SaveBatch:
    batch_id: str
    state: str
    station: str | None = None


@dataclass(frozen=True, slots=True)
class Shelf:
    """Units leave (negative) a location's stock: ``kind`` names the ledger entry.

    ``reserved`` moves with ``on_hand`` for units that were reserved there."""

    sku: str
    location: str
    qty: int
    kind: str  # pick, shortage
    order_id: str | None


@dataclass(frozen=True, slots=True)
class LinePicked:
    line_id: int
    qty: int


@dataclass(frozen=True, slots=True)
class ReservationPicked:
    """The reservation of a finished task: its units are in a tote now. ``qty`` set:
    only that many were found (0: the reservation is released)."""

    reservation_id: int
    qty: int | None = None


@dataclass(frozen=True, slots=True)
class SaveTote:
    code: str
    order_id: str | None
    state: str
    station: str | None


@dataclass(frozen=True, slots=True)
class MoveTotes:
    """Every tote of an order in one of ``src`` states moves to ``dst``."""

    order_id: str
    src: tuple[str, ...]
    dst: str
    station: str | None = None
    keep_station: bool = True


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel an order on the owner's word: reservations released (units in totes back
    to their shelves), open replenishment requests closed."""

    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class SaveCheck:
    order_id: str
    station: str | None
    scanned: Mapping[str, int]
    packaging_ok: bool | None
    appearance_ok: bool | None
    result: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class SavePackage:
    id: str
    order_id: str
    station: str
    carton: str
    expected_g: float
    measured_g: float | None
    sscc: str | None
    printer: str | None
    state: str
    document: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TraceUnit:
    """A unit picked with traceable label data (lot, date, serial): kept for recalls."""

    order_id: str
    sku: str
    gtin: str | None
    lot: str | None
    use_by: date | None
    serial: str | None
    station: str
    device: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The event itself goes to ``dlq`` with this reason (a wrong GS1 label: where
    operations look), besides what the station did about it."""

    reason: str


@dataclass(frozen=True, slots=True)
class StationDown:
    station: str
    down: bool
    reason: str | None


# --- stock work: counts, adjustments, replenishment moves ------------------------------


@dataclass(frozen=True, slots=True)
class SaveCount:
    """A count's row as the owner's decision left it (``counted``: the units found by
    the count just keyed, kept for the audit)."""

    count_id: int
    state: str
    first_delta: int | None
    first_by: str | None
    last_delta: int | None
    last_by: str | None
    result: str | None
    counted: int | None
    note: str | None


@dataclass(frozen=True, slots=True)
class Adjust:
    """A counted difference booked: ``delta`` units on the pile (never below what is
    reserved there: the reservations in ``release`` are released first and their
    orders planned again), a ``stock_moves`` row and an audit row."""

    count_id: int
    sku: str
    location: str
    delta: int
    book: int
    counted: int
    reason: str
    counted_by: str
    accepted_by: str
    release: tuple[int, ...]
    value_minor: int | None


@dataclass(frozen=True, slots=True)
class SaveMove:
    move_id: int
    state: str
    moved: int


@dataclass(frozen=True, slots=True)
class Transfer:
    """``qty`` units moved from a reserve pile to a face; the waiting orders'
    reservations go with them (``wcs.domain.floor.replenish.carry``)."""

    move_id: int
    sku: str
    src: str
    dst: str
    qty: int


@dataclass(frozen=True, slots=True)
class NewCount:
    sku: str
    location: str
    reason: str


@dataclass(frozen=True, slots=True)
class NewMove:
    sku: str
    src: str
    dst: str
    qty: int
    reason: str


# --- facts the edge must fetch: it answers with a follow-up event ---------------------


@dataclass(frozen=True, slots=True)
class OpenWork:
    """Open counts and moves (a pile with an open count gets no second one); answered
    with ``WorkOpened``: those the station itself carries out, ids drawn."""

    station: str
    counts: tuple[NewCount, ...] = ()
    moves: tuple[NewMove, ...] = ()


@dataclass(frozen=True, slots=True)
class LookForWork:
    """A pick station between batches: answered with ``WorkRead`` (its faces, their
    reserve, its open counts and moves, the count schedule's facts)."""

    station: str


@dataclass(frozen=True, slots=True)
class Judge:
    """A count finished at the station: answered with ``Keyed`` (the book now)."""

    count: Count
    qty: int
    by: str


@dataclass(frozen=True, slots=True)
class Reallocate:
    """Reserve ``qty`` of a short task's line elsewhere; answered with ``Reallocated``."""

    task_id: int
    order_id: str
    line_id: int
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class NextBatch:
    """The station is idle: activate its next open batch; answered with
    ``BatchStarted`` (or nothing when none waits)."""

    station: str


@dataclass(frozen=True, slots=True)
class NextSscc:
    """Draw the next SSCC serial for a package; answered with ``SsccDrawn``."""

    package_id: str


Effect = (
    Command
    | Record
    | Alert
    | OrderMove
    | SaveTask
    | PlaceTask
    | SaveBatch
    | Shelf
    | LinePicked
    | ReservationPicked
    | SaveTote
    | MoveTotes
    | CancelOrder
    | SaveCheck
    | SavePackage
    | StationDown
    | TraceUnit
    | DeadLetter
    | SaveCount
    | Adjust
    | SaveMove
    | Transfer
    | Reallocate
    | NextBatch
    | NextSscc
    | OpenWork
    | LookForWork
    | Judge
)
