"""A batch that commits but whose answer is lost with the connection.

PostgreSQL may commit a batch and the connection drop before its answer reaches the
controller (a server shutting down, a network cut at the wrong moment). The committer
sees an error and tries the batch again; its events are duplicates now, and are
skipped. The station must then go on from what the database holds, not from its
memory of before the batch, or the next unit is counted from a stale count.

A real proxy on the wire between the controller and PostgreSQL passes the COMMIT of
the batch that holds a marked scan to the server, waits for the server's answer and
then cuts the connection instead of passing it on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import FakeFloor, fake_floor, floor_for, settings_for
from tests.integration.controller.test_flow import order_in, wait_state
from wcs.contract.topics import Topics
from wcs.persistence.db import make_engine
from wcs.persistence.tables import activity, pick_tasks
from wcs.services.catalog import LocationData, SkuData, upsert_location, upsert_sku
from wcs.services.orders import receive_stock
from wcs.settings import MqttEndpoint

# asyncpg commits with this simple query: 'Q', its length (12), the text.
COMMIT = b"Q\x00\x00\x00\x0cCOMMIT;\x00"
READY = b"Z\x00\x00\x00\x05"  # ReadyForQuery: the server's answer is complete
BARCODE = "4006381333931"
MARK = "lost-answer-scan"


class AnswerLosingProxy:
    """TCP between the controller and PostgreSQL; loses the answer to one COMMIT: the
    first one sent on a connection that carried ``mark`` since its last COMMIT."""

    def __init__(self, host: str, port: int, mark: bytes) -> None:
        self.target = (host, port)
        self.mark = mark
        self.lost = asyncio.Event()  # the server committed; its answer went nowhere
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> AnswerLosingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.target)
        cut = asyncio.Event()

        async def upstream() -> None:
            marked = False
            while data := await client_r.read(65536):
                if not self.lost.is_set():
                    marked = marked or self.mark in data
                    if marked and COMMIT in data:
                        server_w.write(data)
                        await server_w.drain()
                        cut.set()  # the answer stops here
                        return
                    if COMMIT in data:
                        marked = False
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if cut.is_set():
                    if READY in data:
                        self.lost.set()
                        return
                    continue
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if cut.is_set():
                await asyncio.wait(tasks)
        finally:
            for task in tasks:
                task.cancel()
                self._tasks.discard(task)
            for writer in (client_w, server_w):
                writer.close()


@pytest.fixture
async def bench(
    pg_only_url: str, pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> AsyncIterator[tuple[Controller, FakeFloor, AsyncEngine, AnswerLosingProxy]]:
    engine = pg_engine
    topics = Topics(site)
    await upsert_sku(engine, SkuData("SKU-A", "SKU-A", 400.0, 150, 100, 50, BARCODE))
    await upsert_location(engine, LocationData("A-01-01-1", "pick", 1, 1, 1))
    await receive_stock(engine, topics, "SKU-A", "A-01-01-1", 5, actor="test")
    url = make_url(pg_only_url)
    async with AnswerLosingProxy(url.host or "127.0.0.1", url.port or 5432, MARK.encode()) as proxy:
        proxied = url.set(
            host="127.0.0.1", port=proxy.port, query={**url.query, "sslmode": "disable"}
        ).render_as_string(hide_password=False)
        controller_engine = make_engine(proxied, pre_ping=False)
        settings = settings_for(
            pg_only_url, mqtt_endpoint, site, controller={"wave_interval_s": 3600}
        )
        try:
            async with (
                fake_floor(mqtt_endpoint, topics) as floor,
                Controller(settings, floor_for(site), engine=controller_engine) as controller,
            ):
                yield controller, floor, engine, proxy
        finally:
            await controller_engine.dispose()


async def picked_units(engine: AsyncEngine, order_id: str) -> tuple[int, int]:
    """(units on the order's tasks, units in its pick records)."""
    async with engine.connect() as conn:
        on_tasks = await conn.scalar(
            select(func.sum(pick_tasks.c.qty_picked)).where(pick_tasks.c.order_id == order_id)
        )
        records = await conn.scalar(
            select(func.count())
            .select_from(activity)
            .where(activity.c.order_id == order_id, activity.c.kind == "pick")
        )
    return int(on_tasks or 0), int(records or 0)


async def test_a_batch_committed_unanswered_counts_from_what_the_database_holds(
    bench: tuple[Controller, FakeFloor, AsyncEngine, AnswerLosingProxy],
) -> None:
    controller, floor, engine, proxy = bench
    order_id = await order_in(engine, controller.topics, "lc1", [("SKU-A", 3)])
    await controller.housekeeping_once()
    await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 1 and b["qty"] == 3)
    await floor.event("scan-pk", "scan", code="T0101", symbology=None)

    # The first unit: committed, but the controller hears only that the connection broke.
    n = len(floor.commands)
    await floor.event("scan-pk", "scan", code=BARCODE, symbology=None, msg_id=MARK)
    async with asyncio.timeout(10):
        await proxy.lost.wait()
    assert await picked_units(engine, order_id) == (1, 1)
    # Tried again, the scan is a duplicate; the panel is shown what the database holds.
    await floor.wait_command(
        "ptl-1", "light", lambda b: b["slot"] == 1 and b["qty"] == 2, start=n, timeout=15
    )
    assert controller.stats.duplicates >= 1

    # Two more units end the task: none is counted twice, none is missing.
    await floor.event("scan-pk", "scan", code=BARCODE, symbology=None)
    await floor.event("scan-pk", "scan", code=BARCODE, symbology=None)
    await wait_state(engine, order_id, "picked")
    assert await picked_units(engine, order_id) == (3, 3)
