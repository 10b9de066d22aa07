"""Shared fixtures: real services, isolated per test.

- MQTT: the broker at ``WCS_TEST_MQTT_URL`` (default the local Mosquitto); every test
  gets its own site id, so its topics never meet another test's.
- PostgreSQL: ``WCS_TEST_PG_URL`` (default the local ``test`` database). Each test
  session creates a fresh database of its own next to it and drops it at the end, so
  parallel runs do not see each other.
- A leak check fails any test that leaves threads behind.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from wcs.settings import MqttEndpoint

TEST_MQTT_URL = os.environ.get("WCS_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
TEST_PG_URL = os.environ.get("WCS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def mqtt_endpoint() -> MqttEndpoint:
    endpoint = MqttEndpoint.parse(TEST_MQTT_URL)
    if not _port_open(endpoint.host, endpoint.port):
        pytest.fail(
            f"no MQTT broker at {endpoint.host}:{endpoint.port}: "
            "start it with `mosquitto -d -c /etc/mosquitto/mosquitto.conf`"
        )
    return endpoint


@pytest.fixture
def site() -> str:
    """A site id of this test's own: its topic tree is private."""
    return "t" + uuid.uuid4().hex[:12]


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    import asyncpg

    parts = urlsplit(TEST_PG_URL)
    if not _port_open(parts.hostname or "127.0.0.1", parts.port or 5432):
        pytest.fail(
            f"no PostgreSQL at {parts.hostname}:{parts.port}: start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        )
    name = f"wcs_test_{uuid.uuid4().hex[:10]}"
    admin = _asyncpg_dsn(TEST_PG_URL)

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    url = TEST_PG_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = 50
    leaked: list[threading.Thread] = []
    for _ in range(deadline):
        leaked = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon
        ]
        if not leaked:
            break
        threading.Event().wait(0.1)
    assert not leaked, f"test left threads running: {[t.name for t in leaked]}"


# --- databases -------------------------------------------------------------------

_MIGRATED: set[str] = set()


def _migrate_once(url: str) -> None:
    if url not in _MIGRATED:
        from wcs.persistence.migrate import upgrade

        upgrade(url)
        _MIGRATED.add(url)


async def _wipe(engine: object) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wcs.persistence.models import Base

    assert isinstance(engine, AsyncEngine)
    names = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                await conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """Run the test on both databases the product supports, schema at head."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/wcs.db"
    else:
        url = request.getfixturevalue("pg_url")
    _migrate_once(url)
    return url


@pytest.fixture
def pg_only_url(pg_url: str) -> str:
    _migrate_once(pg_url)
    return pg_url


@pytest.fixture
async def engine(db_url: str) -> object:
    from wcs.persistence.db import make_engine

    eng = make_engine(db_url)
    await _wipe(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def pg_engine(pg_only_url: str) -> object:
    from wcs.persistence.db import make_engine

    eng = make_engine(pg_only_url, pool_size=40)
    await _wipe(eng)
    yield eng
    await eng.dispose()
