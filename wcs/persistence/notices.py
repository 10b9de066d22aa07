"""PostgreSQL's notifications (``LISTEN``/``NOTIFY``): a writer rings, a reader wakes.

A notification is sent with its transaction's commit and not at all if it rolls back,
so a reader woken by one finds the row. It is not a queue: one sent while nobody
listens is gone, so a reader also looks on its own, every so often and each time it
starts listening again. SQLite has nothing of the kind; there ``notify`` does nothing
and readers only look every so often.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# A listening connection asks the server this often whether it is still there: a
# connection cut without a word (a server killed, a network gone) is otherwise only
# noticed when the next notification does not come.
ALIVE_S = 5.0


async def notify(conn: AsyncConnection, channel: str, payload: str = "") -> None:
    """Ring ``channel`` when ``conn``'s transaction commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_notify(channel, payload)))


def can_listen(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


async def listen(
    engine: AsyncEngine, channel: str, heard: Callable[[], None], listening: Callable[[], None]
) -> None:
    """Call ``heard`` for every notification on ``channel`` until the connection fails
    (raises; run it under a ``Reconnect``). ``listening`` is called once the listener
    is in place: the moment to look for what came while nobody listened."""
    async with engine.connect() as conn:
        raw: Any = (await conn.get_raw_connection()).driver_connection

        closed = asyncio.Event()

        def on_notice(*_: object) -> None:
            heard()

        def on_close(*_: object) -> None:
            closed.set()

        await raw.add_listener(channel, on_notice)
        raw.add_termination_listener(on_close)
        try:
            listening()
            while True:
                # A connection the server closed ends at once; one cut silently is
                # found by the question.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(ALIVE_S):
                        await closed.wait()
                        raise ConnectionError(f"the database closed the {channel} listener")
                await raw.fetchval("SELECT 1")
        finally:
            raw.remove_termination_listener(on_close)
            with contextlib.suppress(Exception):
                await raw.remove_listener(channel, on_notice)
