"""A test run killed half-way leaves no process behind, and the drills never touch the
machine's PostgreSQL.

The reduced drill runs in a pytest of its own, every process it starts marked by an
environment variable. Once its private PostgreSQL has been restarted or killed at
least once (the drill is well under way: controllers, drivers, API, broker and
database all up), that pytest is killed outright - SIGKILL, no cleanup code runs, as
when CI's time limit or the OOM killer ends a run - and then no marked process may be
left. The machine's PostgreSQL must have run all along.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import TEST_PG_URL
from wcs.children import spawn

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MARK = "WCS_TEST_RUN_MARK"


def marked(marker: str) -> dict[int, str]:
    """Live processes carrying ``marker``, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"{MARK}={marker}".encode() in environ and state != "Z":
            found[int(entry.name)] = cmdline.strip()
    return found


def postmasters(processes: dict[int, str]) -> set[int]:
    return {pid for pid, cmd in processes.items() if "postgres -D" in cmd}


async def machine_postgres_started() -> object:
    conn = await asyncpg.connect(TEST_PG_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        return await conn.fetchval("SELECT pg_postmaster_start_time()")
    finally:
        await conn.close()


@pytest.mark.timeout(600)
def test_a_run_killed_half_way_leaves_nothing_behind(tmp_path: Path) -> None:
    started = asyncio.run(machine_postgres_started())
    marker = uuid.uuid4().hex
    log = (tmp_path / "run.log").open("wb")
    run = spawn(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/faults/test_drills.py::test_reduced_drill"],
        env={**os.environ, MARK: marker},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        first: set[int] = set()
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            running = marked(marker)
            now = postmasters(running)
            if not first:
                first = now
            elif now and not now & first:  # a new postmaster: restarted or killed once
                break
            assert run.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail("the drill's PostgreSQL was never restarted")
        # The drill kills and restarts its controller and drivers too: wait until every
        # kind of process is up at the same moment, so the kill below leaves each behind.
        parts = ("cli controller", "cli drivers", "cli api", "mosquitto", "postgres -D")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            commands = " ".join(running.values())
            if all(part in commands for part in parts):
                break
            time.sleep(0.1)
            running = marked(marker)
        for part in parts:
            assert part in commands, (part, running)
        os.kill(run.pid, signal.SIGKILL)  # the pytest process alone, as a time limit does
        run.wait(10)
        deadline = time.monotonic() + 20
        while (left := marked(marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == {}, left
    finally:
        with_group = run.poll() is None
        if with_group:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
        for pid in marked(marker):
            os.kill(pid, signal.SIGKILL)
        log.close()
    assert asyncio.run(machine_postgres_started()) == started
