"""Bearer tokens and roles.

Roles (design §6): customer_service, supervisor, dispatcher, courier, after_sales,
customer, device; qc_operator and pack_operator for the station screens; stock_controller
for counts keyed over the API.
``WCS_ADMIN_TOKEN``, when set, holds every role so an operator can issue the others
(``wcs users create``). Tokens are random 32-byte strings; only their
SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.errors import NotFound, ValidationFailed
from wcs.persistence.db import reading
from wcs.persistence.tables import api_tokens
from wcs.timeutil import as_utc, utcnow

DEFAULT_TTL = timedelta(days=90)
# last_used_at is written when the stored value is older than this: one write per
# token every few minutes at most, whatever the request rate.
LAST_USED_RESOLUTION = timedelta(minutes=5)

ROLES: tuple[str, ...] = (
    "customer_service",
    "supervisor",
    "dispatcher",
    "courier",
    "after_sales",
    "customer",
    "device",
    # Floor staff at a station screen; the subject, when set, is the one station the
    # token opens (a token per station), else any station of that kind (per person).
    "qc_operator",
    "pack_operator",
    # Counts and recounts stock over the API (a handheld), sees no book quantities.
    "stock_controller",
)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    roles: frozenset[str]
    subject: str | None = None
    expires_at: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and (now or utcnow()) >= self.expires_at

    @property
    def is_admin(self) -> bool:
        return self.roles >= frozenset(ROLES)

    def has_any(self, roles: frozenset[str] | set[str]) -> bool:
        return bool(self.roles & roles)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    engine: AsyncEngine,
    name: str,
    roles: list[str],
    subject: str | None = None,
    *,
    ttl: timedelta | None = DEFAULT_TTL,
) -> str:
    """A new token for ``name``; ``ttl`` None: it never expires (asked for explicitly)."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        given = ", ".join(unknown) or "(none given)"
        raise ValidationFailed(f"unknown role(s) {given}; choose from {', '.join(ROLES)}")
    if ("customer" in roles or "courier" in roles) and not subject:
        raise ValidationFailed(
            "customer and courier tokens need --subject (customer ref / courier id)"
        )
    if ttl is not None and ttl <= timedelta(0):
        raise ValidationFailed("a token's lifetime must be positive (or none: never expires)")
    token = "wcs_" + secrets.token_urlsafe(32)
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            insert(api_tokens).values(
                name=name,
                roles=sorted(set(roles)),
                subject=subject,
                token_hash=_hash(token),
                created_at=now,
                expires_at=now + ttl if ttl is not None else None,
            )
        )
    return token


@dataclass(frozen=True, slots=True)
class Rotated:
    token: str
    old_tokens: int
    old_until: datetime


async def rotate_tokens(
    engine: AsyncEngine,
    name: str,
    *,
    grace: timedelta = timedelta(hours=1),
    ttl: timedelta | None = DEFAULT_TTL,
) -> Rotated:
    """A new token with the roles and subject of ``name``'s newest active one; the
    active old ones keep working for ``grace`` (sooner if they expire sooner)."""
    now = utcnow()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    api_tokens.c.id,
                    api_tokens.c.roles,
                    api_tokens.c.subject,
                    api_tokens.c.expires_at,
                )
                .where(_active(now), api_tokens.c.name == name)
                .order_by(api_tokens.c.created_at.desc(), api_tokens.c.id.desc())
            )
        ).all()
    if not rows:
        raise NotFound(f"no active token named {name!r} to rotate; issue one with users create")
    newest = rows[0]
    token = await issue_token(engine, name, list(newest.roles), newest.subject, ttl=ttl)
    until = now + grace
    async with engine.begin() as conn:
        for row in rows:
            ends = as_utc(row.expires_at) if row.expires_at is not None else None
            await conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == row.id)
                .values(expires_at=min(until, ends) if ends is not None else until)
            )
    return Rotated(token, len(rows), until)


def _active(now: datetime) -> Any:
    return and_(
        api_tokens.c.revoked_at.is_(None),
        or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now),
    )


@dataclass(frozen=True, slots=True)
class TokenInfo:
    name: str
    roles: tuple[str, ...]
    subject: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


async def list_tokens(engine: AsyncEngine, *, include_ended: bool = False) -> list[TokenInfo]:
    """Every token (active ones only unless ``include_ended``), by name then age."""
    query = select(api_tokens).order_by(api_tokens.c.name, api_tokens.c.created_at)
    if not include_ended:
        query = query.where(_active(utcnow()))
    async with reading(engine).connect() as conn:
        rows = (await conn.execute(query)).all()

    def ts(value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None

    return [
        TokenInfo(
            r.name,
            tuple(r.roles),
            r.subject,
            as_utc(r.created_at),
            ts(r.expires_at),
            ts(r.last_used_at),
            ts(r.revoked_at),
        )
        for r in rows
    ]


async def revoke_token(engine: AsyncEngine, name: str) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(api_tokens)
            .where(and_(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None)))
            .values(revoked_at=utcnow())
        )
    if result.rowcount == 0:
        raise NotFound(f"no active token named {name!r}")
    return int(result.rowcount)


async def resolve(engine: AsyncEngine, token: str, admin_token: str | None) -> Principal | None:
    """The token's principal (even an expired one: the caller says so), or None when the
    token is unknown or revoked. Notes the use."""
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal("admin", frozenset(ROLES))
    async with reading(engine).connect() as conn:
        row = (
            await conn.execute(
                select(
                    api_tokens.c.id,
                    api_tokens.c.name,
                    api_tokens.c.roles,
                    api_tokens.c.subject,
                    api_tokens.c.expires_at,
                    api_tokens.c.last_used_at,
                ).where(
                    and_(api_tokens.c.token_hash == _hash(token), api_tokens.c.revoked_at.is_(None))
                )
            )
        ).first()
    if row is None:
        return None
    expires = as_utc(row.expires_at) if row.expires_at is not None else None
    principal = Principal(row.name, frozenset(row.roles), row.subject, expires)
    now = utcnow()
    used = as_utc(row.last_used_at) if row.last_used_at is not None else None
    if not principal.expired(now) and (used is None or now - used >= LAST_USED_RESOLUTION):
        async with engine.begin() as conn:
            await conn.execute(
                update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now)
            )
    return principal
