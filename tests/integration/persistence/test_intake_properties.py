"""Properties of a batch of submissions, on SQLite and PostgreSQL (hypothesis).

Whatever a batch holds — keys repeated with the same or another body, keys already
used by an earlier batch, invalid orders, more demand than stock — one key is one
order, a replay answers with that order, another body under a used key is refused,
every order's events run 1..n without gaps, and stock is never oversold nor held by
nobody.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import _wipe
from tests.integration.persistence.helpers import new_order, seed_catalogue
from wcs.contract.topics import Topics
from wcs.errors import IdempotencyConflict
from wcs.persistence.db import make_engine
from wcs.persistence.tables import order_events, orders, reservations, stock
from wcs.services.intake import IntakeResult, Submission, commit_batch

TOPICS = Topics("wh1")
SKUS = ("P-1", "P-2")

_line = st.tuples(st.sampled_from((*SKUS, "NOPE")), st.integers(1, 4))
_submission = st.tuples(
    st.integers(0, 5),  # key
    st.integers(0, 1),  # body variant
    st.lists(_line, min_size=1, max_size=2, unique_by=lambda line: line[0]),
)
_batch = st.lists(_submission, min_size=1, max_size=10)


def _sub(key: int, variant: int, lines: list[tuple[str, int]]) -> Submission:
    # The body follows the variant only: same key and variant, same body and hash.
    return Submission(
        new_order(f"ext-{key}", lines), f"key-{key}", f"hash-{key}-{variant}-{lines}", "prop"
    )


async def _run(url: str, stock_qty: dict[str, int], batches: list[list[Any]]) -> None:
    engine = make_engine(url)
    try:
        await _wipe(engine)
        await seed_catalogue(
            engine,
            TOPICS,
            {sku: [(f"A-01-0{n + 1}-1", stock_qty[sku])] for n, sku in enumerate(SKUS)},
        )
        answered: dict[str, tuple[str, str]] = {}  # key -> (request hash, order id)
        for batch in batches:
            subs = [_sub(*s) for s in batch]
            async with engine.connect() as conn:
                outcomes = await commit_batch(conn, TOPICS, subs)
            for sub, outcome in zip(subs, outcomes, strict=True):
                known = answered.get(sub.key)
                if isinstance(outcome, IdempotencyConflict):
                    assert known is not None and known[0] != sub.request_hash
                    continue
                assert isinstance(outcome, IntakeResult), outcome
                if known is None:
                    assert outcome.created
                    answered[sub.key] = (sub.request_hash, outcome.order_id)
                else:
                    assert known == (sub.request_hash, outcome.order_id)
                    assert not outcome.created
        await _check_store(engine, stock_qty, len(answered))
    finally:
        await engine.dispose()


async def _check_store(engine: AsyncEngine, stock_qty: dict[str, int], made: int) -> None:
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(orders)) == made
        seqs: dict[str, list[int]] = {}
        for order_id, seq in await conn.execute(
            select(order_events.c.order_id, order_events.c.seq)
        ):
            seqs.setdefault(order_id, []).append(seq)
        assert len(seqs) == made
        assert all(sorted(s) == list(range(1, len(s) + 1)) for s in seqs.values())
        held: Counter[str] = Counter()
        for sku, qty in await conn.execute(
            select(reservations.c.sku, reservations.c.qty).where(reservations.c.state == "active")
        ):
            held[sku] += qty
        for sku, on_hand, reserved in await conn.execute(
            select(stock.c.sku, stock.c.on_hand, stock.c.reserved)
        ):
            assert on_hand == stock_qty[sku]
            assert reserved == held[sku] <= on_hand


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stock_qty=st.fixed_dictionaries({sku: st.integers(1, 8) for sku in SKUS}),
    batches=st.lists(_batch, min_size=1, max_size=3),
)
def test_batches_keep_keys_events_and_stock_exact(
    db_url: str, stock_qty: dict[str, int], batches: list[list[Any]]
) -> None:
    asyncio.run(_run(db_url, stock_qty, batches))
