"""`wcs users create/revoke` against a migrated SQLite file, through the real console app."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from cli.app import app
from wcs.persistence.db import make_engine
from wcs.persistence.migrate import upgrade
from wcs.persistence.tables import api_tokens
from wcs.services.auth import Principal, resolve


def _resolve(url: str, token: str) -> Principal | None:
    async def go() -> Principal | None:
        engine = make_engine(url)
        try:
            return await resolve(engine, token, None)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/users.db"
    upgrade(url)
    monkeypatch.setenv("WCS_DATABASE_URL", url)
    return url


def test_create_prints_a_working_token_and_revoke_disables_it(db: str) -> None:
    runner = CliRunner()
    created = runner.invoke(
        app,
        ["users", "create", "--name", "van-12", "--role", "courier", "--subject", "courier-12"],
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("wcs_") and "\n" not in token
    assert "cannot be shown again" in created.stderr
    principal = _resolve(db, token)
    assert principal is not None and principal.expires_at is not None
    assert principal == Principal(
        "van-12", frozenset({"courier"}), "courier-12", principal.expires_at
    )
    # The default lifetime (WCS_TOKEN_TTL_DAYS, 90 days).
    left = principal.expires_at - datetime.now(UTC)
    assert timedelta(days=89) < left <= timedelta(days=90)

    two = runner.invoke(
        app, ["users", "create", "--name", "lead", "--role", "supervisor", "--role", "dispatcher"]
    )
    assert two.exit_code == 0, two.output
    lead = _resolve(db, two.stdout.strip())
    assert lead is not None and lead.roles == {"supervisor", "dispatcher"}

    revoked = runner.invoke(app, ["users", "revoke", "--name", "van-12"])
    assert revoked.exit_code == 0 and "revoked 1 token" in revoked.stdout
    assert _resolve(db, token) is None
    again = runner.invoke(app, ["users", "revoke", "--name", "van-12"])
    assert again.exit_code == 1 and "no active token named 'van-12'" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "x", "--role", "janitor"], "unknown role(s) janitor"),
        (["--name", "x", "--role", "customer"], "need --subject"),
    ],
)
def test_create_refuses_bad_roles_with_a_clear_message(
    db: str, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["users", "create", *args])
    assert result.exit_code == 1 and message in result.stderr
    assert result.stdout == ""


def test_create_on_an_empty_database_says_to_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WCS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    result = CliRunner().invoke(app, ["users", "create", "--name", "x", "--role", "device"])
    assert result.exit_code == 1 and "wcs db upgrade" in result.stderr


def _age(url: str, name: str, **values: object) -> None:
    async def go() -> None:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    update(api_tokens).where(api_tokens.c.name == name).values(**values)
                )
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_lifetimes_rotation_and_last_use(db: str) -> None:
    runner = CliRunner()
    short = runner.invoke(
        app, ["users", "create", "--name", "scanner-7", "--role", "device", "--expires-days", "2"]
    )
    assert short.exit_code == 0, short.output
    old = short.stdout.strip()
    first = _resolve(db, old)
    assert first is not None and first.expires_at is not None
    assert timedelta(days=1) < first.expires_at - datetime.now(UTC) <= timedelta(days=2)
    forever = runner.invoke(
        app, ["users", "create", "--name", "kiosk", "--role", "device", "--never-expires"]
    )
    kiosk = _resolve(db, forever.stdout.strip())
    assert kiosk is not None and kiosk.expires_at is None and "never expires" in forever.stderr

    # Rotation: a new token with the same roles; the old one works through the grace.
    rotated = runner.invoke(app, ["users", "rotate", "--name", "scanner-7"])
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip()
    assert new.startswith("wcs_") and new != old
    fresh, grace = _resolve(db, new), _resolve(db, old)
    assert fresh is not None and fresh.roles == {"device"} and not fresh.expired()
    assert grace is not None and not grace.expired()
    assert grace.expires_at is not None
    assert grace.expires_at - datetime.now(UTC) <= timedelta(minutes=60)
    # Past the grace, the old token is expired (the API answers 401), the new one is not.
    _age(db, "scanner-7", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    ended = _resolve(db, old)
    assert ended is not None and ended.expired()
    now = runner.invoke(app, ["users", "rotate", "--name", "kiosk", "--grace-minutes", "0"])
    assert now.exit_code == 0, now.output
    assert _resolve(db, forever.stdout.strip()).expired()  # type: ignore[union-attr]
    kiosk_new = now.stdout.strip()

    # Last use: noted when a token is resolved (the API does it on each cache miss),
    # shown by `users list`; a token nobody used says "never".
    listing = runner.invoke(app, ["users", "list"])
    assert listing.exit_code == 0, listing.output
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    assert [(r[0], r[3], r[-1]) for r in rows] == [("kiosk", "active", "never")]
    assert _resolve(db, kiosk_new) is not None
    rows = [line.split() for line in runner.invoke(app, ["users", "list"]).stdout.splitlines()[1:]]
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert rows[0][0] == "kiosk" and rows[0][-2] == today  # date and time of last use
    everything = runner.invoke(app, ["users", "list", "--all"])
    assert everything.stdout.count("scanner-7") == 2 and "expired" in everything.stdout


def test_rotating_an_unknown_user_says_so(db: str) -> None:
    result = CliRunner().invoke(app, ["users", "rotate", "--name", "ghost"])
    assert result.exit_code == 1 and "no active token named 'ghost'" in result.stderr
