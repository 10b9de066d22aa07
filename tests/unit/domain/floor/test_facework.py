"""A pick station's moves and counts between batches (``wcs.domain.floor.facework``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.domain.floor.legal import of
from tests.unit.domain.floor.pickfloor import (
    CODE,
    CODES,
    PANEL,
    STATION,
    Shown,
    clear,
    commands,
    run,
    station,
    task,
)
from wcs.domain.floor import counts
from wcs.domain.floor.counts import Book, Count, CountPolicy, Pile
from wcs.domain.floor.effects import (
    Adjust,
    Judge,
    LookForWork,
    NewCount,
    NewMove,
    NextBatch,
    OpenWork,
    Record,
    SaveCount,
    SaveMove,
    Transfer,
)
from wcs.domain.floor.facework import Keyed, StockWork, WorkOpened, WorkRead
from wcs.domain.floor.machines import CountState, MoveState
from wcs.domain.floor.pick import (
    BatchStarted,
    Confirm,
    Idle,
    ItemScan,
    NoStock,
    PickStation,
    Repaint,
)
from wcs.domain.floor.replenish import Face, Move, Reserve

NOW = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
SCANNER = "PS1-SCAN"
FACE = "L-1"  # slot 0 of PANEL
BY = f"station:{STATION}"


FACES = frozenset({"L-1", "L-2"})


def stocked(**changes: object) -> PickStation:
    changes.setdefault("faces", FACES)
    return station(codes=CODES, stock=StockWork(CountPolicy(), **changes))  # type: ignore[arg-type]


def face_at(location: str, sku: str, on_hand: int = 9) -> Face:
    return Face(location, sku, 0, 20, on_hand, 0)


def move(qty: int = 5, *, id: int = 31) -> Move:
    return Move(id, "SKU-A", "R-1", FACE, qty, "min", panel=PANEL, slot=0)


def a_count(*, id: int = 41, location: str = "L-2", slot: int = 1) -> Count:
    return Count(id, "SKU-B", location, counts.ABC, panel=PANEL, slot=slot)


def blue(qty: int, slot: int = 0) -> Shown:
    return (PANEL, "light", {"slot": slot, "qty": qty, "color": "blue"})


def yellow(qty: int, slot: int = 1) -> Shown:
    return (PANEL, "light", {"slot": slot, "qty": qty, "color": "yellow"})


def flash(qty: int, slot: int) -> Shown:
    return (PANEL, "light", {"slot": slot, "qty": qty, "color": "red", "blink": True})


def test_a_station_with_stock_work_looks_for_it_before_its_next_batch() -> None:
    _, effects = run(stocked(), Idle())
    assert effects == [LookForWork(STATION)]
    # Without stock work the station takes its next batch at once, as before.
    assert run(station(), Idle())[1] == [NextBatch(STATION)]


def test_a_low_face_is_replenished_before_the_next_batch() -> None:
    low = Face(FACE, "SKU-A", 4, 20, 2, 0)
    state, effects = run(
        stocked(), WorkRead(NOW, faces=(low,), reserves={"SKU-A": (Reserve("R-1", 50, 0),)})
    )
    assert effects == [OpenWork(STATION, (), (NewMove("SKU-A", "R-1", FACE, 18, "min"),))]
    state, effects = run(state, WorkOpened(moves=(move(18),)))
    assert of(SaveMove, effects) == [SaveMove(31, MoveState.ACTIVE, 0)]
    assert commands(effects) == [blue(18)]
    # A unit before the reserve's label is refused: nothing moves, the slot blinks.
    state, effects = run(state, ItemScan(SCANNER, CODE["SKU-A"]))
    assert commands(effects) == [flash(18, 0)] and of(Transfer, effects) == []
    state, effects = run(state, ItemScan(SCANNER, "R-1"))
    assert effects == []
    state, effects = run(state, ItemScan(SCANNER, CODE["SKU-A"]))
    assert commands(effects) == [blue(17)]
    # The rest put on the face and confirmed on the panel.
    state, effects = run(state, Confirm(PANEL, 0, 17))
    assert of(SaveMove, effects) == [SaveMove(31, MoveState.DONE, 18)]
    assert of(Transfer, effects) == [Transfer(31, "SKU-A", "R-1", FACE, 18)]
    assert commands(effects) == [clear(0)]
    assert effects[-1] == NextBatch(STATION)
    assert state.stock is not None and state.stock.work is None


def test_a_short_move_moves_what_was_found_and_counts_the_reserve() -> None:
    state, _ = run(stocked(), WorkOpened(moves=(move(10),)))
    state, _ = run(state, ItemScan(SCANNER, "R-1"))
    state, effects = run(state, Confirm(PANEL, 0, 6))
    assert of(SaveMove, effects) == [SaveMove(31, MoveState.SHORT, 6)]
    assert of(Transfer, effects) == [Transfer(31, "SKU-A", "R-1", FACE, 6)]
    assert of(OpenWork, effects) == [
        OpenWork(STATION, (NewCount("SKU-A", "R-1", counts.MOVE_SHORT),))
    ]
    assert not of(Record, effects)[0].ok


def test_a_blind_count_at_the_station() -> None:
    due = Pile("SKU-B", "L-2", NOW - timedelta(days=30), on_hand=9)
    # A pile that is no pick face is not counted by the schedule.
    other = Pile("SKU-C", "L-3", NOW - timedelta(days=30), on_hand=4)
    read = WorkRead(NOW, faces=(face_at("L-2", "SKU-B"),), piles=(due, other))
    state, effects = run(stocked(), read)
    assert effects == [OpenWork(STATION, (NewCount("SKU-B", "L-2", counts.ABC),), ())]
    state, effects = run(state, WorkOpened(counts=(a_count(),)))
    assert commands(effects) == [yellow(0)]  # never the book
    assert of(SaveCount, effects)[0].state == CountState.COUNTING
    # Units before the location's label, or another article, are refused.
    state, effects = run(state, ItemScan(SCANNER, CODE["SKU-B"]))
    assert commands(effects) == [flash(0, 1)]
    state, effects = run(state, Confirm(PANEL, 1, 3))
    assert commands(effects) == [flash(0, 1)] and of(Judge, effects) == []
    state, _ = run(state, ItemScan(SCANNER, "L-2"))
    state, effects = run(state, ItemScan(SCANNER, CODE["SKU-C"]))
    assert commands(effects) == [flash(0, 1)]
    for n in (1, 2, 3):
        state, effects = run(state, ItemScan(SCANNER, CODE["SKU-B"]))
        assert commands(effects) == [yellow(n)]
    # Idle ticks and repaints while counting keep the count on its slot.
    assert run(state, Idle())[1] == []
    repaint = commands(run(state, Repaint(PANEL))[1])
    assert yellow(3) in repaint and len(repaint) == 4
    state, effects = run(state, Confirm(PANEL, 1, 3))
    assert state.stock is not None
    judge = of(Judge, effects)
    assert len(judge) == 1 and (judge[0].qty, judge[0].by) == (3, BY)
    # The edge answers with the book now: 9 on the books, 3 found: counted again.
    state, effects = run(state, Keyed(judge[0].count, 3, BY, Book(9, 0)))
    assert of(SaveCount, effects)[0].state == CountState.RECOUNT
    assert commands(effects) == [clear(1)]
    assert effects[-1] == NextBatch(STATION)
    assert state.stock is not None and state.stock.work is None


def test_a_matching_count_books_nothing_and_a_small_difference_is_booked() -> None:
    state, _ = run(stocked(), WorkOpened(counts=(a_count(),)))
    state, _ = run(state, ItemScan(SCANNER, "L-2"))
    state, effects = run(state, Confirm(PANEL, 1, 8))
    (judge,) = of(Judge, effects)
    _, effects = run(state, Keyed(judge.count, 8, BY, Book(9, 2)))
    (adjust,) = of(Adjust, effects)
    assert (adjust.delta, adjust.counted_by, adjust.release) == (-1, BY, ())


def test_moves_come_before_counts_and_counts_are_bounded_while_a_batch_waits() -> None:
    counts_ = tuple(a_count(id=40 + n, location=f"L-{n}", slot=n) for n in (1, 2, 3))
    todo = (*counts_, move())
    state, effects = run(stocked(per_gap=2), WorkRead(NOW, todo=todo, batch_waiting=True))
    assert commands(effects) == [blue(5)]
    state, _ = run(state, ItemScan(SCANNER, "R-1"))
    state, effects = run(state, Confirm(PANEL, 0, 5))
    assert commands(effects)[-1] == yellow(0, 1)
    for n in (1, 2):
        state, _ = run(state, ItemScan(SCANNER, f"L-{n}"))
        state, effects = run(state, Confirm(PANEL, n, 4))
        (judge,) = of(Judge, effects)
        state, effects = run(state, Keyed(judge.count, 4, BY, Book(4, 0)))
    # Two counts done and a batch waits: the third count waits for the next gap.
    assert effects[-1] == NextBatch(STATION)
    assert state.stock is not None and [w.id for w in state.stock.todo] == [43]
    state, _ = run(
        state,
        BatchStarted("B2", (task(1, 1, "O1", "SKU-A", 1, 0),), CODES, {"O1": "T"}, frozenset()),
    )
    assert state.stock is not None and state.stock.done_since_batch == 0


def test_a_short_pick_and_a_wrong_item_open_counts_once() -> None:
    state, _ = run(
        stocked(),
        BatchStarted(
            "B1",
            (task(1, 1, "O1", "SKU-A", 3, 0), task(2, 2, "O2", "SKU-C", 1, 2)),
            CODES,
            {"O1": "T-1", "O2": "T-2"},
            frozenset(),
        ),
    )
    state, effects = run(state, ItemScan(SCANNER, CODE["SKU-D"]))
    assert of(OpenWork, effects) == [OpenWork(STATION, (NewCount("SKU-A", "L-1", counts.MISPICK),))]
    state, effects = run(state, ItemScan(SCANNER, CODE["SKU-D"]))
    assert of(OpenWork, effects) == []  # asked already
    state, effects = run(state, Confirm(PANEL, 0, 1))
    assert of(OpenWork, effects) == []  # the same pile: one count
    state, _ = run(state, NoStock(1))
    state, effects = run(state, Confirm(PANEL, 2, 0))
    assert of(OpenWork, effects) == [
        OpenWork(STATION, (NewCount("SKU-C", "L-2", counts.SHORT_PICK),))
    ]


def test_a_face_picked_empty_is_counted_and_counting_can_be_switched_off() -> None:
    empty = Pile("SKU-A", "L-1", NOW, on_hand=0)
    faces = (face_at("L-1", "SKU-A", 0),)
    state = replace(stocked(), stock=StockWork(touched=frozenset({"L-1"}), faces=FACES))
    _, effects = run(state, WorkRead(NOW, faces=faces, piles=(empty,)))
    assert effects[0] == OpenWork(STATION, (NewCount("SKU-A", "L-1", counts.ZERO),), ())
    quiet = replace(
        stocked(), stock=StockWork(counting=False, touched=frozenset({"L-1"}), faces=FACES)
    )
    assert run(quiet, WorkRead(NOW, piles=(empty,)))[1] == [NextBatch(STATION)]
    # Switched off, short picks open no count either; moves still run.
    low = Face(FACE, "SKU-A", 4, 20, 0, 0)
    _, effects = run(
        quiet, WorkRead(NOW, faces=(low,), reserves={"SKU-A": (Reserve("R-1", 9, 0),)})
    )
    assert of(OpenWork, effects)[0].moves == (NewMove("SKU-A", "R-1", FACE, 9, "min"),)
    # ... but a move that finds its reserve short still has the reserve counted: its
    # book would send the next move to the same empty shelf.
    state, _ = run(quiet, WorkOpened(moves=(move(10),)))
    state, _ = run(state, ItemScan(SCANNER, "R-1"))
    _, effects = run(state, Confirm(PANEL, 0, 6))
    assert of(OpenWork, effects) == [
        OpenWork(STATION, (NewCount("SKU-A", "R-1", counts.MOVE_SHORT),))
    ]


@given(
    qty=st.integers(1, 12),
    steps=st.lists(
        st.one_of(
            st.just(("scan", "R-1")),
            st.just(("scan", CODE["SKU-A"])),
            st.just(("scan", CODE["SKU-B"])),
            st.just(("scan", FACE)),
            st.tuples(st.just("confirm"), st.integers(0, 15)),
        ),
        max_size=20,
    ),
)
def test_a_move_books_exactly_the_units_put_on_the_face(
    qty: int, steps: list[tuple[str, object]]
) -> None:
    """Property: however a move is worked (labels, units, wrong articles, confirms),
    the units it books are the units put on the face (scanned after the reserve's
    label, plus those confirmed), never more than asked, booked once."""
    state, _ = run(stocked(), WorkOpened(moves=(move(qty),)))
    put = 0
    fetched = False
    ended = False
    transfers: list[Transfer] = []
    for kind, value in steps:
        if ended:
            break
        if kind == "scan":
            state, effects = run(state, ItemScan(SCANNER, str(value)))
            if value == "R-1":
                fetched = True
            elif value == CODE["SKU-A"] and fetched:
                put += 1
        else:
            assert isinstance(value, int)
            state, effects = run(state, Confirm(PANEL, 0, value))
            if fetched:
                put += min(value, qty - put)
        transfers += of(Transfer, effects)
        saves = of(SaveMove, effects)
        if saves and saves[-1].state != MoveState.ACTIVE:
            ended = True
            assert saves[-1].moved == put <= qty
            assert saves[-1].state == (MoveState.DONE if put == qty else MoveState.SHORT)
    assert sum(t.qty for t in transfers) == (put if ended else 0)
    assert len(transfers) <= 1
