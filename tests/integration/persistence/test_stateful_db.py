"""The order state machine and reservation, driven at random against a real database.

Hypothesis plays an operator and a shop at once: it receives stock, submits valid and
invalid orders, cancels, and pushes orders through legal and illegal transitions via
the services. A small model of the expected outcome runs beside it, and after every
step the database itself must satisfy:

- stock is never negative and never more reserved than on hand;
- for each pile, the active reservations add up to ``stock.reserved``;
- no unit appears or disappears: on hand equals everything received;
- each order's events are numbered 1..n without gaps, chain from one state to the
  next by legal transitions only, and end in the order's current state;
- every order is in a state of the machine, the one the model expects.

SQLite runs the long version, PostgreSQL a shorter one. Runs are derandomised.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import _wipe
from tests.integration.persistence.helpers import new_order
from wcs.contract.topics import Topics
from wcs.domain.states import CANCELLABLE, OrderState, find_transition
from wcs.errors import IllegalTransition
from wcs.persistence.db import make_engine, transaction
from wcs.persistence.orders import transition
from wcs.persistence.tables import order_events, orders, reservations, stock, stock_moves
from wcs.services.catalog import LocationData, SkuData, upsert_location, upsert_sku
from wcs.services.orders import cancel_order, receive_stock, submit_order

SKUS = ("SKU-A", "SKU-B", "SKU-C")
PILES = {sku: (f"A-0{n}-01-1", f"A-0{n}-02-1") for n, sku in enumerate(SKUS, start=1)}
STATES = [s.value for s in OrderState]
TOPICS = Topics("stateful")

Demand = dict[str, int]


def fits(demand: Demand, available: Demand) -> bool:
    return all(available.get(sku, 0) >= qty for sku, qty in demand.items())


class OrderMachine(RuleBasedStateMachine):
    # One loop and engine for a whole run; each example starts from an empty database.
    loop: ClassVar[asyncio.AbstractEventLoop]
    engine: ClassVar[AsyncEngine]

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.keys = itertools.count()
        self.state: dict[str, str] = {}  # the model: order -> expected state
        self.demand: dict[str, Demand] = {}
        self.held: dict[str, Demand] = {}  # units reserved for each order
        self.on_hand: Counter[str] = Counter()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @property
    def available(self) -> Demand:
        held: Counter[str] = Counter()
        for demand in self.held.values():
            held.update(demand)
        return {sku: self.on_hand[sku] - held[sku] for sku in SKUS}

    @initialize()
    def catalogue(self) -> None:
        async def setup() -> None:
            await _wipe(self.engine)
            for sku, piles in PILES.items():
                await upsert_sku(self.engine, SkuData(sku, sku, 100.0, 10, 10, 10, None))
                for code in piles:
                    _, aisle, bay, level = code.split("-")
                    await upsert_location(
                        self.engine, LocationData(code, "pick", int(aisle), int(bay), int(level))
                    )

        self.run(setup())

    # --- rules -----------------------------------------------------------------------

    @rule(sku=st.sampled_from(SKUS), pile=st.integers(0, 1), qty=st.integers(1, 6))
    def receive(self, sku: str, pile: int, qty: int) -> None:
        _, filled = self.run(
            receive_stock(self.engine, TOPICS, sku, PILES[sku][pile], qty, actor="test")
        )
        self.on_hand[sku] += qty
        for order_id in filled:
            assert self.state[order_id] == OrderState.BACKORDERED
            assert sku in self.demand[order_id]
            self.state[order_id] = OrderState.RESERVED
            self.held[order_id] = dict(self.demand[order_id])
        # Oldest first, skipping orders that do not fit: whoever still waits for this
        # SKU cannot be served from what is left.
        for order_id, state in self.state.items():
            if state == OrderState.BACKORDERED and sku in self.demand[order_id]:
                assert not fits(self.demand[order_id], self.available), order_id

    @rule(
        target=orders,
        lines=st.lists(
            st.tuples(st.sampled_from((*SKUS, "SKU-UNKNOWN")), st.integers(1, 4)),
            min_size=1,
            max_size=3,
        ),
    )
    def submit(self, lines: list[tuple[str, int]]) -> str:
        key = f"k{next(self.keys)}"
        result = self.run(
            submit_order(
                self.engine, TOPICS, new_order(key, lines), idempotency_key=key,
                request_hash=key, actor="shop",
            )
        )  # fmt: skip
        demand: Counter[str] = Counter()
        for sku, qty in lines:
            demand[sku] += qty
        if "SKU-UNKNOWN" in demand or len(demand) < len(lines):  # unknown or repeated SKU
            expected = OrderState.EXCEPTION
        elif fits(demand, self.available):
            expected = OrderState.RESERVED
            self.held[result.order_id] = dict(demand)
        else:
            expected = OrderState.BACKORDERED
        assert result.state == expected, (lines, self.available)
        self.state[result.order_id] = expected
        self.demand[result.order_id] = dict(demand)
        return str(result.order_id)

    @rule(order_id=orders)
    def cancel(self, order_id: str) -> None:
        before = self.state[order_id]
        try:
            self.run(cancel_order(self.engine, TOPICS, order_id, actor="cs", reason="test"))
        except IllegalTransition:
            assert before not in CANCELLABLE
            return
        assert before in CANCELLABLE
        self.state[order_id] = OrderState.CANCELLED
        self.held.pop(order_id, None)

    @rule(order_id=orders, to=st.sampled_from(STATES))
    def move(self, order_id: str, to: str) -> None:
        """Any move the services could ask for; only the table's moves may happen."""
        if to == OrderState.CANCELLED:
            return  # cancelling goes through cancel_order, which releases stock

        async def apply() -> None:
            async with transaction(self.engine) as conn:
                await transition(conn, TOPICS, order_id, to, actor="op", reason="test")

        before = self.state[order_id]
        try:
            self.run(apply())
        except IllegalTransition:
            assert find_transition(before, to) is None
            return
        assert find_transition(before, to) is not None
        self.state[order_id] = to

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def stock_is_sound(self) -> None:
        async def read() -> tuple[list[Any], dict[tuple[str, str], int], int]:
            async with self.engine.connect() as conn:
                piles = (await conn.execute(select(stock))).all()
                active = await conn.execute(
                    select(
                        reservations.c.sku, reservations.c.location, func.sum(reservations.c.qty)
                    )
                    .where(reservations.c.state == "active")
                    .group_by(reservations.c.sku, reservations.c.location)
                )
                received = await conn.scalar(
                    select(func.coalesce(func.sum(stock_moves.c.qty), 0)).where(
                        stock_moves.c.kind == "receipt"
                    )
                )
                return piles, {(r[0], r[1]): int(r[2]) for r in active}, int(received or 0)

        piles, active, received = self.run(read())
        for pile in piles:
            assert 0 <= pile.reserved <= pile.on_hand, pile
            assert active.get((pile.sku, pile.location), 0) == pile.reserved, pile
        assert set(active) <= {(p.sku, p.location) for p in piles}
        assert sum(p.on_hand for p in piles) == received == sum(self.on_hand.values())
        held: Counter[str] = Counter()
        for demand in self.held.values():
            held.update(demand)
        by_sku: Counter[str] = Counter()
        for pile in piles:
            by_sku[pile.sku] += pile.reserved
        assert +by_sku == +held

    @invariant()
    def histories_are_gap_free_and_legal(self) -> None:
        async def read() -> tuple[dict[str, tuple[str, int]], list[Any]]:
            async with self.engine.connect() as conn:
                heads = {r.id: (r.state, r.seq) for r in await conn.execute(select(orders))}
                events = (
                    await conn.execute(
                        select(order_events).order_by(order_events.c.order_id, order_events.c.seq)
                    )
                ).all()
                return heads, events

        heads, events = self.run(read())
        assert {k: v[0] for k, v in heads.items()} == self.state
        for order_id, rows in itertools.groupby(events, key=lambda e: e.order_id):
            history = list(rows)
            state, seq = heads[order_id]
            assert [e.seq for e in history] == list(range(1, seq + 1)), order_id
            assert history[0].from_state is None and history[0].to_state == OrderState.RECEIVED
            for prev, event in itertools.pairwise(history):
                assert event.from_state == prev.to_state
                assert find_transition(event.from_state, event.to_state) is not None, event
            assert history[-1].to_state == state and state in STATES


def check(url: str, examples: int, steps: int) -> None:
    loop = asyncio.new_event_loop()
    OrderMachine.loop = loop
    OrderMachine.engine = make_engine(url)
    try:
        run_state_machine_as_test(
            OrderMachine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        loop.run_until_complete(OrderMachine.engine.dispose())
        loop.close()


@pytest.mark.slow
def test_orders_and_stock_on_sqlite(tmp_path: object) -> None:
    from tests.conftest import _migrate_once

    url = f"sqlite+aiosqlite:///{tmp_path}/stateful.db"
    _migrate_once(url)
    check(url, examples=30, steps=25)


@pytest.mark.postgres
def test_orders_and_stock_on_postgres(pg_only_url: str) -> None:
    check(pg_only_url, examples=6, steps=20)
