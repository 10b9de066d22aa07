"""Child processes that end with the process that started them, however it ends.

Each child runs in a process group of its own (``start_new_session``), so that one
signal reaches everything it starts in turn (uvicorn workers, PostgreSQL backends).
A guard - a small Python process started once, beside the first child - holds the
read end of a pipe whose only write end is ours, and is told each group as it is
started and as it is reaped. When our end closes (a normal exit, an exception,
SIGTERM, SIGKILL or an out-of-memory kill alike), the guard sends SIGTERM to every
group still registered, and SIGKILL to those still there three seconds later.

A parent-death signal (``PR_SET_PDEATHSIG``) would not do: it fires when the *thread*
that forked the child ends, and children here are started from worker threads too;
and it reaches only the child, not what the child started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

_GUARD = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
for line in sys.stdin.buffer:
    sign, pgid = line[:1], int(line[1:])
    (groups.add if sign == b"+" else groups.discard)(pgid)

def alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False

for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(alive(g) for g in groups):
        time.sleep(0.05)
"""

_lock = threading.Lock()
_guard: tuple[int, int, subprocess.Popen[bytes]] | None = None  # (pid of owner, fd, guard)


def _write(line: str) -> None:
    global _guard
    with _lock:
        if _guard is None or _guard[0] != os.getpid():  # first use, or a forked copy
            read, write = os.pipe()
            guard = subprocess.Popen(
                [sys.executable, "-I", "-c", _GUARD],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            os.close(read)
            _guard = (os.getpid(), write, guard)
        os.write(_guard[1], line.encode())


def watch(pid: int) -> None:
    """End the process group ``pid`` leads when this process ends."""
    _write(f"+{pid}\n")


def forget(pid: int) -> None:
    """The group ``pid`` led is gone (reaped): nothing to end any more."""
    _write(f"-{pid}\n")


def spawn(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` in a process group of its own that dies with us."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(args, start_new_session=True, **kwargs)
    watch(proc.pid)
    return proc


async def spawn_async(*args: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """``asyncio.create_subprocess_exec`` in a process group of its own that dies with us."""
    proc = await asyncio.create_subprocess_exec(*args, start_new_session=True, **kwargs)
    watch(proc.pid)
    return proc


def _reaped(pid: int) -> None:
    # The group is forgotten once empty; anything the child left running in it (a
    # daemon it started) stays watched and ends with us.
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        forget(pid)
    except PermissionError:
        pass


def run(
    args: Sequence[str],
    *,
    timeout: float,
    input: bytes | str | None = None,
    capture_output: bool = False,
    check: bool = False,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` for a child in a group of its own that dies with us; past
    ``timeout`` the whole group is killed (``subprocess.TimeoutExpired``)."""
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    kwargs.setdefault("stdin", subprocess.PIPE if input is not None else subprocess.DEVNULL)
    proc: subprocess.Popen[Any] = spawn(args, **kwargs)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        _reaped(proc.pid)
        raise
    _reaped(proc.pid)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done
