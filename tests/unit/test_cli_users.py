"""`wcs users create/revoke` against a migrated SQLite file, through the real console app."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from wcs.persistence.db import make_engine
from wcs.persistence.migrate import upgrade
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
    assert principal == Principal("van-12", frozenset({"courier"}), "courier-12")

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
