from __future__ import annotations

import pytest

from tests.conftest import _migrate_once


@pytest.fixture
def db_url(tmp_path: object) -> str:
    """Hostile-input tests attack the edges, not the database: SQLite is enough here."""
    url = f"sqlite+aiosqlite:///{tmp_path}/wcs.db"
    _migrate_once(url)
    return url
