"""A pick station's stock work between batches: replenishment moves, then counts.

When a batch ends (or the station has none) the station asks for its faces' levels
and its open work (``LookForWork``, answered with ``WorkRead``), opens the moves and
counts the rules call for (``replenish.plan``; the zero and ABC triggers of
``counts``), and works them on its own devices before it takes its next batch:

- **Moves first**, since orders wait for them: the face's slot lights blue with the
  units to bring. The operator scans the reserve location's label, then each unit
  (the display counts down) or confirms on the panel the units put; fewer than
  shown is a short move (the reserve held fewer).
- **Then counts**, at most ``per_gap`` while a batch waits (all of them when none
  does): the slot lights yellow showing 0, never the book (blind count). The counter
  scans the location's label, then each unit (the display counts up) or keys the
  number on the panel and confirms; the count is judged on the book read then
  (``counts.judge``).

During a batch a short pick, or a wrong item scanned at a lit slot, opens a count of
that location for the next gap. A unit scanned before the location's label, or an
article that does not belong there, blinks the slot red and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from wcs.domain.floor import counts, replenish
from wcs.domain.floor.counts import Book, Count, CountPolicy, Pile
from wcs.domain.floor.effects import (
    Command,
    Effect,
    Judge,
    LookForWork,
    NewCount,
    NewMove,
    NextBatch,
    OpenWork,
    Transfer,
)
from wcs.domain.floor.machines import CountState, MoveState
from wcs.domain.floor.replenish import Face, Move, Reserve

if TYPE_CHECKING:
    from wcs.domain.floor.pick import Confirm, ItemScan, _Run

Work = Count | Move
COUNT_COLOUR = "yellow"
MOVE_COLOUR = "blue"


@dataclass(frozen=True, slots=True)
class StockWork:
    """What a pick station holds of its stock work."""

    policy: CountPolicy = field(default_factory=CountPolicy)
    counting: bool = True  # the count triggers and schedule (supervisors' counts run anyway)
    per_gap: int = 2  # counts between two batches while a batch waits
    work: Work | None = None  # the move or count at hand
    todo: tuple[Work, ...] = ()  # open moves and counts this station carries out
    done_since_batch: int = 0
    batch_waiting: bool = False
    touched: frozenset[str] = frozenset()  # locations picked from in this batch
    asked: frozenset[tuple[str, str]] = frozenset()  # piles a count was opened for
    # The station's pick faces: rules count only there (a supervisor counts anything).
    faces: frozenset[str] = frozenset()
    codes: Mapping[str, str] = field(default_factory=dict)  # item codes of the work's SKUs


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkRead:
    """The station's stock facts between batches, as the edge read them."""

    now: datetime
    todo: tuple[Work, ...] = ()  # its open moves and counts (with their slots)
    faces: tuple[Face, ...] = ()
    reserves: Mapping[str, tuple[Reserve, ...]] = field(default_factory=dict)  # per SKU
    # Per SKU: units reserved in reserve for waiting orders, not on a move yet.
    waiting: Mapping[str, int] = field(default_factory=dict)
    piles: tuple[Pile, ...] = ()  # every pile at its locations (schedule, zero check)
    picked: Mapping[str, int] = field(default_factory=dict)  # units per SKU, last period
    batch_waiting: bool = False
    codes: Mapping[str, str] = field(default_factory=dict)  # item codes of these SKUs


@dataclass(frozen=True, slots=True)
class WorkOpened:
    """The moves and counts just opened that this station carries out."""

    counts: tuple[Count, ...] = ()
    moves: tuple[Move, ...] = ()
    codes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Keyed:
    """A count keyed (at the station or over the API): the book now."""

    count: Count
    qty: int
    by: str
    book: Book


@dataclass(frozen=True, slots=True)
class Accepted:
    """A supervisor books a count's difference (or ``qty`` counted now)."""

    count: Count
    by: str
    book: Book
    qty: int | None = None


StockEvent = WorkRead | WorkOpened | Keyed | Accepted


# --- the station's side ---------------------------------------------------------------


def _sw(run: _Run) -> StockWork:
    sw = run.state.stock
    assert sw is not None
    return sw


def _set(run: _Run, **changes: object) -> None:
    run.state = replace(run.state, stock=replace(_sw(run), **changes))  # type: ignore[arg-type]


def look(run: _Run) -> None:
    """The station is free: ask for its stock facts (or, without stock work, a batch)."""
    if run.state.stock is None:
        run.effects.append(NextBatch(run.state.id))
    else:
        run.effects.append(LookForWork(run.state.id))


def busy(state_stock: StockWork | None) -> bool:
    return state_stock is not None and state_stock.work is not None


def read(run: _Run, event: WorkRead) -> None:
    sw = _sw(run)
    if sw.work is not None or run.state.batch is not None:
        return  # an answer that crossed the station's own work: nothing to plan now
    open_piles = {(w.sku, w.location) for w in event.todo if isinstance(w, Count)}
    moves: list[NewMove] = []
    for face in event.faces:
        waiting = event.waiting.get(face.sku, 0)
        moves += replenish.plan(face, event.reserves.get(face.sku, ()), waiting)
    new_counts: list[NewCount] = []
    faces = frozenset(f.location for f in event.faces)
    if sw.counting:
        piles = [p for p in event.piles if p.location in faces]
        wanted: list[tuple[str, str, str]] = [
            (p.sku, p.location, counts.ZERO)
            for p in piles
            if p.location in sw.touched and p.on_hand == 0
        ]
        klass = counts.classes(event.picked, {p.sku for p in piles}, sw.policy)
        wanted += [
            (p.sku, p.location, counts.ABC) for p in counts.due(piles, klass, event.now, sw.policy)
        ]
        for sku, location, reason in wanted:
            if (sku, location) not in open_piles:
                open_piles.add((sku, location))
                new_counts.append(NewCount(sku, location, reason))
    _set(
        run,
        todo=tuple(event.todo),
        batch_waiting=event.batch_waiting,
        touched=frozenset(),
        asked=frozenset(),
        faces=faces,
        codes=dict(event.codes),
    )
    if moves or new_counts:
        run.effects.append(OpenWork(run.state.id, tuple(new_counts), tuple(moves)))
    else:
        _next(run)


def opened(run: _Run, event: WorkOpened) -> None:
    sw = _sw(run)
    known = {(type(w), w.id) for w in sw.todo}
    new: list[Work] = [*event.moves, *event.counts]
    fresh = [w for w in new if (type(w), w.id) not in known]
    _set(run, todo=(*sw.todo, *fresh), codes={**sw.codes, **event.codes})
    if run.state.batch is None and sw.work is None:
        _next(run)


def trigger(run: _Run, sku: str, location: str, reason: str) -> None:
    """A count asked for by a rule: a short pick or a wrong item at a face, a short
    move at a reserve pile. The last one even with the count rules switched off: a
    reserve whose book holds units its shelf does not would get a move every gap,
    each one short, and the orders holding its units would wait for ever."""
    sw = run.state.stock
    if sw is None or (sku, location) in sw.asked:
        return
    if not sw.counting and reason != counts.MOVE_SHORT:
        return
    if location not in sw.faces and reason != counts.MOVE_SHORT:
        return
    _set(run, asked=sw.asked | {(sku, location)})
    run.effects.append(OpenWork(run.state.id, (NewCount(sku, location, reason),)))


def touch(run: _Run, location: str) -> None:
    sw = run.state.stock
    if sw is not None and location in sw.faces and location not in sw.touched:
        _set(run, touched=sw.touched | {location})


def batch_started(run: _Run) -> None:
    if run.state.stock is not None:
        _set(run, done_since_batch=0)


def _next(run: _Run) -> None:
    """Start the next move, else the next count the gap allows, else take a batch."""
    sw = _sw(run)
    doable = [w for w in sw.todo if w.panel is not None and w.slot is not None]
    moves = [w for w in doable if isinstance(w, Move)]
    counts_ = [w for w in doable if isinstance(w, Count) and w.state == CountState.OPEN]
    if moves:
        _start(run, moves[0])
    elif counts_ and (not sw.batch_waiting or sw.done_since_batch < sw.per_gap):
        _start(run, counts_[0])
    else:
        run.effects.append(NextBatch(run.state.id))


def _start(run: _Run, work: Work) -> None:
    sw = _sw(run)
    rest = tuple(w for w in sw.todo if not (type(w) is type(work) and w.id == work.id))
    if isinstance(work, Move):
        if work.state == MoveState.OPEN:
            work = work.moved_to(MoveState.ACTIVE)
            run.effects.append(work.saved())
    else:
        work = replace(work.moved(CountState.COUNTING), located=False, units=0)
        run.effects.append(work.saved())
    _set(run, work=work, todo=rest)
    _show(run, work)


def _show(run: _Run, work: Work, *, refused: bool = False) -> None:
    if work.panel is None or work.slot is None:
        return
    if isinstance(work, Move):
        fields: dict[str, object] = {"slot": work.slot, "qty": work.left, "color": MOVE_COLOUR}
    else:
        fields = {"slot": work.slot, "qty": work.units, "color": COUNT_COLOUR}
    if refused:
        fields.update(color="red", blink=True)
    run.effects.append(Command(work.panel, "light", fields))


def shown(stock: StockWork | None) -> tuple[str, int, Command] | None:
    """What the work at hand shows: (panel, slot, light command), for a repaint."""
    if stock is None or stock.work is None:
        return None
    work = stock.work
    if work.panel is None or work.slot is None:
        return None
    if isinstance(work, Move):
        fields: dict[str, object] = {"slot": work.slot, "qty": work.left, "color": MOVE_COLOUR}
    else:
        fields = {"slot": work.slot, "qty": work.units, "color": COUNT_COLOUR}
    return work.panel, work.slot, Command(work.panel, "light", fields)


def _refuse(run: _Run, work: Work, device: str, code: str, reason: str) -> None:
    kind, where = (
        ("move_refused", work.dst) if isinstance(work, Move) else ("count_refused", work.location)
    )
    run.record(kind, ok=False, device=device, code=code[:64], location=where, reason=reason)
    _show(run, work, refused=True)


def scan(run: _Run, event: ItemScan, sku: str | None) -> None:
    """An item or location label scanned while a move or count is at hand."""
    work = _sw(run).work
    assert work is not None
    if isinstance(work, Move):
        if event.code == work.src:
            work = replace(work, fetched=True)
            _set(run, work=work)
            return
        if event.code == work.dst:
            return  # the face's own label: the operator is there, nothing to count
        if sku != work.sku:
            _refuse(run, work, event.device, event.code, "not the article this face takes")
            return
        if not work.fetched:
            _refuse(run, work, event.device, event.code, f"scan reserve location {work.src} first")
            return
        work = replace(work, moved=work.moved + 1)
        if work.left <= 0:
            _finish_move(run, work, event.device)
        else:
            _set(run, work=work)
            _show(run, work)
        return
    if event.code == work.location:
        _set(run, work=replace(work, located=True))
        return
    if sku != work.sku:
        _refuse(run, work, event.device, event.code, "not the article counted here")
        return
    if not work.located:
        _refuse(run, work, event.device, event.code, f"scan location {work.location} first")
        return
    work = replace(work, units=work.units + 1)
    _set(run, work=work)
    _show(run, work)


def confirm(run: _Run, event: Confirm) -> bool:
    """A confirm on the work's slot; False when it was not the work's slot."""
    work = _sw(run).work
    if work is None or event.device != work.panel or event.slot != work.slot:
        return False
    if isinstance(work, Move):
        if not work.fetched:
            _refuse(
                run, work, event.device, str(event.qty), f"scan reserve location {work.src} first"
            )
            return True
        _finish_move(run, replace(work, moved=work.moved + min(event.qty, work.left)), event.device)
        return True
    if not work.located:
        _refuse(run, work, event.device, str(event.qty), f"scan location {work.location} first")
        return True
    run.effects.append(Judge(work, event.qty, f"station:{run.state.id}"))
    return True


def _finish_move(run: _Run, work: Move, device: str) -> None:
    ended = work.moved_to(MoveState.DONE if work.left <= 0 else MoveState.SHORT)
    run.effects.append(ended.saved())
    if ended.moved > 0:
        run.effects.append(Transfer(ended.id, ended.sku, ended.src, ended.dst, ended.moved))
    run.record(
        "replenished",
        ok=ended.state == MoveState.DONE,
        device=device,
        sku=ended.sku,
        location=ended.dst,
        source=ended.src,
        qty=ended.moved,
        asked=ended.qty,
    )
    if ended.state == MoveState.SHORT:
        trigger(run, ended.sku, ended.src, counts.MOVE_SHORT)
    _clear(run, ended)
    _set(run, work=None)
    if run.state.batch is None:
        _next(run)


def _clear(run: _Run, work: Work) -> None:
    if work.panel is not None and work.slot is not None:
        run.effects.append(Command(work.panel, "clear", {"slot": work.slot}))


def keyed(run: _Run, event: Keyed) -> None:
    sw = _sw(run)
    count, effects = counts.judge(event.count, event.qty, event.by, event.book, sw.policy)
    _counted(run, count.id, effects)


def accepted(run: _Run, event: Accepted) -> None:
    count, effects = counts.accept(event.count, event.by, event.book, qty=event.qty)
    _counted(run, count.id, effects)


def _counted(run: _Run, count_id: int, effects: list[Effect]) -> None:
    sw = _sw(run)
    run.effects += effects
    todo = tuple(w for w in sw.todo if not (isinstance(w, Count) and w.id == count_id))
    work = sw.work
    if isinstance(work, Count) and work.id == count_id:
        _clear(run, work)
        _set(run, work=None, todo=todo, done_since_batch=sw.done_since_batch + 1)
        if run.state.batch is None:
            _next(run)
    else:
        _set(run, todo=todo)
