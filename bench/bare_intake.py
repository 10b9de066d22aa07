"""Intake's baseline: a bare FastAPI endpoint that validates the same order body with
the same pydantic model and inserts one row through an asyncpg pool, nothing else.

Served by uvicorn with the API's settings (same workers, event loop and HTTP parser),
on the same database, driven by the same load generator: what taking an order costs
on this machine before any of the work intake does (idempotency, stock, events,
outbox, notifications, metrics, auth).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from fastapi import FastAPI

from api.schemas import OrderIn

TABLE = (
    "CREATE TABLE IF NOT EXISTS bare_orders (id bigserial PRIMARY KEY,"
    " external_id text NOT NULL, sku text NOT NULL, qty int NOT NULL,"
    " created_at timestamptz NOT NULL)"
)
INSERT = (
    "INSERT INTO bare_orders (external_id, sku, qty, created_at)"
    " VALUES ($1, $2, $3, now()) RETURNING id"
)


def create_app(dsn: str) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=10, max_size=20)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/orders", status_code=201)
    async def take(body: OrderIn) -> dict[str, Any]:
        line = body.lines[0]
        async with app.state.pool.acquire() as conn:
            row_id = await conn.fetchval(INSERT, body.external_id, line.sku, line.qty)
        return {"id": row_id, "external_id": body.external_id}

    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker builds its own pool)."""
    return create_app(os.environ["WCS_BENCH_BARE_DSN"])
