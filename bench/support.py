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
from dataclasses import dataclass

from wcs.children import spawn

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


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def workers(self) -> list[int]:
        """The server process and every process below it (uvicorn's workers)."""
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
        found, todo = [self.pid], [self.pid]
        while todo:
            parent = todo.pop()
            kids = [pid for pid, ppid in parents.items() if ppid == parent]
            found += kids
            todo += kids
        return found


@contextlib.contextmanager
def server_process(args: list[str], env: dict[str, str], port: int) -> Iterator[Server]:
    """``python args...`` in a subprocess that listens on ``port``; stopped afterwards."""
    full_env = {**os.environ, **env}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
    # Own process group: uvicorn's worker processes go down with it.
    proc = spawn(
        [sys.executable, *args],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_port("127.0.0.1", port, timeout=60)  # a loaded machine starts slowly
        yield Server(f"http://127.0.0.1:{port}", proc.pid)
    except BaseException:
        log.seek(0)
        tail = log.read()[-4000:].decode(errors="replace")
        print(f"--- server log (tail) ---\n{tail}", file=sys.stderr)
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


@contextlib.contextmanager
def api_server(env: dict[str, str], *, workers: int = 1) -> Iterator[Server]:
    """``wcs api`` in a subprocess."""
    port = free_port()
    args = ["-m", "cli", "api", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        args += ["--workers", str(workers)]
    with server_process(args, env, port) as server:
        yield server


@contextlib.contextmanager
def api_process(env: dict[str, str], *, workers: int = 1) -> Iterator[str]:
    """``wcs api`` in a subprocess; yields its base URL."""
    with api_server(env, workers=workers) as server:
        yield server.url
