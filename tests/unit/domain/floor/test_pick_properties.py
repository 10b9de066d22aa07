"""A pick station driven at random (hypothesis.stateful), its effects applied to a
model of the rows and devices the edge would write, checked after every step.

Batches of random orders arrive; pickers scan right items, wrong items and totes
(new, bound, and bound here with a stale holder), confirm random quantities on lit
and dark slots; orders are cancelled; short picks are answered with stock elsewhere
or none; panels reconnect. Every step must keep:

- units conserved per line: picked + still to pick + cancelled + written off short
  - re-planned == planned; no task holds more than its qty, picked never drops;
- the activity log, the shelf and the order lines agree with the tasks' units;
- a refused scan changes nothing; a right scan with a tote is never refused;
- the display: every lit task's slot shows exactly its units left (>= 1), every lit
  slot belongs to a lit task, one lit task per slot; commands only to the station's
  own panels and slots, each a payload the panel accepts;
- every task, batch, tote and order move is one its table allows; an order is
  picked once, and only with none of its tasks left; no order is left in
  pick_planned or picking with nothing left to pick;
- decisions are deterministic.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

from hypothesis import event as tally
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.unit.domain.floor.legal import check_ptl, check_tote_moves, of
from wcs.domain.floor.effects import (
    CancelOrder,
    Command,
    Effect,
    LinePicked,
    MoveTotes,
    NextBatch,
    OrderMove,
    Reallocate,
    Record,
    ReservationPicked,
    SaveBatch,
    SaveTask,
    SaveTote,
    Shelf,
)
from wcs.domain.floor.machines import (
    BATCH_MOVES,
    TASK_MOVES,
    TOTE_MOVES,
    BatchState,
    TaskState,
    ToteState,
)
from wcs.domain.floor.pick import (
    BatchStarted,
    Cancel,
    Confirm,
    Idle,
    ItemScan,
    NoStock,
    PickEvent,
    PickStation,
    Reallocated,
    Repaint,
    Task,
    ToteScan,
    decide,
    repaint_all,
)
from wcs.domain.gs1 import with_check_digit
from wcs.domain.states import CANCELLABLE, OrderState, find_transition

STATION = "PS1"
P1, P2 = "PS1-PTL-1", "PS1-PTL-2"
SLOTS: Mapping[str, tuple[int, ...]] = {P1: tuple(range(6)), P2: (0, 1, 2)}
SKUS = ("SKU-A", "SKU-B", "SKU-C", "SKU-D", "SKU-E")
# Valid EAN-13s (a wrong check digit is refused as an unreadable label).
CODES = {with_check_digit(f"400638133{n:03d}"): sku for n, sku in enumerate(SKUS)} | {
    s: s for s in SKUS
}
BARCODE = {sku: code for code, sku in CODES.items() if code != sku}
# Two locations per SKU; the second of SKU-E has no light. The walking order is this
# list's order.
LOCATIONS: tuple[tuple[str, str, str | None, int | None], ...] = tuple(
    (f"{sku}-{n}", sku, panel, slot)
    for n in (1, 2)
    for i, sku in enumerate(SKUS)
    for panel, slot in [(P1, i) if n == 1 else ((P2, i % 3) if sku != "SKU-E" else (None, None))]
)
WALK = {loc: n for n, (loc, *_) in enumerate(LOCATIONS)}
PLACE = {loc: (panel, slot) for loc, _, panel, slot in LOCATIONS}
HOMES = {sku: [loc for loc, s, *_ in LOCATIONS if s == sku] for sku in SKUS}
OPEN_STATES = (TaskState.OPEN, TaskState.LIT)
FINISHED = (TaskState.DONE, TaskState.SHORT)


@dataclass
class Row:
    """A pick task as the database holds it after the effects written so far."""

    batch: str
    order: str
    line: int
    reservation: int
    sku: str
    location: str
    qty: int
    seq: int  # walking order; re-planned units come after everything left
    picked: int = 0
    state: TaskState = TaskState.OPEN

    def task(self, task_id: int, seq: int | None = None) -> Task:
        """The task as an owner loads it (``seq``: where the edge first placed it)."""
        panel, slot = PLACE[self.location]
        return Task(
            task_id,
            self.seq if seq is None else seq,
            self.order,
            self.line,
            self.reservation,
            self.sku,
            self.location,
            self.qty,
            self.picked,
            self.state,
            panel,
            slot,
        )


class PickStationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = PickStation(STATION, SLOTS)
        self.ids = itertools.count(1)
        self.rows: dict[int, Row] = {}
        self.planned: Counter[int] = Counter()  # line -> units first planned
        self.replanned: Counter[int] = Counter()  # line -> units reserved elsewhere
        self.line_of: dict[tuple[str, str], int] = {}
        self.written_off: Counter[int] = Counter()  # line -> units short on the shelf
        self.shelf_picks: Counter[tuple[str, str, str]] = Counter()
        self.logged_picks: Counter[tuple[str, str, str]] = Counter()
        self.line_picked: Counter[int] = Counter()
        self.reservations_done: Counter[int] = Counter()
        self.orders: dict[str, str] = {}
        self.picked_moves: Counter[str] = Counter()
        self.totes: dict[str, tuple[str | None, ToteState]] = {}
        self.batches: dict[str, BatchState] = {}
        self.display: dict[tuple[str, int], int] = {}

    # --- the edge: decide, check, write the effects -----------------------------------

    def apply(self, event: PickEvent, data: st.DataObject | None = None) -> list[Effect]:
        before = self.state
        after, effects = decide(before, event)
        assert decide(before, event) == (after, effects), "not deterministic"
        check_ptl(of(Command, effects), SLOTS)
        check_tote_moves(effects)
        if any(r.kind == "mispick" for r in of(Record, effects)):
            assert after.tasks == before.tasks, "a refused scan changed a task"
            assert after.started == before.started
            assert not of(SaveTask, effects) and not of(OrderMove, effects)
            assert not of(Shelf, effects)
            assert not [r for r in of(Record, effects) if r.kind == "pick"]
        for record in of(Record, effects):  # what ran (--hypothesis-show-statistics)
            tally(f"{record.kind} {record.detail.get('cause', '')}".strip())
        for moved in of(OrderMove, effects):
            tally(f"order -> {moved.dst}")
        self.state = after
        for effect in effects:
            self.write(effect)
        for order, n in self.picked_moves.items():
            if n:
                assert not self.left(order), f"{order} picked with tasks left"
        for ask in of(Reallocate, effects):
            self.answer(ask, data)
        return effects

    def write(self, effect: Effect) -> None:
        match effect:
            case SaveTask():
                row = self.rows[effect.task_id]
                dst = TaskState(effect.state)
                assert dst == row.state or dst in TASK_MOVES[row.state], (row.state, dst)
                assert row.state in OPEN_STATES, "a finished task was written again"
                assert row.picked <= effect.picked <= row.qty
                assert (effect.panel, effect.slot) == PLACE[row.location]
                row.picked, row.state = effect.picked, dst
            case SaveBatch():
                src = self.batches[effect.batch_id]
                assert BatchState(effect.state) in BATCH_MOVES[src]
                self.batches[effect.batch_id] = BatchState(effect.state)
                if effect.state == BatchState.DONE:
                    assert not any(
                        r.batch == effect.batch_id and r.state in OPEN_STATES
                        for r in self.rows.values()
                    )
            case OrderMove():
                now = self.orders[effect.order_id]
                if effect.src is not None:
                    assert effect.src == now, f"{effect}: the order is {now}"
                assert find_transition(now, effect.dst) is not None, f"{effect}: from {now}"
                self.orders[effect.order_id] = effect.dst
                if effect.dst == OrderState.PICKED:
                    self.picked_moves[effect.order_id] += 1
                    assert self.picked_moves[effect.order_id] == 1
            case CancelOrder():
                now = self.orders.get(effect.order_id, OrderState.PICKING)
                assert now in CANCELLABLE or now == OrderState.CANCELLED
                self.orders[effect.order_id] = OrderState.CANCELLED
            case SaveTote():
                holder, now = self.totes.get(effect.code, (None, ToteState.FREE))
                assert ToteState(effect.state) in TOTE_MOVES[now]
                assert now == ToteState.FREE, f"{effect.code} is held by {holder}"
                self.totes[effect.code] = (effect.order_id, ToteState(effect.state))
            case MoveTotes():
                for code, (holder, now) in list(self.totes.items()):
                    if holder == effect.order_id and now in effect.src:
                        self.totes[code] = (holder, ToteState(effect.dst))
            case Shelf():
                assert effect.qty < 0
                assert effect.order_id is not None
                if effect.kind == "pick":
                    key = (effect.order_id, effect.sku, effect.location)
                    self.shelf_picks[key] -= effect.qty
                else:
                    assert effect.kind == "shortage"
                    self.written_off[self.line_of[effect.order_id, effect.sku]] -= effect.qty
            case LinePicked():
                self.line_picked[effect.line_id] += effect.qty
            case ReservationPicked():
                [row] = [r for r in self.rows.values() if r.reservation == effect.reservation_id]
                self.reservations_done[effect.reservation_id] += 1
                assert effect.qty == (None if row.picked == row.qty else row.picked)
            case Record(kind="pick"):
                assert effect.order_id is not None
                key = (effect.order_id, effect.detail["sku"], effect.detail["location"])
                self.logged_picks[key] += effect.detail["qty"]
            case Command(name="light"):
                assert effect.fields["qty"] >= 1, f"{effect}: a count-down below one"
                self.display[effect.device, effect.fields["slot"]] = effect.fields["qty"]
            case Command(name="clear"):
                self.display.pop((effect.device, effect.fields["slot"]), None)
            case NextBatch():
                assert effect.station == STATION
                assert self.state.batch is None

    def answer(self, ask: Reallocate, data: st.DataObject | None) -> None:
        """The edge's answer to a short pick: stock elsewhere (new tasks), or none."""
        assert data is not None
        row = self.rows[ask.task_id]
        assert (ask.order_id, ask.line_id, ask.sku) == (row.order, row.line, row.sku)
        assert ask.qty == row.qty - row.picked >= 1
        if not data.draw(st.booleans(), label="stock elsewhere"):
            self.apply(NoStock(ask.task_id))
            return
        split = data.draw(st.integers(0, ask.qty - 1), label="split") if ask.qty > 1 else 0
        parts = [q for q in (ask.qty - split, split) if q]
        last = max(r.seq for r in self.rows.values() if r.state in OPEN_STATES)
        tasks = []
        for qty in parts:
            location = data.draw(st.sampled_from(HOMES[ask.sku]), label="location")
            tasks.append(
                self.new_task(row.batch, row.order, ask.line_id, ask.sku, location, qty, last + 1)
            )
        self.replanned[ask.line_id] += ask.qty
        self.apply(Reallocated(ask.task_id, tuple(tasks)))

    def new_task(
        self, batch: str, order: str, line: int, sku: str, loc: str, qty: int, seq: int
    ) -> Task:
        task_id = next(self.ids)
        reservation = next(self.ids)
        self.rows[task_id] = Row(batch, order, line, reservation, sku, loc, qty, seq)
        # The edge's walking position; re-planned tasks are placed by the station.
        return self.rows[task_id].task(task_id, WALK[loc])

    def left(self, order: str) -> list[Row]:
        return [r for r in self.rows.values() if r.order == order and r.state in OPEN_STATES]

    def lit(self) -> list[Task]:
        return [t for t in self.state.tasks if t.state == TaskState.LIT]

    # --- what happens on the floor --------------------------------------------------

    @precondition(lambda self: self.state.batch is None)
    @rule(data=st.data())
    def batch_arrives(self, data: st.DataObject) -> None:
        batch = f"B{next(self.ids)}"
        self.batches[batch] = BatchState.OPEN
        tasks: list[Task] = []
        totes: dict[str, str] = {}
        begun: set[str] = set()
        for _ in range(data.draw(st.integers(0, 3), label="orders")):
            order = f"O{next(self.ids)}"
            self.orders[order] = OrderState.PICK_PLANNED
            if data.draw(st.booleans(), label="picked again after a failed QC"):
                self.orders[order] = OrderState.PICKING
                begun.add(order)
            skus = data.draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=3, unique=True))
            for sku in skus:
                line = next(self.ids)
                self.line_of[order, sku] = line
                qty = data.draw(st.integers(1, 4), label="qty")
                self.planned[line] = qty
                split = data.draw(st.integers(0, qty - 1), label="split")
                for part, loc in zip((qty - split, split), HOMES[sku], strict=True):
                    if part:
                        tasks.append(self.new_task(batch, order, line, sku, loc, part, WALK[loc]))
            if data.draw(st.booleans(), label="tote ready"):
                code = f"T{next(self.ids)}"
                self.totes[code] = (order, ToteState.PICKING)
                totes[order] = code
        self.apply(BatchStarted(batch, tuple(tasks), CODES, totes, frozenset(begun)))

    @precondition(lambda self: any(t.state == TaskState.LIT for t in self.state.tasks))
    @rule(data=st.data())
    def scan_a_lit_item(self, data: st.DataObject) -> None:
        task = data.draw(st.sampled_from(self.lit()))
        code = data.draw(st.sampled_from([BARCODE[task.sku], task.sku]))
        ready = any(t.sku == task.sku and t.order_id in self.state.totes for t in self.lit())
        effects = self.apply(ItemScan("S1", code), data)
        picks = [r for r in of(Record, effects) if r.kind == "pick"]
        if ready:  # a right item for an order with its tote: never refused
            assert [(r.detail["sku"], r.detail["qty"]) for r in picks] == [(task.sku, 1)]
        else:
            assert [r.detail["cause"] for r in of(Record, effects)] == ["no_tote"]

    @precondition(lambda self: any(t.state == TaskState.OPEN for t in self.state.tasks))
    @rule(data=st.data())
    def scan_an_item_of_a_later_stop(self, data: st.DataObject) -> None:
        waiting = [t for t in self.state.tasks if t.state == TaskState.OPEN]
        self.scan_any_item(BARCODE[data.draw(st.sampled_from(waiting)).sku])

    @rule(code=st.sampled_from([*CODES, "JUNK", ""]))
    def scan_any_item(self, code: str) -> None:
        sku = self.state.codes.get(code)
        ready = any(t.sku == sku and t.order_id in self.state.totes for t in self.lit())
        effects = self.apply(ItemScan("S1", code))
        picked = [r for r in of(Record, effects) if r.kind == "pick"]
        assert bool(picked) == ready, "a wrong scan counted, or a right one refused"

    @rule()
    def scan_a_new_tote(self) -> None:
        self.apply(ToteScan("S1", f"T{next(self.ids)}", None))

    @precondition(lambda self: bool(self.totes))
    @rule(data=st.data(), stale=st.booleans())
    def scan_a_known_tote(self, data: st.DataObject, stale: bool) -> None:
        """The edge says who holds it; ``stale``: a tote bound here, its row read
        before that binding was written (free then)."""
        code = data.draw(st.sampled_from(sorted(self.totes)))
        holder, now = self.totes[code]
        fresh = holder if now != ToteState.FREE else None
        stale = stale and code in self.state.totes.values()
        effects = self.apply(ToteScan("S1", code, None if stale else fresh))
        if fresh is not None:
            assert [r.kind for r in effects if isinstance(r, Record)] == ["tote_busy"]

    @precondition(lambda self: any(t.panel for t in self.lit()))
    @rule(data=st.data())
    def confirm_a_lit_slot(self, data: st.DataObject) -> None:
        task = data.draw(st.sampled_from([t for t in self.lit() if t.panel]))
        assert task.panel is not None and task.slot is not None
        qty = data.draw(st.integers(0, task.left + 2), label="confirmed")
        self.apply(Confirm(task.panel, task.slot, qty), data)

    @rule(data=st.data(), qty=st.integers(0, 3))
    def confirm_any_slot(self, data: st.DataObject, qty: int) -> None:
        panel = data.draw(st.sampled_from(sorted(SLOTS)))
        slot = data.draw(st.sampled_from(SLOTS[panel]))
        self.apply(Confirm(panel, slot, qty), data)

    @rule(data=st.data())
    def cancel_an_order(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from([*sorted(self.orders), "O-ELSEWHERE"]))
        self.apply(Cancel(order, "customer asked"))

    @rule(panel=st.sampled_from([P1, P2]))
    def panel_reconnects(self, panel: str) -> None:
        effects = self.apply(Repaint(panel))
        assert {c.fields["slot"] for c in of(Command, effects)} == set(SLOTS[panel])

    @rule()
    def idle(self) -> None:
        self.apply(Idle())

    @precondition(lambda self: self.state.batch is not None)
    @rule()
    def station_taken_over(self) -> None:
        """Another controller loads the station from the rows written so far (only the
        recent SKUs, a hint for the mispick's cause, are memory) and repaints it."""
        batch = self.state.batch
        rows = [(i, r) for i, r in self.rows.items() if r.batch == batch]
        orders = {r.order for _, r in rows}
        loaded = PickStation(
            STATION,
            SLOTS,
            batch=batch,
            tasks=tuple(
                sorted(
                    (r.task(i) for i, r in rows if r.state in OPEN_STATES),
                    key=lambda t: (t.seq, t.id),
                )
            ),
            totes={o: c for c, (o, now) in self.totes.items() if now == ToteState.PICKING and o},
            codes=CODES,
            started=frozenset(o for o in orders if self.orders[o] == OrderState.PICKING),
            recent=self.state.recent,
        )
        # Orders already picked may linger in memory's ``started``: they have no task.
        live = self.state.started
        assert loaded == replace(self.state, started=frozenset(o for o in live if self.left(o)))
        self.state = loaded
        effects = repaint_all(loaded)
        check_ptl(of(Command, effects), SLOTS)
        for effect in effects:
            self.write(effect)

    # --- what must hold after every step --------------------------------------------

    @invariant()
    def memory_matches_the_rows(self) -> None:
        held = {t.id: (t.state, t.picked) for t in self.state.tasks}
        rows = {i: (r.state, r.picked) for i, r in self.rows.items() if r.state in OPEN_STATES}
        assert held == rows
        keys = [(t.seq, t.id) for t in self.state.tasks]
        assert keys == sorted(keys), "tasks out of walking order"
        for task in self.state.tasks:
            assert 0 <= task.picked < task.qty or task.state == TaskState.LIT
        # The per-order count kept beside the tasks is theirs, after any step.
        assert self.state.order_tasks == Counter(t.order_id for t in self.state.tasks)

    @invariant()
    def units_are_conserved(self) -> None:
        found: Counter[int] = Counter()
        for row in self.rows.values():
            assert 0 <= row.picked <= row.qty
            found[row.line] += row.picked if row.state != TaskState.SHORT else row.qty
            if row.state in OPEN_STATES or row.state == TaskState.CANCELLED:
                found[row.line] += row.qty - row.picked
        for line, planned in self.planned.items():
            assert found[line] - self.replanned[line] == planned
        # Short tasks: their missing units are exactly what was written off.
        short: Counter[int] = Counter()
        for row in self.rows.values():
            if row.state == TaskState.SHORT:
                short[row.line] += row.qty - row.picked
        assert +short == +self.written_off

    @invariant()
    def log_shelf_and_lines_agree_with_tasks(self) -> None:
        on_tasks: Counter[tuple[str, str, str]] = Counter()
        finished: Counter[tuple[str, str, str]] = Counter()
        lines: Counter[int] = Counter()
        for row in self.rows.values():
            key = (row.order, row.sku, row.location)
            on_tasks[key] += row.picked
            if row.state in FINISHED:
                finished[key] += row.picked
                lines[row.line] += row.picked
                assert self.reservations_done[row.reservation] == 1
            else:
                assert self.reservations_done[row.reservation] == 0
        assert +self.logged_picks == +on_tasks
        assert +self.shelf_picks == +finished
        assert +self.line_picked == +lines

    @invariant()
    def the_display_shows_the_units_left(self) -> None:
        shown: dict[tuple[str, int], int] = {}
        for task in self.lit():
            if task.panel is not None and task.slot is not None:
                assert (task.panel, task.slot) not in shown, "two lit tasks on one slot"
                shown[task.panel, task.slot] = task.left
        # A short task waits for its answer in the same transaction: never seen here.
        assert self.display == shown

    @invariant()
    def no_order_is_stranded(self) -> None:
        for order, now in self.orders.items():
            if now in (OrderState.PICK_PLANNED, OrderState.PICKING):
                assert self.left(order), f"{order} is {now} with nothing left to pick"
            if now == OrderState.PICKED:
                assert self.picked_moves[order] == 1

    @invariant()
    def totes_follow_their_orders(self) -> None:
        for order, code in self.state.totes.items():
            assert self.totes[code] == (order, ToteState.PICKING)
            assert self.orders[order] in (OrderState.PICK_PLANNED, OrderState.PICKING)
        bound = list(self.state.totes.values())
        assert len(bound) == len(set(bound)), "one tote bound to two orders"


PickStationMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestPickStation = PickStationMachine.TestCase
