"""The controller benchmark's floor responders (``bench.durable --rows``) write what a
pick scan writes: every scan its inbox key, activity row and task count; every fourth
the rows of a finished task, the order's event and its outbox message sent. A key seen
before is not answered again."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from bench.b_controller import seed
from bench.durable import PickRows
from bench.support import scratch_postgres

COUNTED = (
    "processed_messages",
    "activity",
    "stock_moves",
    "order_events",
    "outbox",
)


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    counts = {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in COUNTED}
    counts["picked"] = await conn.fetchval("SELECT count(*) FROM pick_tasks WHERE qty_picked = 1")
    counts["lit, none picked"] = await conn.fetchval(
        "SELECT count(*) FROM pick_tasks WHERE state = 'lit' AND qty_picked = 0"
    )
    counts["sent"] = await conn.fetchval(
        "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"
    )
    return counts


async def _exercise(url: str, one: bool) -> tuple[dict[str, int], dict[str, int], int, int]:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        rows = PickRows(
            await conn.fetch(
                "SELECT id, batch_id, order_id, line_id, reservation_id, sku, location"
                " FROM pick_tasks ORDER BY id"
            ),
            one=one,
        )
        before = await _counts(conn)
        # Tasks 1-8 of the first station; the fourth and the eighth end. The fifth is
        # next after the fourth, but scanned here: only the ninth is lit.
        batch = [("k", f"p500-{n}".encode()) for n in range(8)]
        answered = await rows.store(conn, batch)
        after = await _counts(conn)
        again = await rows.store(conn, batch[:2])
        seq = await conn.fetchval(
            "SELECT seq FROM orders WHERE id = (SELECT order_id FROM pick_tasks WHERE id = $1)",
            rows.tasks[3]["id"],
        )
    finally:
        await conn.close()
    return before, after, len(answered) - len(again), seq


@pytest.mark.parametrize("one", [False, True], ids=["per-table", "one-statement"])
def test_a_batch_writes_a_pick_scans_rows_once(pg_url: str, one: bool) -> None:
    with scratch_postgres(pg_url) as url:
        asyncio.run(seed(url, 16))
        before, after, answered, seq = asyncio.run(_exercise(url, one))
    grown = {table: after[table] - before[table] for table in after}
    assert answered == 8  # all eight answered, the repeated two not again
    assert grown == {
        "processed_messages": 8,
        "activity": 8,
        "stock_moves": 2,  # two finished tasks
        "order_events": 2,
        "outbox": 2,
        "picked": 8,
        "lit, none picked": 1,
        "sent": 2,
    }
    assert seq == 5  # the seeded order's 4 moves, then this one
