"""The system's processes as the fault drills run them: real ``wcs`` subprocesses.

Each :class:`Service` owns one process group (``wcs.children.spawn``), so a SIGKILL
takes the whole process down at once, the way a crash or an OOM kill would, and
nothing it started outlives it - nor the test run, however that ends. Output goes
to a log file per service so a failed drill can show the tail of each.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from wcs.children import forget, spawn


class Service:
    """``wcs <args>`` in its own process group; start, SIGKILL, restart, stop."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.starts = 0
        self.kills = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        if self.running:
            return
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._log.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
        self._log.flush()
        self._proc = spawn(
            [sys.executable, "-m", "cli", *self.args],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL the process group: no drain, no Last Will sent by the process itself."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        forget(proc.pid)
        self.kills += 1

    def stop(self, grace_s: float = 15.0) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if proc is not None:
            forget(proc.pid)
        self._proc = None

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, limit: int = 3000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-limit:].decode(errors="replace")


class Services:
    """Every service of a drill; closing it stops them all, also after a failure."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.all: list[Service] = []

    def add(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Service:
        service = Service(name, args, {**self.env, **(env or {})}, self.log_dir)
        self.all.append(service)
        return service

    def tails(self) -> str:
        return "\n".join(f"--- {s.name} (tail) ---\n{s.tail()}" for s in self.all)

    def close(self) -> None:
        for service in reversed(self.all):
            service.close()


@contextlib.contextmanager
def services(log_dir: Path, env: dict[str, str]) -> Iterator[Services]:
    group = Services(log_dir, env)
    try:
        yield group
    except BaseException:
        print(group.tails(), file=sys.stderr)
        raise
    finally:
        group.close()
