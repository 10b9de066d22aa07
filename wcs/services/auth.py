"""Bearer tokens and roles.

Roles (design §6): customer_service, supervisor, dispatcher, courier, after_sales,
customer, device; qc_operator and pack_operator for the station screens.
``WCS_ADMIN_TOKEN``, when set, holds every role so an operator can issue the others
(``wcs users create``). Tokens are random 32-byte strings; only their
SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.errors import NotFound, ValidationFailed
from wcs.persistence.db import reading
from wcs.persistence.tables import api_tokens
from wcs.timeutil import utcnow

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
)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    roles: frozenset[str]
    subject: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.roles >= frozenset(ROLES)

    def has_any(self, roles: frozenset[str] | set[str]) -> bool:
        return bool(self.roles & roles)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    engine: AsyncEngine, name: str, roles: list[str], subject: str | None = None
) -> str:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        given = ", ".join(unknown) or "(none given)"
        raise ValidationFailed(f"unknown role(s) {given}; choose from {', '.join(ROLES)}")
    if ("customer" in roles or "courier" in roles) and not subject:
        raise ValidationFailed(
            "customer and courier tokens need --subject (customer ref / courier id)"
        )
    token = "wcs_" + secrets.token_urlsafe(32)
    async with engine.begin() as conn:
        await conn.execute(
            insert(api_tokens).values(
                name=name,
                roles=sorted(set(roles)),
                subject=subject,
                token_hash=_hash(token),
                created_at=utcnow(),
            )
        )
    return token


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
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal("admin", frozenset(ROLES))
    async with reading(engine).connect() as conn:
        row = (
            await conn.execute(
                select(api_tokens.c.name, api_tokens.c.roles, api_tokens.c.subject).where(
                    and_(api_tokens.c.token_hash == _hash(token), api_tokens.c.revoked_at.is_(None))
                )
            )
        ).first()
    if row is None:
        return None
    return Principal(row.name, frozenset(row.roles), row.subject)
