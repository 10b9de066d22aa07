"""Dependencies: settings, engine, topics and the authenticated principal.

Built once in the app's lifespan and kept on ``app.state``; routes receive them as
``Annotated`` aliases so signatures stay short.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.contract.topics import Topics
from wcs.errors import Forbidden
from wcs.services.auth import ROLES, Principal, resolve
from wcs.settings import Settings

STAFF = frozenset({"customer_service", "supervisor", "dispatcher", "after_sales"})
TOKEN_CACHE_S = 30.0


# Dependencies are ``async def`` even when they only read app state: FastAPI runs a
# plain ``def`` dependency in its thread pool, a thread hop on every request.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_topics(request: Request) -> Topics:
    topics: Topics = request.app.state.topics
    return topics


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
TopicsDep = Annotated[Topics, Depends(get_topics)]


class TokenCache:
    """Resolved tokens for a short while: auth must not cost a query per request.
    A revoked token stops working within ``TOKEN_CACHE_S`` seconds."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    async def lookup(self, engine: AsyncEngine, token: str, admin: str | None) -> Principal | None:
        now = time.monotonic()
        hit = self._entries.get(token)
        if hit is not None and now - hit[0] < TOKEN_CACHE_S:
            return hit[1]
        principal = await resolve(engine, token, admin)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[token] = (now, principal)
        return principal


async def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401,
            "send 'Authorization: Bearer <token>' (ask a supervisor for a token)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    cache: TokenCache = request.app.state.token_cache
    principal = await cache.lookup(
        request.app.state.engine, token.strip(), request.app.state.settings.admin_token
    )
    if principal is None:
        raise HTTPException(
            401,
            "token is unknown or revoked",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if principal.expired():
        assert principal.expires_at is not None
        raise HTTPException(
            401,
            f"token expired at {principal.expires_at:%Y-%m-%d %H:%M} UTC; ask for a new one "
            "(wcs users rotate)",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def metrics_reader(request: Request) -> None:
    """/metrics: the scraper's own token (``WCS_METRICS_TOKEN``) or a supervisor's.
    Order counts and open alerts are business data, not for anyone who can connect."""
    scrape: str | None = request.app.state.settings.metrics_token
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer"
    if scrape and bearer and hmac.compare_digest(token.strip().encode(), scrape.encode()):
        return
    principal = await current_principal(request)
    if not principal.has_any(frozenset({"supervisor"})):
        raise Forbidden(
            f"'{principal.name}' may not read metrics: use WCS_METRICS_TOKEN or a "
            "supervisor's token"
        )


def require(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting only the named roles; the 403 says which ones."""
    unknown = set(roles) - set(ROLES)
    assert not unknown, f"unknown roles {unknown}"
    admitted = frozenset(roles)

    async def dependency(principal: PrincipalDep) -> Principal:
        if not principal.has_any(admitted):
            raise Forbidden(
                f"'{principal.name}' has roles {sorted(principal.roles)}; this needs one of "
                f"{sorted(admitted)}"
            )
        return principal

    dependency.__name__ = f"require_{'_or_'.join(sorted(admitted))}"
    return dependency
