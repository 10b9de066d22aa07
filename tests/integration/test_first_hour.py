"""A newcomer's first hour with the console script, as real processes.

- Every process that uses the database refuses to start on one that is not migrated
  or not reachable: one line on stderr saying what to do, a non-zero exit, within 5 s.
- The URLs people paste (``sqlite:///``, ``postgresql://``) work as they are.
- Nothing is written outside the data directory (no stray ``wcs.db``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import TEST_PG_URL
from wcs.children import run

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "floors" / "sample.yaml"
WCS = [sys.executable, "-m", "cli"]
LIMIT_S = 5.0
CREATE = ["users", "create", "--name", "x", "--role", "supervisor"]

# Every command that starts a process using the database.
PROCESSES: dict[str, list[str]] = {
    "api": ["api", "--port", "1"],
    "controller": ["controller", "--floor", str(FLOOR)],
    "notify": ["notify"],
    "users create": ["users", "create", "--name", "x", "--role", "supervisor"],
    "users revoke": ["users", "revoke", "--name", "x"],
    "report": ["report", "--from", "2026-03-01", "--to", "2026-03-02"],
}


def _env(cwd: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCS_")}
    env.update(extra)
    env.setdefault("WCS_MQTT_URL", "mqtt://127.0.0.1:1")  # nothing may get that far
    env["WCS_EMBEDDED_BROKER"] = "false"
    env["PYTHONPATH"] = str(ROOT)
    env["HOME"] = str(cwd)
    return env


def wcs(args: list[str], cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    done = run(
        [*WCS, *args],
        cwd=cwd,
        env=_env(cwd, **env),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done, time.monotonic() - began


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _admin_dsn() -> str:
    return TEST_PG_URL.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
def empty_pg() -> Iterator[str]:
    """A PostgreSQL database of its own that nothing has migrated, as a plain URL."""
    name = f"wcs_unmigrated_{uuid.uuid4().hex[:8]}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(_admin_dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield _admin_dsn().rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _refuses(url: str, cwd: Path, expect: str) -> None:
    for name, args in PROCESSES.items():
        done, took = wcs(args, cwd, WCS_DATABASE_URL=url)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode != 0, f"{name} started on {url}: {done.stdout}{done.stderr}"
        assert took < LIMIT_S, f"{name} took {took:.1f} s to refuse"
        assert len(lines) == 1, f"{name} said more than one line:\n{done.stderr}"
        assert lines[0].startswith("error: ") and expect in lines[0], f"{name}: {lines[0]}"
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_every_process_refuses_a_missing_sqlite_file_and_writes_nothing(tmp_path: Path) -> None:
    _refuses(f"sqlite:///{tmp_path}/data/none.db", tmp_path, "run `wcs db upgrade`")
    assert files_in(tmp_path) == []


def test_every_process_refuses_an_unmigrated_sqlite_file(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    _refuses(f"sqlite:///{tmp_path}/empty.db", tmp_path, "has no schema yet; run `wcs db upgrade`")


def test_every_process_refuses_an_unmigrated_postgresql_database(
    tmp_path: Path, empty_pg: str
) -> None:
    _refuses(empty_pg, tmp_path, "has no schema yet; run `wcs db upgrade`")


def test_every_process_refuses_an_unreachable_postgresql(tmp_path: Path) -> None:
    from tests.ports import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/wcs"
    _refuses(url, tmp_path, "cannot reach the PostgreSQL")


def test_defaults_write_only_into_the_data_directory(tmp_path: Path) -> None:
    """Without any setting: nothing appears in the working directory but ``var/``."""
    done, _ = wcs(["users", "create", "--name", "x", "--role", "supervisor"], tmp_path)
    assert done.returncode == 1 and "var/wcs.db does not exist" in done.stderr
    assert files_in(tmp_path) == []  # not even an empty database file

    done, _ = wcs(["db", "upgrade"], tmp_path)
    assert done.returncode == 0, done.stderr
    done, _ = wcs(["users", "create", "--name", "x", "--role", "supervisor"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wcs_")
    assert {p.split("/")[0] for p in files_in(tmp_path)} == {"var"}

    elsewhere = tmp_path / "elsewhere"
    done, _ = wcs(["db", "upgrade"], tmp_path, WCS_DATA_DIR=str(elsewhere))
    assert done.returncode == 0 and (elsewhere / "wcs.db").exists()


def test_plain_sqlite_url_is_accepted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/plain.db"
    done, _ = wcs(["db", "upgrade"], tmp_path, WCS_DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    done, _ = wcs(CREATE, tmp_path, WCS_DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wcs_")


def test_plain_postgresql_url_is_accepted(tmp_path: Path, empty_pg: str) -> None:
    assert empty_pg.startswith("postgresql://")
    done, _ = wcs(["db", "upgrade"], tmp_path, WCS_DATABASE_URL=empty_pg)
    assert done.returncode == 0, done.stderr
    done, _ = wcs(CREATE, tmp_path, WCS_DATABASE_URL=empty_pg)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wcs_")
    assert files_in(tmp_path) == []
