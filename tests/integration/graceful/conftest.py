from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import _migrate_once
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.persistence.db import make_engine


@pytest.fixture
def broker() -> Iterator[PrivateMosquitto]:
    """A broker of the test's own: these tests stop it, or load it for a minute."""
    with PrivateMosquitto() as private:
        yield private


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/controller.db"
    _migrate_once(url)
    return url


@pytest.fixture
async def sqlite(sqlite_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    engine = make_engine(sqlite_url)
    yield sqlite_url, engine
    await engine.dispose()
