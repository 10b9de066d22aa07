"""Shared fixtures: real services, isolated per test.

- MQTT: the broker at ``WCS_TEST_MQTT_URL`` (default the local Mosquitto); every test
  gets its own site id, so its topics never meet another test's.
- PostgreSQL: ``WCS_TEST_PG_URL`` (default the local ``test`` database). Each test
  session creates a fresh database of its own next to it and drops it at the end, so
  parallel runs do not see each other.
- A leak check fails any test that leaves threads or asyncio tasks behind (as
  pymodbus's conftest does): a task still pending when its event loop is closed (the
  test's own loop, or one a test ran with ``asyncio.run``) is one that nothing owned.
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


class _TaskLeaks:
    """Records the tasks still pending when an event loop is closed.

    Every loop a test runs ends in ``asyncio.Runner.close`` (pytest-asyncio's runner
    and ``asyncio.run`` alike), which cancels what is left without a word: a task
    nobody awaited would go unnoticed. Wrapping ``close`` records them first."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self._lock = threading.Lock()  # loops also close in server threads
        self._close = asyncio.Runner.close
        leaks = self

        def close(runner: asyncio.Runner) -> None:
            try:
                loop = runner.get_loop()
            except RuntimeError:  # closed already
                loop = None
            if loop is not None and not loop.is_closed():
                pending = [t for t in asyncio.all_tasks(loop) if not t.done() and not _loop_long(t)]
                with leaks._lock:
                    leaks.found += [_describe(t) for t in pending]
            leaks._close(runner)

        asyncio.Runner.close = close  # type: ignore[method-assign]

    def take(self) -> list[str]:
        with self._lock:
            found, self.found = self.found, []
        return found


# Library tasks that live as long as their event loop by design, one per loop:
# sse-starlette watches for the server's shutdown to end open streams.
_LOOP_LONG = {("sse_starlette.sse", "_shutdown_watcher")}


def _loop_long(task: asyncio.Task[object]) -> bool:
    coro = task.get_coro()
    frame = getattr(coro, "cr_frame", None)
    module = frame.f_globals.get("__name__") if frame is not None else None
    return (module, getattr(coro, "__qualname__", None)) in _LOOP_LONG


def _describe(task: asyncio.Task[object]) -> str:
    coro = task.get_coro()
    where = getattr(coro, "__qualname__", type(coro).__name__)
    return f"{task.get_name()} ({where})"


_TASK_LEAKS = _TaskLeaks()


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Set up before and torn down after every other fixture of the test, the event
    loop's runner included: what is still running then was left behind."""
    before = set(threading.enumerate())
    _TASK_LEAKS.take()  # a loop closed between tests belongs to no test
    yield
    tasks = _TASK_LEAKS.take()
    deadline = 50
    leaked: list[threading.Thread] = []
    for _ in range(deadline):
        leaked = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon
        ]
        if not leaked:
            break
        threading.Event().wait(0.1)
    assert not tasks, f"test left asyncio tasks running: {tasks}"
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
