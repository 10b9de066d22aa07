"""Pick station rules, one table or case per rule (``wcs.domain.floor.pick``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from tests.unit.domain.floor.legal import of
from tests.unit.domain.floor.pickfloor import (
    CODE,
    CODES,
    PANEL,
    PANEL2,
    SLOTS,
    STATION,
    Shown,
    clear,
    commands,
    light,
    red,
    run,
    started,
    station,
    task,
)
from wcs.domain.floor.effects import (
    Alert,
    CancelOrder,
    Effect,
    LinePicked,
    MoveTotes,
    NextBatch,
    OrderMove,
    PlaceTask,
    Reallocate,
    Record,
    ReservationPicked,
    SaveBatch,
    SaveTask,
    SaveTote,
    Shelf,
)
from wcs.domain.floor.machines import BatchState, TaskState, ToteState
from wcs.domain.floor.pick import (
    ALL_PICKED,
    CAUSES,
    FIRST_UNIT,
    BatchStarted,
    Cancel,
    Confirm,
    Idle,
    ItemScan,
    NoStock,
    PickStation,
    Reallocated,
    Repaint,
    ToteScan,
    repaint_all,
)
from wcs.domain.states import OrderState

LIT, OPEN = TaskState.LIT, TaskState.OPEN


def two_orders() -> PickStation:
    """B1: stop 1 lights O1's 2 x SKU-A (slot 0) and O2's 1 x SKU-B (slot 1); stop 2 is
    O1's 1 x SKU-C (slot 2). O2 has no tote yet."""
    state, _ = started(
        [
            task(1, 1, "O1", "SKU-A", 2, 0),
            task(2, 1, "O2", "SKU-B", 1, 1),
            task(3, 2, "O1", "SKU-C", 1, 2),
        ],
        totes={"O1": "T-1"},
    )
    return state


def states(state: PickStation) -> dict[int, tuple[TaskState, int]]:
    return {t.id: (t.state, t.picked) for t in state.tasks}


# --- starting a batch and lighting stops ----------------------------------------------


def test_batch_start_lights_the_first_stop_only() -> None:
    state, effects = started(
        [
            task(3, 2, "O1", "SKU-C", 1, 2),
            task(1, 1, "O1", "SKU-A", 2, 0),
            task(2, 1, "O2", "SKU-B", 1, 1),
        ]
    )
    assert effects[0] == SaveBatch("B1", BatchState.ACTIVE, STATION)
    assert of(SaveTask, effects) == [
        SaveTask(1, 0, LIT, PANEL, 0),
        SaveTask(2, 0, LIT, PANEL, 1),
    ]
    assert commands(effects) == [light(0, 2), light(1, 1)]
    assert [t.id for t in state.tasks] == [1, 2, 3]  # walking order
    assert states(state) == {1: (LIT, 0), 2: (LIT, 0), 3: (OPEN, 0)}
    assert state.batch == "B1" and state.codes == CODES


def test_a_slot_shows_one_order_at_a_time() -> None:
    # O1 and O2 both take SKU-A from the location behind slot 0 at the same stop.
    state, effects = started(
        [
            task(1, 1, "O1", "SKU-A", 2, 0),
            task(2, 1, "O2", "SKU-A", 3, 0),
            task(4, 1, "O2", "SKU-B", 1, 1),
        ]
    )
    assert commands(effects) == [light(0, 2), light(1, 1)]
    assert states(state)[2] == (OPEN, 0)  # waits for slot 0
    for _ in range(2):
        state, effects = run(state, ItemScan("S1", CODE["SKU-A"]))
    # Slot 0 is cleared for O1, then shows O2's units.
    assert commands(effects) == [clear(0), light(0, 3)]
    assert states(state)[2] == (LIT, 0)


def test_a_task_without_a_light_is_current_but_shows_nothing() -> None:
    state, effects = started([task(1, 1, "O1", "SKU-A", 1, None)])
    assert states(state) == {1: (LIT, 0)}
    assert of(SaveTask, effects) == [SaveTask(1, 0, LIT, None, None)]
    assert commands(effects) == []
    state, effects = run(state, ItemScan("S1", "SKU-A"))
    assert of(SaveTask, effects)[-1] == SaveTask(1, 1, TaskState.DONE, None, None)
    assert commands(effects) == []


def test_next_stop_lights_when_the_current_one_is_done() -> None:
    state = two_orders()
    state, _ = run(state, ToteScan("S1", "T-2", None))
    state, _ = run(state, ItemScan("S1", CODE["SKU-A"]))
    state, effects = run(state, ItemScan("S1", CODE["SKU-A"]))
    assert commands(effects) == [clear(0)]  # O2's slot 1 still lit: same stop
    state, effects = run(state, ItemScan("S1", CODE["SKU-B"]))
    assert commands(effects) == [clear(1), light(2, 1)]
    assert states(state) == {3: (LIT, 0)}


# --- mispicks ----------------------------------------------------------------------------


def _after_b_done() -> PickStation:
    state = two_orders()
    state, _ = run(state, ToteScan("S1", "T-2", None))
    state, _ = run(state, ItemScan("S1", "SKU-B"))
    return state


MISPICKS = [
    # (cause, how to get there, code scanned, red blinks expected)
    ("no_batch", station, CODE["SKU-A"], []),
    (
        "nothing_lit",
        lambda: station(batch="B1", codes=CODES, tasks=(task(1, 1, "O1", "SKU-A", 1, 0),)),
        CODE["SKU-A"],
        [],
    ),
    ("wrong_item", two_orders, CODE["SKU-D"], [red(0, 2), red(1, 1)]),
    ("wrong_item", two_orders, "NOT-A-CODE", [red(0, 2), red(1, 1)]),
    ("ahead", two_orders, CODE["SKU-C"], [red(0, 2), red(1, 1)]),
    ("past_end", _after_b_done, CODE["SKU-B"], [red(0, 2)]),
    ("no_tote", two_orders, CODE["SKU-B"], [red(0, 2), red(1, 1)]),
]


@pytest.mark.parametrize(("cause", "given", "code", "blinks"), MISPICKS)
def test_a_mispick_is_refused_and_names_its_cause(
    cause: str, given: Callable[[], PickStation], code: str, blinks: list[Shown]
) -> None:
    before = given()
    after, effects = run(before, ItemScan("S1", code))
    assert cause in CAUSES
    [record] = of(Record, effects)
    assert record.kind == "mispick" and not record.ok
    assert record.detail["cause"] == cause
    assert record.detail["sku"] == before.codes.get(code)  # the batch knows its items
    assert record.detail["code"] == code
    assert record.device_id == "S1" and record.detail["station"] == STATION
    # Nothing is counted: no task, order or shelf moves; the lit slots blink red.
    assert after == before
    assert commands(effects) == blinks
    assert len(effects) == 1 + len(blinks)


def test_no_tote_names_the_order_to_bind() -> None:
    _, effects = run(two_orders(), ItemScan("S1", "SKU-B"))
    assert "O2" in of(Record, effects)[0].detail["reason"]


def test_a_long_code_is_cut_in_the_log() -> None:
    _, effects = run(two_orders(), ItemScan("S1", "X" * 500))
    assert of(Record, effects)[0].detail["code"] == "X" * 64


def test_a_confirm_for_an_order_without_tote_is_refused() -> None:
    before = two_orders()
    after, effects = run(before, Confirm(PANEL, 1, 1))
    assert after == before
    [record] = of(Record, effects)
    assert record.detail["cause"] == "no_tote"
    assert commands(effects) == [red(0, 2), red(1, 1)]


def test_a_confirm_on_a_dark_slot_is_stray() -> None:
    before = two_orders()
    for confirm in (Confirm(PANEL, 2, 1), Confirm(PANEL2, 0, 1), Confirm("OTHER", 0, 1)):
        after, effects = run(before, confirm)
        assert after == before
        assert effects == [
            Record(
                "stray_confirm",
                False,
                None,
                confirm.device,
                {"station": STATION, "slot": confirm.slot},
            )
        ]


# --- counting units ----------------------------------------------------------------------


def test_the_display_counts_down_and_the_first_unit_starts_the_order() -> None:
    state = two_orders()
    state, effects = run(state, ItemScan("S1", CODE["SKU-A"]))
    assert effects[:3] == [
        SaveTask(1, 1, LIT, PANEL, 0),
        Record(
            "pick",
            True,
            "O1",
            "S1",
            # The label's GTIN goes with the pick (an EAN-13 read as GTIN-14).
            {
                "station": STATION,
                "sku": "SKU-A",
                "qty": 1,
                "location": "L-1",
                "gtin": "04006381333931",
            },
        ),
        OrderMove("O1", OrderState.PICK_PLANNED, OrderState.PICKING, FIRST_UNIT),
    ]
    assert commands(effects[3:]) == [light(0, 1)] and len(effects) == 4
    assert states(state)[1] == (LIT, 1)
    assert state.started == {"O1"}
    # The last unit ends the task; the order is started once only.
    state, effects = run(state, ItemScan("S1", CODE["SKU-A"]))
    assert of(OrderMove, effects) == []
    assert of(SaveTask, effects) == [
        SaveTask(1, 2, LIT, PANEL, 0),
        SaveTask(1, 2, TaskState.DONE, PANEL, 0),
    ]
    assert of(Shelf, effects) == [Shelf("SKU-A", "L-1", -2, "pick", "O1")]
    assert of(LinePicked, effects) == [LinePicked(10, 2)]
    assert of(ReservationPicked, effects) == [ReservationPicked(100, None)]
    assert commands(effects) == [clear(0)]
    assert 1 not in states(state)  # finished tasks leave the station's memory


@pytest.mark.parametrize(
    ("qty", "picked", "finished"),
    [(2, 2, TaskState.DONE), (5, 2, TaskState.DONE), (1, 1, None)],
)
def test_a_confirm_counts_at_most_what_is_left(
    qty: int, picked: int, finished: TaskState | None
) -> None:
    state, _ = started([task(1, 1, "O1", "SKU-A", 2, 0), task(2, 2, "O1", "SKU-B", 1, 1)])
    state, effects = run(state, Confirm(PANEL, 0, qty))
    [pick] = [r for r in of(Record, effects) if r.kind == "pick"]
    assert pick.detail["qty"] == min(qty, 2)
    saved = of(SaveTask, effects)
    assert saved[0] == SaveTask(1, picked, LIT, PANEL, 0)
    if finished is not None:
        assert saved[1] == SaveTask(1, picked, finished, PANEL, 0)
        assert commands(effects) == [clear(0), light(1, 1)]


def test_the_last_task_of_an_order_moves_it_to_picked_and_its_tote_to_qc() -> None:
    state = two_orders()
    state, _ = run(state, ToteScan("S1", "T-2", None))
    state, effects = run(state, ItemScan("S1", CODE["SKU-B"]))
    assert of(OrderMove, effects) == [
        OrderMove("O2", OrderState.PICK_PLANNED, OrderState.PICKING, FIRST_UNIT),
        OrderMove("O2", OrderState.PICKING, OrderState.PICKED, ALL_PICKED),
    ]
    assert of(MoveTotes, effects) == [MoveTotes("O2", (ToteState.PICKING,), ToteState.TO_QC)]
    assert "O2" not in state.totes
    # O1 still has work: it is not picked.
    state, effects = run(state, Confirm(PANEL, 0, 2))
    assert [m.dst for m in of(OrderMove, effects)] == [OrderState.PICKING]
    state, effects = run(state, ItemScan("S1", "SKU-C"))
    assert of(OrderMove, effects) == [
        OrderMove("O1", OrderState.PICKING, OrderState.PICKED, ALL_PICKED)
    ]


def test_an_order_begun_in_an_earlier_round_is_not_started_again() -> None:
    state, _ = started([task(1, 1, "O1", "SKU-A", 1, 0)], begun=frozenset({"O1"}))
    _, effects = run(state, ItemScan("S1", "SKU-A"))
    assert of(OrderMove, effects) == [
        OrderMove("O1", OrderState.PICKING, OrderState.PICKED, ALL_PICKED)
    ]


# --- the batch ends ------------------------------------------------------------------


def test_the_last_task_ends_the_batch_and_asks_for_the_next() -> None:
    state, _ = started([task(1, 1, "O1", "SKU-A", 1, 0)])
    state, effects = run(state, ItemScan("S1", "SKU-A"))
    assert effects[-2:] == [SaveBatch("B1", BatchState.DONE), NextBatch(STATION)]
    assert state == station(recent=("SKU-A",))


def test_an_idle_station_asks_for_work() -> None:
    state, effects = run(station(), Idle())
    assert effects == [NextBatch(STATION)]
    assert state == station()


def test_idle_lights_a_batch_taken_over_with_nothing_lit() -> None:
    taken = station(batch="B1", codes=CODES, tasks=(task(1, 1, "O1", "SKU-A", 3, 0, picked=1),))
    _, effects = run(taken, Idle())
    assert of(SaveTask, effects) == [SaveTask(1, 1, LIT, PANEL, 0)]
    assert commands(effects) == [light(0, 2)]  # what is left, not the task's whole qty


def test_a_batch_started_with_nothing_left_ends_at_once() -> None:
    # Every order of the batch was cancelled before the station took it.
    state, effects = run(station(), BatchStarted("B1", (), CODES, {}, frozenset()))
    assert of(SaveBatch, effects) == [
        SaveBatch("B1", BatchState.ACTIVE, STATION),
        SaveBatch("B1", BatchState.DONE),
    ]
    assert effects[-1] == NextBatch(STATION)
    assert state.batch is None


# --- short picks ---------------------------------------------------------------------


def _short() -> tuple[PickStation, list[Effect]]:
    """O1 confirms 1 of 3 x SKU-A at slot 0; O1 also has SKU-C at stop 2 (slot 2)."""
    state, _ = started(
        [
            task(1, 1, "O1", "SKU-A", 3, 0),
            task(2, 1, "O2", "SKU-B", 1, 1),
            task(3, 2, "O1", "SKU-C", 1, 2),
        ]
    )
    return run(state, Confirm(PANEL, 0, 1))


def test_a_short_confirm_writes_the_missing_units_off_and_asks_for_stock() -> None:
    state, effects = _short()
    assert [r.kind for r in of(Record, effects)] == ["pick", "short_pick"]
    assert of(Record, effects)[1].detail["missing"] == 2
    assert of(Shelf, effects) == [Shelf("SKU-A", "L-1", -2, "shortage", "O1")]
    assert effects[-1] == Reallocate(1, "O1", 10, "SKU-A", 2)
    # The task waits for the answer, lit, with the unit found.
    assert states(state)[1] == (LIT, 1)
    assert commands(effects) == []


def test_reallocated_units_are_appended_and_the_short_task_ends() -> None:
    state, _ = _short()
    new = (
        replace(task(7, 0, "O1", "SKU-A", 1, 3), location="L-7"),
        replace(task(8, 0, "O1", "SKU-A", 1, 0, panel=PANEL2), location="L-8"),
    )
    state, effects = run(state, Reallocated(1, new))
    # The new tasks' rows exist (the edge inserted them); they get their place.
    assert of(PlaceTask, effects) == [PlaceTask(7, 3), PlaceTask(8, 3)]
    assert of(SaveTask, effects)[0] == SaveTask(1, 1, TaskState.SHORT, PANEL, 0)
    assert of(Shelf, effects) == [Shelf("SKU-A", "L-1", -1, "pick", "O1")]
    assert of(LinePicked, effects) == [LinePicked(10, 1)]
    assert of(ReservationPicked, effects) == [ReservationPicked(100, 1)]
    assert of(OrderMove, effects) == []  # O1 has work again
    assert commands(effects) == [clear(0)]  # O2's SKU-B is still lit: same stop
    assert [(t.id, t.seq) for t in state.tasks] == [(2, 1), (3, 2), (7, 3), (8, 3)]
    # They come in walking order after everything else.
    state, _ = run(state, ItemScan("S1", "SKU-B"))
    state, effects = run(state, ItemScan("S1", "SKU-C"))
    assert commands(effects) == [clear(2), light(3, 1), light(0, 1, PANEL2)]


def test_a_short_of_nothing_found_releases_the_reservation() -> None:
    state, _ = started([task(1, 1, "O1", "SKU-A", 2, 0)])
    state, effects = run(state, Confirm(PANEL, 0, 0))
    assert [r.kind for r in of(Record, effects)] == ["short_pick"]
    assert of(OrderMove, effects) == []  # nothing picked: the order has not begun
    state, effects = run(state, Reallocated(1, (task(5, 0, "O1", "SKU-A", 2, 1),)))
    assert of(ReservationPicked, effects) == [ReservationPicked(100, 0)]
    assert of(Shelf, effects) == []
    assert of(LinePicked, effects) == []
    assert commands(effects) == [clear(0), light(1, 2)]


def test_no_stock_sends_the_order_to_exception_and_clears_its_other_slots() -> None:
    state, _ = started(
        [
            task(1, 1, "O1", "SKU-A", 3, 0),
            task(2, 1, "O2", "SKU-B", 1, 1),
            task(4, 1, "O1", "SKU-D", 2, 0, panel=PANEL2),
            task(3, 2, "O1", "SKU-C", 1, 2),
        ]
    )
    state, _ = run(state, Confirm(PANEL, 0, 1))
    state, effects = run(state, NoStock(1))
    [alert] = of(Alert, effects)
    assert alert.code == "short_pick" and alert.subject == "O1"
    assert "2 x SKU-A missing at L-1" in alert.message
    assert of(SaveTask, effects) == [
        SaveTask(4, 0, TaskState.CANCELLED, PANEL2, 0),
        SaveTask(3, 0, TaskState.CANCELLED, PANEL, 2),
        SaveTask(1, 1, TaskState.SHORT, PANEL, 0),
    ]
    assert of(OrderMove, effects) == [
        OrderMove("O1", None, OrderState.EXCEPTION, "short pick of SKU-A, no stock elsewhere")
    ]
    assert of(MoveTotes, effects) == [MoveTotes("O1", (ToteState.PICKING,), ToteState.EXCEPTION)]
    assert of(Shelf, effects) == [Shelf("SKU-A", "L-1", -1, "pick", "O1")]
    assert of(ReservationPicked, effects) == [ReservationPicked(100, 1)]
    assert commands(effects) == [clear(0, PANEL2), clear(0)]
    assert "O1" not in state.totes and "O1" not in state.started
    assert states(state) == {2: (LIT, 0)}


def test_an_answer_for_a_task_no_longer_here_changes_nothing() -> None:
    before = two_orders()
    for event in (Reallocated(99, (task(7, 0, "O1", "SKU-A", 1, 3),)), NoStock(99)):
        after, effects = run(before, event)
        assert (after, effects) == (before, [])


# --- cancel while picking -------------------------------------------------------------


def test_cancel_ends_the_orders_tasks_and_moves_on() -> None:
    state = two_orders()
    state, effects = run(state, Cancel("O1", "customer asked"))
    assert of(SaveTask, effects) == [
        SaveTask(1, 0, TaskState.CANCELLED, PANEL, 0),
        SaveTask(3, 0, TaskState.CANCELLED, PANEL, 2),
    ]
    assert of(CancelOrder, effects) == [CancelOrder("O1", "customer asked")]
    [move] = of(MoveTotes, effects)
    assert move.order_id == "O1" and move.dst == ToteState.EXCEPTION
    assert set(move.src) == set(ToteState) - {ToteState.FREE}
    assert commands(effects) == [clear(0)]
    assert "O1" not in state.totes
    assert states(state) == {2: (LIT, 0)}


def test_cancelling_the_last_order_ends_the_batch() -> None:
    state, _ = started([task(1, 1, "O1", "SKU-A", 2, 0), task(2, 1, "O1", "SKU-B", 1, 1)])
    state, effects = run(state, Cancel("O1", "fraud"))
    assert commands(effects) == [clear(0), clear(1)]
    assert effects[-2:] == [SaveBatch("B1", BatchState.DONE), NextBatch(STATION)]
    assert state.batch is None


def test_cancel_frees_a_waiting_slot() -> None:
    state, _ = started([task(1, 1, "O1", "SKU-A", 2, 0), task(2, 1, "O2", "SKU-A", 1, 0)])
    state, effects = run(state, Cancel("O1", "customer asked"))
    assert commands(effects) == [clear(0), light(0, 1)]


def test_cancel_of_an_order_not_here_still_cancels_it() -> None:
    before = two_orders()
    after, effects = run(before, Cancel("O9", "customer asked"))
    assert of(CancelOrder, effects) == [CancelOrder("O9", "customer asked")]
    assert of(SaveTask, effects) == [] and commands(effects) == []
    assert after == before
    after, effects = run(station(), Cancel("O9", "customer asked"))
    assert of(CancelOrder, effects) == [CancelOrder("O9", "customer asked")]
    assert of(NextBatch, effects) == []


# --- totes ---------------------------------------------------------------------------


def test_a_free_tote_binds_to_the_first_order_without_one() -> None:
    state, _ = started([task(1, 1, "O1", "SKU-A", 1, 0), task(2, 1, "O2", "SKU-B", 1, 1)], totes={})
    state, effects = run(state, ToteScan("S1", "T-9", None))
    assert effects == [
        SaveTote("T-9", "O1", ToteState.PICKING, STATION),
        Record("tote_bound", True, "O1", "S1", {"station": STATION, "tote": "T-9"}),
    ]
    state, effects = run(state, ToteScan("S1", "T-8", None))
    assert of(SaveTote, effects) == [SaveTote("T-8", "O2", ToteState.PICKING, STATION)]
    assert state.totes == {"O1": "T-9", "O2": "T-8"}


@pytest.mark.parametrize(
    ("given", "holder", "kind"),
    [
        (two_orders, "O7", "tote_busy"),
        (station, None, "tote_no_batch"),
        (lambda: started([task(1, 1, "O1", "SKU-A", 1, 0)])[0], None, "tote_not_needed"),
        # The tote is bound here already (the edge read its holder before that).
        (two_orders, None, "tote_busy"),
    ],
)
def test_a_tote_that_cannot_be_bound_is_refused(
    given: Callable[[], PickStation], holder: str | None, kind: str
) -> None:
    before = given()
    after, effects = run(before, ToteScan("S1", "T-1", holder))
    [record] = effects
    assert isinstance(record, Record)
    assert (record.kind, record.ok, record.detail["tote"]) == (kind, False, "T-1")
    assert after == before


def test_an_order_with_nothing_left_needs_no_tote() -> None:
    state, _ = started(
        [task(1, 1, "O1", "SKU-A", 1, 0), task(2, 2, "O2", "SKU-B", 1, 1)], totes={"O1": "T-1"}
    )
    state, _ = run(state, ItemScan("S1", "SKU-A"))
    state, effects = run(state, ToteScan("S1", "T-2", None))
    assert of(SaveTote, effects) == [SaveTote("T-2", "O2", ToteState.PICKING, STATION)]


# --- repaint -------------------------------------------------------------------------


def test_a_panel_back_online_gets_its_whole_picture() -> None:
    state = two_orders()
    state, _ = run(state, ItemScan("S1", "SKU-A"))
    after, effects = run(state, Repaint(PANEL))
    assert after == state
    assert commands(effects) == [light(0, 1), light(1, 1), clear(2), clear(3)]
    _, effects = run(state, Repaint(PANEL2))
    assert commands(effects) == [clear(0, PANEL2), clear(1, PANEL2)]
    _, effects = run(state, Repaint("ELSEWHERE"))
    assert effects == []


def test_repaint_all_covers_every_panel() -> None:
    state = two_orders()
    assert commands(repaint_all(state)) == [
        light(0, 2),
        light(1, 1),
        clear(2),
        clear(3),
        clear(0, PANEL2),
        clear(1, PANEL2),
    ]
    assert list(SLOTS) == [PANEL, PANEL2]
