"""Tote moves of one batch: the same end state, in as few statements as their shapes.

When several stations end an order in one batch, each order's totes move on
(``MoveTotes``); the unit sends the moves of one shape as one statement, and keeps
them in order with the effects that also write totes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.store import Unit
from wcs.contract.topics import Topics
from wcs.domain.floor.effects import MoveTotes, PlaceTask, SaveTote
from wcs.domain.floor.machines import ToteState
from wcs.persistence.db import transaction
from wcs.persistence.tables import totes
from wcs.timeutil import utcnow

PICKING, TO_QC = ToteState.PICKING, ToteState.TO_QC


async def test_tote_moves_of_one_shape_go_as_one_statement(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(totes),
            [
                {"code": f"T{o}", "order_id": f"o{o}", "state": PICKING, "station": "S1",
                 "updated_at": utcnow()}
                for o in (1, 2, 4)
            ],
        )  # fmt: skip
    updates: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE TOTES"):
            updates.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with transaction(engine) as conn:
            unit = Unit(conn, Topics("t"), "controller:i1", utcnow())
            unit.apply(
                [
                    MoveTotes("o1", (PICKING,), TO_QC),
                    PlaceTask(999, 1),  # another table: the moves need not wait for it
                    MoveTotes("o2", (PICKING,), TO_QC),
                    # A tote written in between: the moves so far go first.
                    SaveTote("T3", "o3", PICKING, "S2"),
                    MoveTotes("o3", (PICKING,), TO_QC),
                    MoveTotes("o4", (PICKING,), TO_QC, station="P1", keep_station=False),
                ]
            )
            await unit.finish()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    async with engine.connect() as conn:
        rows = {r.code: (r.order_id, r.state, r.station) for r in await conn.execute(select(totes))}
    assert rows == {
        "T1": ("o1", TO_QC, "S1"),
        "T2": ("o2", TO_QC, "S1"),
        "T3": ("o3", TO_QC, "S2"),
        "T4": ("o4", TO_QC, "P1"),
    }
    # o1 and o2 together; T3's save (then its insert); o3; o4 (another shape).
    assert len(updates) == 4, updates
