"""Helpers shared by benchmarks: scratch databases and API servers in subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


@contextlib.contextmanager
def scratch_postgres(base_url: str | None) -> Iterator[str]:
    """A fresh database beside ``base_url``'s, migrated to head, dropped afterwards."""
    import asyncpg

    from wcs.persistence.migrate import upgrade

    base = base_url or os.environ.get("WCS_BENCH_PG_URL") or DEFAULT_PG
    name = f"wcs_bench_{uuid.uuid4().hex[:8]}"
    admin = base.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def api_process(env: dict[str, str], *, workers: int = 1) -> Iterator[str]:
    """``wcs api`` in a subprocess; yields its base URL."""
    port = free_port()
    full_env = {**os.environ, **env}
    cmd = [sys.executable, "-m", "cli", "api", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
    # Own process group: uvicorn's worker processes go down with it.
    proc = subprocess.Popen(
        cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
    )
    try:
        wait_port("127.0.0.1", port)
        yield f"http://127.0.0.1:{port}"
    except BaseException:
        log.seek(0)
        tail = log.read()[-4000:].decode(errors="replace")
        print(f"--- API server log (tail) ---\n{tail}", file=sys.stderr)
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
