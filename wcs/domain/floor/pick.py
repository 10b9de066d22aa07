"""A pick-to-light station working one batch at a time (design §1 step 3).

The station lights the slots of the current stop (the lowest walking-order position
with work left) with the units to take; an item scan or a PTL confirm records units;
the next stop lights when the current one is done. Totes are bound to the batch's
orders by scanning them first.

- Mispick: an item scan that matches no lit task is refused on the spot: nothing is
  recorded as picked, the lit slots blink red and the mispick is logged with its cause
  (``wrong_item``, ``no_tote``, ``nothing_lit``, ``no_batch``).
- Count-down: while a task has units left its slot shows how many.
- Short pick: a confirm with fewer units than asked. The missing units are written off
  the shelf (it did not hold them), the rest of the line is reserved elsewhere and
  appended to the batch; with no stock elsewhere the order goes to ``exception``.

Only the tasks still to do are held (open or lit), in walking order: finished ones
are written and forgotten.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from wcs.domain import pick_scan
from wcs.domain.floor import counts, facework
from wcs.domain.floor.effects import (
    Alert,
    CancelOrder,
    Command,
    DeadLetter,
    Effect,
    LinePicked,
    MoveTotes,
    OrderMove,
    PlaceTask,
    Reallocate,
    Record,
    ReservationPicked,
    SaveBatch,
    SaveTask,
    SaveTote,
    Shelf,
    TraceUnit,
)
from wcs.domain.floor.facework import Accepted, Keyed, StockWork, WorkOpened, WorkRead
from wcs.domain.floor.machines import (
    TASK_MOVES,
    BatchState,
    TaskState,
    ToteState,
    step,
)
from wcs.domain.states import OrderState


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    seq: int  # walking order within the batch
    order_id: str
    line_id: int
    reservation_id: int
    sku: str
    location: str
    qty: int
    picked: int = 0
    state: TaskState = TaskState.OPEN
    panel: str | None = None  # the PTL panel and slot that show it (None: no light)
    slot: int | None = None

    @property
    def left(self) -> int:
        return self.qty - self.picked

    def moved(self, state: TaskState) -> Task:
        return replace(self, state=step(TASK_MOVES, f"task {self.id}", self.state, state))

    def saved(self) -> SaveTask:
        return SaveTask(self.id, self.picked, self.state, self.panel, self.slot)


@dataclass(frozen=True, slots=True)
class PickStation:
    id: str
    # Every slot of each panel the station works (to repaint a panel whole).
    slots: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    batch: str | None = None
    tasks: tuple[Task, ...] = ()  # open and lit, by (seq, id)
    totes: Mapping[str, str] = field(default_factory=dict)  # order -> its tote (picking)
    codes: Mapping[str, str] = field(default_factory=dict)  # item code or GTIN -> SKU
    # Days of life a unit must have left when picked, per SKU (else ``shelf_life_days``).
    shelf_life: Mapping[str, int] = field(default_factory=dict)
    shelf_life_days: int = 7
    started: frozenset[str] = frozenset()  # orders whose first unit is picked
    # SKUs of the last tasks finished here: a scan of one of them is a unit too many.
    recent: tuple[str, ...] = ()
    # Moves and counts between batches (``facework``); None: the station does none.
    stock: StockWork | None = None
    # How many of ``tasks`` each order has, derived from them when not given: a
    # finished task tells whether its order is done without a walk over hundreds.
    order_tasks: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tasks and not self.order_tasks:
            object.__setattr__(self, "order_tasks", _orders_of(self.tasks))

    def lit(self) -> list[Task]:
        return [t for t in self.tasks if t.state == TaskState.LIT]

    def shown(self, panel: str) -> dict[int, Task]:
        """What ``panel`` shows: per slot, the lit task it counts down."""
        shown: dict[int, Task] = {}
        for task in self.tasks:
            if task.state == TaskState.LIT and task.panel == panel and task.slot is not None:
                shown.setdefault(task.slot, task)
        return shown


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemScan:
    device: str
    code: str
    symbology: str | None = None
    today: date | None = None  # the site's date, for the shelf life on GS1 labels


@dataclass(frozen=True, slots=True)
class ToteScan:
    """A tote code scanned; ``holder``: the order it is bound to now, if it is not free."""

    device: str
    code: str
    holder: str | None


@dataclass(frozen=True, slots=True)
class Confirm:
    device: str
    slot: int
    qty: int


@dataclass(frozen=True, slots=True)
class BatchStarted:
    """The station's next batch, as the edge activated it."""

    batch: str
    tasks: tuple[Task, ...]
    codes: Mapping[str, str]
    totes: Mapping[str, str]
    started: frozenset[str]
    shelf_life: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reallocated:
    """A short task's missing units, reserved elsewhere: the new tasks (ids drawn)."""

    task_id: int
    tasks: tuple[Task, ...]


@dataclass(frozen=True, slots=True)
class NoStock:
    task_id: int


@dataclass(frozen=True, slots=True)
class Cancel:
    """The order is cancelled (a customer-service request applied by the owner)."""

    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Repaint:
    """A panel (re)connected and shows anything: put its whole picture back."""

    panel: str


@dataclass(frozen=True, slots=True)
class Idle:
    """Look for work: the station has no batch (or its batch has nothing left)."""


@dataclass(frozen=True, slots=True)
class Resume:
    """The station's link to its devices is (back) up: every panel shows its state
    again (what was sent while it was down went nowhere)."""


PickEvent = (
    ItemScan
    | ToteScan
    | Confirm
    | BatchStarted
    | Reallocated
    | NoStock
    | Cancel
    | Repaint
    | Idle
    | Resume
    | WorkRead
    | WorkOpened
    | Keyed
    | Accepted
)

# Why a scan was refused (the activity row's ``cause``).
WRONG_ITEM = "wrong_item"  # not an item of this batch, or of no lit slot
AHEAD = "ahead"  # an item of a later stop: the picker is ahead of the lights
PAST_END = "past_end"  # an item whose task just ended: one unit too many
NO_TOTE = "no_tote"  # the right item, but its order has no tote yet
NO_BATCH = "no_batch"
NOTHING_LIT = "nothing_lit"
UNREADABLE = "unreadable"  # a GS1 label that is wrong (unit_refused)
SHELF_LIFE = "shelf_life"  # expired or too short-dated (unit_refused)
CAUSES = (WRONG_ITEM, AHEAD, PAST_END, NO_TOTE, NO_BATCH, NOTHING_LIT, UNREADABLE, SHELF_LIFE)
UNIT_REFUSED = "unit_refused"
RECENT = 8

FIRST_UNIT = "first unit picked"
ALL_PICKED = "all lines picked"


class _Run:
    """One decision in progress: the station's tasks as a list, effects in order."""

    def __init__(self, state: PickStation) -> None:
        self.state = state
        self.tasks = list(state.tasks)
        self.totes = state.totes
        self.started = state.started
        self.recent = state.recent
        self.order_tasks = state.order_tasks
        # This decision's own copy of the counts, made on the first change: the state
        # decided from keeps its own.
        self._counts: dict[str, int] | None = None
        self.effects: list[Effect] = []

    def done(self, **changes: object) -> tuple[PickStation, list[Effect]]:
        state = replace(
            self.state,
            tasks=tuple(self.tasks),
            order_tasks=self.order_tasks,
            totes=self.totes,
            started=self.started,
            recent=self.recent,
            **changes,  # type: ignore[arg-type]
        )
        return state, self.effects

    def put(self, task: Task) -> None:
        """Save a changed task; a finished one leaves the station's memory."""
        for n, known in enumerate(self.tasks):
            if known.id == task.id:
                if task.state in (TaskState.OPEN, TaskState.LIT):
                    self.tasks[n] = task
                else:
                    del self.tasks[n]
                    self._counted(task.order_id, -1)
                break
        self.effects.append(task.saved())

    def add(self, task: Task) -> None:
        """A new task at the end of the walk."""
        self.tasks.append(task)
        self._counted(task.order_id, 1)

    def start(self, tasks: list[Task]) -> None:
        """A new batch's tasks, in walking order."""
        self.tasks = tasks
        self.order_tasks = self._counts = _orders_of(tasks)

    def _counted(self, order_id: str, change: int) -> None:
        counts = self._counts
        if counts is None:
            counts = self.order_tasks = self._counts = dict(self.order_tasks)
        left = counts.get(order_id, 0) + change
        if left > 0:
            counts[order_id] = left
        else:
            counts.pop(order_id, None)

    def find(self, task_id: int) -> Task | None:
        return next((t for t in self.tasks if t.id == task_id), None)

    def light(self, task: Task, *, color: str = "green", blink: bool = False) -> None:
        if task.panel is not None and task.slot is not None:
            fields: dict[str, object] = {"slot": task.slot, "qty": task.left, "color": color}
            if blink:
                fields["blink"] = True
            self.effects.append(Command(task.panel, "light", fields, subject=task.order_id))

    def clear(self, task: Task) -> None:
        if task.panel is not None and task.slot is not None:
            self.effects.append(Command(task.panel, "clear", {"slot": task.slot}))

    def record(
        self,
        kind: str,
        *,
        ok: bool = True,
        order_id: str | None = None,
        device: str | None = None,
        **detail: object,
    ) -> None:
        self.effects.append(
            Record(kind, ok, order_id, device, {"station": self.state.id, **detail})
        )


def decide(state: PickStation, event: PickEvent) -> tuple[PickStation, list[Effect]]:
    run = _Run(state)
    match event:
        case ItemScan() if facework.busy(state.stock):
            item = pick_scan.read_item(event.code, event.symbology)
            codes = {**state.codes, **state.stock.codes}  # type: ignore[union-attr]
            sku = None if isinstance(item, pick_scan.Refused) else pick_scan.sku_of(item, codes)
            facework.scan(run, event, sku)
        case Confirm() if facework.busy(state.stock):
            if not facework.confirm(run, event):
                _confirm(run, event)
        case WorkRead():
            facework.read(run, event)
        case WorkOpened():
            facework.opened(run, event)
        case Keyed():
            facework.keyed(run, event)
        case Accepted():
            facework.accepted(run, event)
        case ItemScan():
            _item_scan(run, event)
        case ToteScan():
            _tote_scan(run, event)
        case Confirm():
            _confirm(run, event)
        case BatchStarted():
            run.start(sorted(event.tasks, key=lambda t: (t.seq, t.id)))
            run.totes = dict(event.totes)
            run.started = event.started
            run.state = replace(
                state, batch=event.batch, codes=event.codes, shelf_life=event.shelf_life
            )
            run.effects.append(SaveBatch(event.batch, BatchState.ACTIVE, state.id))
            facework.batch_started(run)
            if run.tasks:
                _next_stop(run)
            else:
                _batch_over(run)  # its orders were all cancelled before it came up
        case Reallocated():
            _reallocated(run, event)
        case NoStock():
            _no_stock(run, event)
        case Cancel():
            _cancel(run, event)
        case Repaint():
            _repaint(run, event.panel)
        case Resume():
            for panel in run.state.slots:
                _repaint(run, panel)
        case Idle() if facework.busy(state.stock):
            pass  # a move or count is at hand: the batch waits for it
        case Idle():
            if not run.tasks:
                _batch_over(run)
            else:
                _next_stop(run)
    return run.done(batch=run.state.batch, codes=run.state.codes)


# --- the rules ------------------------------------------------------------------------


def _first_unit(run: _Run, order_id: str) -> None:
    if order_id not in run.started:
        run.started = run.started | {order_id}
        run.effects.append(
            OrderMove(order_id, OrderState.PICK_PLANNED, OrderState.PICKING, FIRST_UNIT)
        )


def _refuse(
    run: _Run,
    device: str,
    code: str,
    sku: str | None,
    cause: str,
    reason: str,
    *,
    kind: str = "mispick",
) -> None:
    """A refused scan: nothing is counted; the lit slots blink red so the picker looks
    again. ``kind``: a mispick (the wrong item), or ``unit_refused`` (the right item,
    but not a unit to ship: unreadable label, too close to its date)."""
    run.record(kind, ok=False, device=device, code=code[:64], sku=sku, cause=cause, reason=reason)
    lit = [t for t in _stop(run) if t.state == TaskState.LIT]
    for task in lit:
        run.light(task, color="red", blink=True)
    if cause == WRONG_ITEM and lit:
        # Another article where this one was expected: the shelf may hold misplaced units.
        facework.trigger(run, lit[0].sku, lit[0].location, counts.MISPICK)


def _item_scan(run: _Run, event: ItemScan) -> None:
    # What the label says (GS1: GTIN, lot, dates, serial; else the code as scanned).
    item = pick_scan.read_item(event.code, event.symbology)
    if isinstance(item, pick_scan.Refused):
        _refuse(run, event.device, event.code, None, UNREADABLE, item.reason, kind=UNIT_REFUSED)
        run.effects.append(DeadLetter(item.reason))
        return
    sku = pick_scan.sku_of(item, run.state.codes)
    if sku is not None and item.use_by is not None and event.today is not None:
        days = run.state.shelf_life.get(sku, run.state.shelf_life_days)
        too_old = pick_scan.shelf_life_refusal(item.use_by, event.today, days)
        if too_old is not None:
            _refuse(run, event.device, event.code, sku, SHELF_LIFE, too_old, kind=UNIT_REFUSED)
            return
    if run.state.batch is None:
        _refuse(run, event.device, event.code, sku, NO_BATCH, "no batch is active at this station")
        return
    lit = [t for t in _stop(run) if t.state == TaskState.LIT]
    if not lit:
        _refuse(
            run,
            event.device,
            event.code,
            sku,
            NOTHING_LIT,
            "nothing is lit: wait for the next light",
        )
        return
    matching = [t for t in lit if t.sku == sku] if sku is not None else []
    if not matching:
        if sku is not None and sku in run.recent:
            cause, reason = PAST_END, "that task is complete: put the extra unit back"
        elif sku is not None and any(t.sku == sku for t in run.tasks):
            cause, reason = AHEAD, "that item is for a later stop: follow the lights"
        else:
            cause, reason = WRONG_ITEM, "item does not match a lit slot"
        _refuse(run, event.device, event.code, sku, cause, reason)
        return
    ready = [t for t in matching if t.order_id in run.totes]
    if not ready:
        order = matching[0].order_id
        _refuse(run, event.device, event.code, sku, NO_TOTE, f"scan a tote for order {order} first")
        return
    task = ready[0]
    _count(run, task, 1, event.device, item)
    task = run.find(task.id) or task
    if task.left <= 0:
        _finish(run, task)
    else:
        run.light(task)  # the display counts down so the picker sees what is left


def _count(
    run: _Run, task: Task, units: int, device: str, item: pick_scan.ItemCode | None = None
) -> Task:
    counted = replace(task, picked=task.picked + units)
    run.put(counted)
    label: dict[str, str] = {}
    if item is not None:
        found = {"gtin": item.gtin, "lot": item.lot, "serial": item.serial}
        if item.use_by is not None:
            found["use_by"] = item.use_by.isoformat()
        label = {k: v for k, v in found.items() if v is not None}
    detail = {"station": run.state.id, "sku": task.sku, "qty": units, "location": task.location}
    run.effects.append(Record("pick", True, task.order_id, device, {**detail, **label}))
    if item is not None and item.traced:
        run.effects.append(
            TraceUnit(
                task.order_id,
                task.sku,
                item.gtin,
                item.lot,
                item.use_by,
                item.serial,
                run.state.id,
                device,
            )
        )
    _first_unit(run, task.order_id)
    return counted


def _confirm(run: _Run, event: Confirm) -> None:
    task = next(
        (
            t
            for t in run.tasks
            if t.state == TaskState.LIT and t.panel == event.device and t.slot == event.slot
        ),
        None,
    )
    if task is None:
        run.record("stray_confirm", ok=False, device=event.device, slot=event.slot)
        return
    remaining = task.left
    units = min(event.qty, remaining)
    if units > 0:
        if task.order_id not in run.totes:
            _refuse(
                run,
                event.device,
                task.sku,
                task.sku,
                NO_TOTE,
                f"scan a tote for order {task.order_id} first",
            )
            return
        task = _count(run, task, units, event.device)
    if event.qty < remaining:
        _short(run, task, remaining - event.qty, event.device)
    else:
        _finish(run, task)


def _finish(run: _Run, task: Task) -> None:
    """The task ends with what it holds: units leave the shelf for the tote."""
    whole = task.picked >= task.qty
    ended = task.moved(TaskState.DONE if whole else TaskState.SHORT)
    run.put(ended)
    run.recent = (*run.recent[-(RECENT - 1) :], task.sku)
    facework.touch(run, task.location)
    if task.picked > 0:
        run.effects.append(Shelf(task.sku, task.location, -task.picked, "pick", task.order_id))
        run.effects.append(LinePicked(task.line_id, task.picked))
    run.effects.append(ReservationPicked(task.reservation_id, None if whole else task.picked))
    run.clear(task)
    _after(run, task.order_id)


_ORDER_OF = operator.attrgetter("order_id")


def _orders_of(tasks: Iterable[Task]) -> dict[str, int]:
    return dict(Counter(map(_ORDER_OF, tasks)))


def _after(run: _Run, order_id: str) -> None:
    """An order with nothing left here is picked; the batch moves to its next stop."""
    if order_id in run.started and not run.order_tasks.get(order_id):
        run.effects.append(OrderMove(order_id, OrderState.PICKING, OrderState.PICKED, ALL_PICKED))
        run.effects.append(MoveTotes(order_id, (ToteState.PICKING,), ToteState.TO_QC))
        totes = dict(run.totes)
        totes.pop(order_id, None)
        run.totes = totes
    if run.tasks:
        _next_stop(run)
    else:
        _batch_over(run)


def _batch_over(run: _Run) -> None:
    if run.state.batch is not None:
        run.effects.append(SaveBatch(run.state.batch, BatchState.DONE))
        run.state = replace(run.state, batch=None, codes={})
        run.totes = {}
        run.started = frozenset()
    facework.look(run)


def _stop(run: _Run) -> list[Task]:
    """The tasks of the current stop (the lowest walking-order position with work left).
    Lit tasks are always among them: a stop lights only once the ones before it end."""
    if not run.tasks:
        return []
    first = run.tasks[0].seq
    current: list[Task] = []
    for task in run.tasks:
        if task.seq != first:
            break
        current.append(task)
    return current


def _next_stop(run: _Run) -> None:
    """Light every open task of the current stop whose slot is free (one per slot)."""
    if not run.tasks:
        return
    stop = run.tasks[0].seq
    busy = {
        (t.panel, t.slot) for t in _stop(run) if t.state == TaskState.LIT and t.panel is not None
    }
    for task in list(run.tasks):
        if task.seq != stop:
            break
        if task.state != TaskState.OPEN:
            continue
        if task.panel is not None:
            if (task.panel, task.slot) in busy:
                continue  # that slot shows another order's units; this one lights after
            busy.add((task.panel, task.slot))
        lit = task.moved(TaskState.LIT)
        run.put(lit)
        run.light(lit)


def _short(run: _Run, task: Task, missing: int, device: str) -> None:
    """The shelf held fewer units than the books: write them off, re-plan the rest."""
    run.record(
        "short_pick",
        ok=False,
        order_id=task.order_id,
        device=device,
        sku=task.sku,
        location=task.location,
        missing=missing,
    )
    run.effects.append(Shelf(task.sku, task.location, -missing, "shortage", task.order_id))
    run.effects.append(Reallocate(task.id, task.order_id, task.line_id, task.sku, missing))
    facework.trigger(run, task.sku, task.location, counts.SHORT_PICK)


def _reallocated(run: _Run, event: Reallocated) -> None:
    task = run.find(event.task_id)
    if task is None:
        return
    last = max((t.seq for t in run.tasks), default=task.seq)
    for new in event.tasks:
        placed = replace(new, seq=last + 1, state=TaskState.OPEN)
        run.add(placed)
        run.effects.append(PlaceTask(placed.id, placed.seq))
    # The replacements exist before this one closes, so the order is not mistaken for
    # complete and the batch lights them in turn.
    _finish(run, task)


def _no_stock(run: _Run, event: NoStock) -> None:
    task = run.find(event.task_id)
    if task is None:
        return
    run.effects.append(
        Alert(
            "short_pick",
            "warning",
            f"order {task.order_id}: {task.left} x {task.sku} missing at {task.location} and "
            "no stock elsewhere; the order goes to the exception lane",
            task.order_id,
        )
    )
    _drop_order(run, task.order_id, keep=task.id)
    run.effects.append(
        OrderMove(
            task.order_id,
            None,
            OrderState.EXCEPTION,
            f"short pick of {task.sku}, no stock elsewhere",
        )
    )
    run.effects.append(MoveTotes(task.order_id, (ToteState.PICKING,), ToteState.EXCEPTION))
    run.totes = {o: t for o, t in run.totes.items() if o != task.order_id}
    run.started = run.started - {task.order_id}
    _finish(run, task)


def _drop_order(run: _Run, order_id: str, keep: int | None = None) -> None:
    """The order's other tasks end here, their lit slots switched off."""
    for task in [t for t in run.tasks if t.order_id == order_id and t.id != keep]:
        run.put(task.moved(TaskState.CANCELLED))
        if task.state == TaskState.LIT:
            run.clear(task)


def _cancel(run: _Run, event: Cancel) -> None:
    _drop_order(run, event.order_id)
    run.effects.append(CancelOrder(event.order_id, event.reason))
    run.effects.append(
        MoveTotes(
            event.order_id, tuple(s for s in ToteState if s != ToteState.FREE), ToteState.EXCEPTION
        )
    )
    run.totes = {o: t for o, t in run.totes.items() if o != event.order_id}
    run.started = run.started - {event.order_id}
    if run.state.batch is None:
        return
    if run.tasks:
        _next_stop(run)
    else:
        _batch_over(run)


def _tote_scan(run: _Run, event: ToteScan) -> None:
    # A tote bound here is busy even when the edge read its row before that binding
    # was written (a tote scanned twice in one micro-batch).
    holder = event.holder or next((o for o, t in run.totes.items() if t == event.code), None)
    if holder is not None:
        run.record("tote_busy", ok=False, device=event.device, tote=event.code, order_id=holder)
        return
    if run.state.batch is None:
        run.record("tote_no_batch", ok=False, device=event.device, tote=event.code)
        return
    order_id = next(
        (t.order_id for t in sorted(run.tasks, key=lambda t: t.id) if t.order_id not in run.totes),
        None,
    )
    if order_id is None:
        run.record("tote_not_needed", ok=False, device=event.device, tote=event.code)
        return
    run.totes = {**run.totes, order_id: event.code}
    run.effects.append(SaveTote(event.code, order_id, ToteState.PICKING, run.state.id))
    run.record("tote_bound", order_id=order_id, device=event.device, tote=event.code)


def _repaint(run: _Run, panel: str) -> None:
    shown = replace(run.state, tasks=tuple(run.tasks)).shown(panel)
    work = facework.shown(run.state.stock)
    for slot in run.state.slots.get(panel, ()):
        task = shown.get(slot)
        if task is not None:
            run.light(task)
        elif work is not None and work[:2] == (panel, slot):
            run.effects.append(work[2])
        else:
            run.effects.append(Command(panel, "clear", {"slot": slot}))


def repaint_all(state: PickStation) -> list[Effect]:
    """Every panel of the station as its state says (what ``Resume`` sends)."""
    return decide(state, Resume())[1]
