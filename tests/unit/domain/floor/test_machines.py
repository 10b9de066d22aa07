"""The floor's transition tables: complete, reachable, and enforced by ``step``."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

import pytest

from wcs.domain.floor.machines import (
    ALL_TABLES,
    BATCH_MOVES,
    CHECK_MOVES,
    COUNT_MOVES,
    MOVE_MOVES,
    PACKAGE_MOVES,
    TASK_MOVES,
    TOTE_MOVES,
    BatchState,
    CheckState,
    CountState,
    IllegalFloorMove,
    MoveState,
    PackageState,
    TaskState,
    ToteState,
    step,
)

INITIAL: dict[str, StrEnum] = {
    "task": TaskState.OPEN,
    "batch": BatchState.OPEN,
    "tote": ToteState.FREE,
    "check": CheckState.COUNTING,
    "package": PackageState.WEIGHING,
    "count": CountState.OPEN,
    "move": MoveState.OPEN,
}
FINAL: dict[str, set[StrEnum]] = {
    "task": {TaskState.DONE, TaskState.SHORT, TaskState.CANCELLED},
    "batch": {BatchState.DONE},
    "tote": set(),  # totes are reused: none is final
    "check": {CheckState.PASSED, CheckState.FAILED},
    "package": {PackageState.PACKED, PackageState.REJECTED},
    "count": {CountState.DONE, CountState.CANCELLED},
    "move": {MoveState.DONE, MoveState.SHORT, MoveState.CANCELLED},
}


@pytest.mark.parametrize("name", sorted(ALL_TABLES))
def test_every_state_has_a_row_and_only_its_own_states(name: str) -> None:
    table = ALL_TABLES[name]
    kind = type(INITIAL[name])
    assert set(table) == set(kind)
    for targets in table.values():
        assert targets <= set(kind)


@pytest.mark.parametrize("name", sorted(ALL_TABLES))
def test_every_state_is_reachable_and_only_final_ones_are_dead_ends(name: str) -> None:
    table = ALL_TABLES[name]
    seen = {INITIAL[name]}
    frontier = [INITIAL[name]]
    while frontier:
        for nxt in table[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(table)
    assert {s for s, targets in table.items() if not targets} == FINAL[name]


def test_tables_are_the_named_ones() -> None:
    assert ALL_TABLES == {
        "task": TASK_MOVES,
        "batch": BATCH_MOVES,
        "tote": TOTE_MOVES,
        "check": CHECK_MOVES,
        "package": PACKAGE_MOVES,
        "count": COUNT_MOVES,
        "move": MOVE_MOVES,
    }


def test_step_allows_exactly_the_table() -> None:
    for table in ALL_TABLES.values():
        for src, targets in table.items():
            for dst in table:
                if dst in targets:
                    assert step(table, "thing", src, dst) == dst
                else:
                    with pytest.raises(IllegalFloorMove, match=f"thing: {src} -> {dst}"):
                        step(table, "thing", src, dst)


@pytest.mark.parametrize(
    ("table", "src", "dst"),
    [
        (TASK_MOVES, TaskState.OPEN, TaskState.DONE),  # a task is lit before it is picked
        (TASK_MOVES, TaskState.DONE, TaskState.LIT),
        (TASK_MOVES, TaskState.SHORT, TaskState.OPEN),
        (BATCH_MOVES, BatchState.DONE, BatchState.ACTIVE),
        (TOTE_MOVES, ToteState.FREE, ToteState.QC),  # a free tote holds nothing to check
        (TOTE_MOVES, ToteState.PICKING, ToteState.FREE),  # picked units are not dropped
        (CHECK_MOVES, CheckState.FAILED, CheckState.PASSED),
        (PACKAGE_MOVES, PackageState.WEIGHING, PackageState.PACKED),  # no label unseen
        (PACKAGE_MOVES, PackageState.REJECTED, PackageState.LABELLING),
        (COUNT_MOVES, CountState.DONE, CountState.RECOUNT),  # a booked count stays booked
        (COUNT_MOVES, CountState.RECOUNT, CountState.COUNTING),  # recounts: another person
        (MOVE_MOVES, MoveState.OPEN, MoveState.DONE),  # units move only once it is shown
        (MOVE_MOVES, MoveState.SHORT, MoveState.ACTIVE),
    ],
)
def test_moves_the_floor_must_never_make(
    table: Mapping[StrEnum, frozenset[StrEnum]], src: StrEnum, dst: StrEnum
) -> None:
    with pytest.raises(IllegalFloorMove):
        step(table, "x", src, dst)
