"""The floor's small state machines, each as one table (like the order states).

Rows in the database carry these states; the floor domain moves them only through
``step``, so an illegal move is a bug found at once rather than a row that lies.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from wcs.errors import WcsError


class IllegalFloorMove(WcsError):
    """A floor object was asked to move where its table does not allow."""

    code = "illegal_floor_move"


class TaskState(StrEnum):
    """A pick task: units of one order line at one location."""

    OPEN = "open"  # planned, not shown yet
    LIT = "lit"  # its slot shows the units to take (or, without a slot, it is current)
    DONE = "done"  # every unit taken
    SHORT = "short"  # the shelf held fewer: the rest re-planned or the order excepted
    CANCELLED = "cancelled"  # its order was cancelled or excepted before it was done


class BatchState(StrEnum):
    """One cart round at a pick station."""

    OPEN = "open"  # released, waiting for its station
    ACTIVE = "active"  # the station works it
    DONE = "done"


class ToteState(StrEnum):
    FREE = "free"
    PICKING = "picking"  # bound to an order at a pick station
    TO_QC = "to_qc"
    QC = "qc"  # on a QC bench (counted, or passed and waiting to move on)
    TO_PACK = "to_pack"
    PACKING = "packing"
    TO_OUTBOUND = "to_outbound"
    OUTBOUND = "outbound"
    EXCEPTION = "exception"  # to be emptied by hand (cancelled, short, failed QC)


class CheckState(StrEnum):
    """A QC check of one order."""

    COUNTING = "counting"
    PASSED = "passed"
    FAILED = "failed"


class PackageState(StrEnum):
    WEIGHING = "weighing"
    LABELLING = "labelling"  # weight fine, label sent to a printer
    AWAITING_SCAN = "awaiting_scan"  # label printed, its scan confirms the parcel
    PACKED = "packed"
    REJECTED = "rejected"  # weight outside tolerance: back to QC


class CountState(StrEnum):
    """A count of one SKU at one location (blind: the counter is never shown the book)."""

    OPEN = "open"  # to be counted
    COUNTING = "counting"  # its slot is lit at the station: location scan, units, confirm
    RECOUNT = "recount"  # the difference was above the threshold: someone else counts again
    REVIEW = "review"  # the counts disagree, or the difference cannot be booked yet
    DONE = "done"  # matched, or its difference booked
    CANCELLED = "cancelled"


class MoveState(StrEnum):
    """A replenishment move: units from a reserve location to a pick face."""

    OPEN = "open"
    ACTIVE = "active"  # the face's slot shows the units to bring
    DONE = "done"  # every unit moved
    SHORT = "short"  # the reserve held fewer: what was found moved, the reserve counted
    CANCELLED = "cancelled"


TASK_MOVES: Mapping[TaskState, frozenset[TaskState]] = {
    TaskState.OPEN: frozenset({TaskState.LIT, TaskState.CANCELLED}),
    TaskState.LIT: frozenset({TaskState.DONE, TaskState.SHORT, TaskState.CANCELLED}),
    TaskState.DONE: frozenset(),
    TaskState.SHORT: frozenset(),
    TaskState.CANCELLED: frozenset(),
}

BATCH_MOVES: Mapping[BatchState, frozenset[BatchState]] = {
    BatchState.OPEN: frozenset({BatchState.ACTIVE, BatchState.DONE}),
    BatchState.ACTIVE: frozenset({BatchState.DONE}),
    BatchState.DONE: frozenset(),
}

TOTE_MOVES: Mapping[ToteState, frozenset[ToteState]] = {
    ToteState.FREE: frozenset({ToteState.PICKING}),
    ToteState.PICKING: frozenset({ToteState.TO_QC, ToteState.EXCEPTION}),
    # A tote on its way may be diverted anywhere the conveyor decides, or excepted.
    ToteState.TO_QC: frozenset(
        {ToteState.QC, ToteState.TO_QC, ToteState.TO_PACK, ToteState.TO_OUTBOUND}
        | {ToteState.EXCEPTION, ToteState.FREE}
    ),
    ToteState.QC: frozenset(
        {ToteState.QC, ToteState.TO_QC, ToteState.TO_PACK, ToteState.TO_OUTBOUND}
        | {ToteState.PACKING, ToteState.EXCEPTION, ToteState.FREE}
    ),
    ToteState.TO_PACK: frozenset(
        {ToteState.PACKING, ToteState.TO_PACK, ToteState.TO_QC, ToteState.TO_OUTBOUND}
        | {ToteState.EXCEPTION, ToteState.FREE}
    ),
    ToteState.PACKING: frozenset(
        {ToteState.FREE, ToteState.TO_QC, ToteState.EXCEPTION, ToteState.TO_PACK}
    ),
    ToteState.TO_OUTBOUND: frozenset(
        {ToteState.OUTBOUND, ToteState.TO_QC, ToteState.TO_PACK, ToteState.TO_OUTBOUND}
        | {ToteState.EXCEPTION, ToteState.FREE}
    ),
    ToteState.OUTBOUND: frozenset({ToteState.FREE, ToteState.EXCEPTION}),
    ToteState.EXCEPTION: frozenset({ToteState.FREE, ToteState.EXCEPTION}),
}

CHECK_MOVES: Mapping[CheckState, frozenset[CheckState]] = {
    CheckState.COUNTING: frozenset({CheckState.PASSED, CheckState.FAILED}),
    CheckState.PASSED: frozenset(),
    CheckState.FAILED: frozenset(),
}

PACKAGE_MOVES: Mapping[PackageState, frozenset[PackageState]] = {
    PackageState.WEIGHING: frozenset({PackageState.LABELLING, PackageState.REJECTED}),
    PackageState.LABELLING: frozenset({PackageState.AWAITING_SCAN, PackageState.PACKED}),
    PackageState.AWAITING_SCAN: frozenset({PackageState.PACKED}),
    PackageState.PACKED: frozenset(),
    PackageState.REJECTED: frozenset(),
}

COUNT_MOVES: Mapping[CountState, frozenset[CountState]] = {
    # Keyed over the API without being lit first, or lit at the station.
    CountState.OPEN: frozenset(
        {CountState.COUNTING, CountState.RECOUNT, CountState.REVIEW, CountState.DONE}
        | {CountState.CANCELLED}
    ),
    CountState.COUNTING: frozenset(
        {CountState.RECOUNT, CountState.REVIEW, CountState.DONE, CountState.CANCELLED}
    ),
    CountState.RECOUNT: frozenset({CountState.REVIEW, CountState.DONE, CountState.CANCELLED}),
    CountState.REVIEW: frozenset({CountState.DONE, CountState.RECOUNT, CountState.CANCELLED}),
    CountState.DONE: frozenset(),
    CountState.CANCELLED: frozenset(),
}

MOVE_MOVES: Mapping[MoveState, frozenset[MoveState]] = {
    MoveState.OPEN: frozenset({MoveState.ACTIVE, MoveState.CANCELLED}),
    MoveState.ACTIVE: frozenset({MoveState.DONE, MoveState.SHORT, MoveState.CANCELLED}),
    MoveState.DONE: frozenset(),
    MoveState.SHORT: frozenset(),
    MoveState.CANCELLED: frozenset(),
}

S = TypeVar("S", bound=StrEnum)


def step(table: Mapping[S, frozenset[S]], what: str, src: S, dst: S) -> S:
    """``dst`` if ``table`` allows ``src -> dst``; IllegalFloorMove otherwise."""
    if dst not in table[src]:
        raise IllegalFloorMove(f"{what}: {src} -> {dst} is not a legal move")
    return dst


ALL_TABLES: Mapping[str, Mapping[StrEnum, frozenset[StrEnum]]] = {
    "task": TASK_MOVES,  # type: ignore[dict-item]
    "batch": BATCH_MOVES,  # type: ignore[dict-item]
    "tote": TOTE_MOVES,  # type: ignore[dict-item]
    "check": CHECK_MOVES,  # type: ignore[dict-item]
    "package": PACKAGE_MOVES,  # type: ignore[dict-item]
    "count": COUNT_MOVES,  # type: ignore[dict-item]
    "move": MOVE_MOVES,  # type: ignore[dict-item]
}
