"""Committed outbox rows wake the relay: PostgreSQL LISTEN on a connection of its own.

The ``outbox_notify`` trigger (migration 0010) notifies ``wcs_outbox`` when a
transaction commits rows to publish now. While the relay listens it needs to poll
only for what no notification announces (rows whose deferral ended), so an idle
relay costs a query a second instead of fifty; a row written by another process is
published as soon as it commits instead of at the next poll. A notification lost
while the connection is down is covered by the poll, which runs at full rate again
until the connection is back.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

CHANNEL = "wcs_outbox"
# How often a lost listening connection is tried again.
RETRY_S = 1.0


class OutboxSignal:
    """``await signal.listening()`` before each wait: True while notifications arrive."""

    def __init__(self, engine: AsyncEngine, wake: Callable[[], None]) -> None:
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._wake = wake
        self._conn: Any = None
        self._next_try = 0.0
        self._failing = False  # said so once; quiet until it listens again

    def _notified(self, *_args: object) -> None:
        self._wake()

    async def listening(self) -> bool:
        """Whether the relay is listening, connecting (again) when it is due."""
        if self._conn is not None and not self._conn.is_closed():
            return True
        self._conn = None
        if time.monotonic() < self._next_try:
            return False
        self._next_try = time.monotonic() + RETRY_S
        import asyncpg

        conn = None
        try:
            conn = await asyncpg.connect(self._dsn, timeout=5)
            await conn.add_listener(CHANNEL, self._notified)
            # A lost connection wakes the relay too: it polls until listening again.
            conn.add_termination_listener(self._notified)
        except Exception as exc:  # the poll covers for it; keep trying
            if conn is not None:
                conn.terminate()
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "outbox relay cannot listen for new rows (%s): polling instead", exc)
            self._failing = True
            return False
        self._failing = False
        self._conn = conn
        # Rows committed before the LISTEN took effect announced nothing: look now.
        self._wake()
        return True

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
