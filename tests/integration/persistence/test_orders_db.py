"""Order intake, reservation, cancellation and receipts on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.persistence.helpers import new_order, seed_catalogue
from wcs.contract.topics import Topics
from wcs.errors import IdempotencyConflict, IllegalTransition, NotFound
from wcs.persistence.db import transaction
from wcs.persistence.orders import transition
from wcs.persistence.tables import alerts, order_events, outbox, replenishment_requests
from wcs.services.catalog import stock_view
from wcs.services.orders import cancel_order, receive_stock, submit_order

TOPICS = Topics("wh1")


async def events_of(engine: AsyncEngine, order_id: str) -> list[tuple[int, str | None, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(order_events.c.seq, order_events.c.from_state, order_events.c.to_state)
            .where(order_events.c.order_id == order_id)
            .order_by(order_events.c.seq)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def submit(engine: AsyncEngine, key: str, lines: list[tuple[str, int]], **kw: object):
    return await submit_order(
        engine,
        TOPICS,
        new_order(key, lines, **kw),
        idempotency_key=key,
        request_hash=key,
        actor="t",
    )


async def test_valid_order_is_reserved_with_events_and_outbox(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 5)]})
    result = await submit(engine, "k1", [("SKU-1", 2)])
    assert result.created and result.state == "reserved"
    assert await events_of(engine, result.order_id) == [
        (1, None, "received"),
        (2, "received", "validated"),
        (3, "validated", "reserved"),
    ]
    view = await stock_view(engine, "SKU-1")
    assert (view["on_hand"], view["reserved"], view["available"]) == (5, 2, 3)
    async with engine.connect() as conn:
        payloads = (
            await conn.scalars(
                select(outbox.c.payload)
                .where(outbox.c.topic == TOPICS.order_state(result.order_id))
                .order_by(outbox.c.id)
            )
        ).all()
    assert [json.loads(p)["seq"] for p in payloads] == [1, 2, 3]
    assert json.loads(payloads[-1])["to"] == "reserved"


async def test_invalid_order_is_kept_in_exception_with_alert(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 5)]})
    result = await submit(engine, "bad", [("SKU-404", 1)], phone="x", email=None)
    assert result.state == "exception"
    assert any("unknown SKU 'SKU-404'" in p for p in result.problems)
    assert any("no reachable contact" in p for p in result.problems)
    async with engine.connect() as conn:
        alert = (await conn.execute(select(alerts))).mappings().one()
        topics = (await conn.scalars(select(outbox.c.topic))).all()
    assert alert["code"] == "order_invalid" and alert["subject"] == result.order_id
    assert TOPICS.alert("warning") in topics


async def test_idempotency_same_body_same_order_other_body_conflict(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 5)]})
    first = await submit(engine, "k1", [("SKU-1", 1)])
    again = await submit(engine, "k1", [("SKU-1", 1)])
    assert (again.order_id, again.created) == (first.order_id, False)
    with pytest.raises(IdempotencyConflict, match="different body"):
        await submit_order(
            engine,
            TOPICS,
            new_order("k1", [("SKU-1", 2)]),
            idempotency_key="k1",
            request_hash="other",
            actor="t",
        )
    assert (await stock_view(engine, "SKU-1"))["reserved"] == 1


async def test_shortage_backorders_then_receipt_reserves_oldest_first(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 1)]})
    first = await submit(engine, "a", [("SKU-1", 1)])
    older = await submit(engine, "b", [("SKU-1", 2)])
    newer = await submit(engine, "c", [("SKU-1", 2)])
    assert (first.state, older.state, newer.state) == ("reserved", "backordered", "backordered")
    async with engine.connect() as conn:
        open_requests = await conn.scalar(
            select(func.sum(replenishment_requests.c.qty)).where(
                replenishment_requests.c.state == "open"
            )
        )
    assert open_requests == 4
    _, filled = await receive_stock(engine, TOPICS, "SKU-1", "A-01-01-1", 3, actor="t")
    assert filled == [older.order_id]  # 3 units: the older order first, the newer waits
    _, filled = await receive_stock(engine, TOPICS, "SKU-1", "A-01-01-1", 1, actor="t")
    assert filled == [newer.order_id]
    view = await stock_view(engine, "SKU-1")
    assert (view["on_hand"], view["reserved"], view["available"]) == (5, 5, 0)
    assert (await events_of(engine, older.order_id))[-1] == (4, "backordered", "reserved")


async def test_cancel_releases_stock_and_cannot_repeat(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 2), ("A-02-01-1", 2)]})
    result = await submit(engine, "k", [("SKU-1", 3)])
    assert (await stock_view(engine, "SKU-1"))["reserved"] == 3
    await cancel_order(engine, TOPICS, result.order_id, actor="cs", reason="customer asked")
    view = await stock_view(engine, "SKU-1")
    assert (view["on_hand"], view["reserved"]) == (4, 0)
    with pytest.raises(IllegalTransition, match="final"):
        await cancel_order(engine, TOPICS, result.order_id, actor="cs", reason=None)
    with pytest.raises(NotFound):
        await cancel_order(engine, TOPICS, "o-missing", actor="cs", reason=None)


async def test_illegal_transition_changes_nothing(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 2)]})
    result = await submit(engine, "k", [("SKU-1", 1)])
    with pytest.raises(IllegalTransition, match="cannot go from 'reserved' to 'shipped'"):
        async with transaction(engine) as conn:
            await transition(conn, TOPICS, result.order_id, "shipped", actor="t")
    assert len(await events_of(engine, result.order_id)) == 3


async def test_concurrent_transitions_keep_seq_gap_free(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 2)]})
    result = await submit(engine, "k", [("SKU-1", 1)])

    async def move(target: str) -> str:
        try:
            async with transaction(engine) as conn:
                await transition(conn, TOPICS, result.order_id, target, actor="t")
        except IllegalTransition:
            return "refused"
        return "done"

    # Both start from 'reserved'; exactly one can win, the other must see the new state.
    outcomes = await asyncio.gather(move("pick_planned"), move("cancelled"))
    seqs = [seq for seq, _, _ in await events_of(engine, result.order_id)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert "done" in outcomes
