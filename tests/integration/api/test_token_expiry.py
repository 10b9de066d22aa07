"""An expired token is refused with 401 saying so; a used token shows when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served
from wcs.persistence.tables import api_tokens
from wcs.services.auth import issue_token

PROBLEM = "application/problem+json"


async def test_expired_tokens_are_refused_and_use_is_noted(
    api: Served, engine: AsyncEngine
) -> None:
    live = await issue_token(engine, "desk", ["customer_service"], ttl=timedelta(days=1))
    old = await issue_token(engine, "old-desk", ["customer_service"], ttl=timedelta(days=1))
    async with engine.begin() as conn:
        await conn.execute(
            update(api_tokens)
            .where(api_tokens.c.name == "old-desk")
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    async with api.client(token=old) as client:
        r = await client.get("/api/v1/orders")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert "token expired at" in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")

    async with api.client(token=live) as client:
        assert (await client.get("/api/v1/orders")).status_code == 200
    async with engine.connect() as conn:
        used = dict(
            (await conn.execute(select(api_tokens.c.name, api_tokens.c.last_used_at))).all()
        )
    assert used["desk"] is not None and used["old-desk"] is None
