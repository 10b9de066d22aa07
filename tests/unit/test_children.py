"""Children started through ``wcs.children`` end with their parent, however the
parent ends - and so does everything they started in turn."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from wcs.children import run

PARENT = r"""
import subprocess, sys, threading, time
from wcs.children import spawn
# One child from the main thread, one from a thread that ends at once: a parent-death
# signal would take the second down early, and neither down with a SIGKILLed parent.
first = spawn(["sh", "-c", "sleep 300 & sleep 300"])
box = []
worker = threading.Thread(target=lambda: box.append(spawn(["sleep", "300"])))
worker.start(); worker.join()
print("ready", flush=True)
time.sleep(300)
"""


def marked(marker: str) -> list[int]:
    """Processes whose environment carries ``marker`` (ours and our descendants)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"WCS_TEST_MARK={marker}".encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def until_gone(marker: str, within: float = 10.0) -> list[int]:
    deadline = time.monotonic() + within
    while (left := marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_every_descendant_dies_with_the_parent(how: signal.Signals) -> None:
    marker = uuid.uuid4().hex
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        env={**os.environ, "WCS_TEST_MARK": marker},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        # parent, its sh and two sleeps, the thread's sleep (the guard carries the mark
        # too: it ends last, once it has ended the others)
        deadline = time.monotonic() + 10
        while len(marked(marker)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)  # sh starts its two sleeps in its own time
        assert len(marked(marker)) >= 5
        parent.send_signal(how)
        parent.wait(10)
        assert until_gone(marker) == []
    finally:
        parent.kill()
        parent.wait(10)
        for pid in marked(marker):
            os.kill(pid, signal.SIGKILL)


def test_run_kills_the_whole_group_on_a_timeout() -> None:
    marker = uuid.uuid4().hex
    with pytest.raises(subprocess.TimeoutExpired):
        run(
            ["sh", "-c", "sleep 300 & sleep 300"],
            timeout=0.5,
            env={**os.environ, "WCS_TEST_MARK": marker},
        )
    assert until_gone(marker) == []
    done = run(["sh", "-c", "echo out; echo err >&2"], timeout=10, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")


ROOT = Path(__file__).resolve().parents[2]
# Code that runs processes: the project's packages, its tests, benchmarks and demo.
SOURCES = ["api", "bench", "cli", "controller", "demo", "device_sim", "drivers", "tests", "wcs"]
STARTERS = {
    ("subprocess", name)
    for name in ("Popen", "run", "call", "check_call", "check_output", "getoutput",
                 "getstatusoutput")
} | {
    ("asyncio", "create_subprocess_exec"),
    ("asyncio", "create_subprocess_shell"),
    ("os", "system"),
    ("os", "popen"),
    ("os", "fork"),
    ("os", "forkpty"),
    ("os", "posix_spawn"),
    ("os", "posix_spawnp"),
    ("os", "spawnv"),
    ("os", "spawnl"),
    ("pty", "fork"),
}  # fmt: skip
# Where a process is started otherwise, and why that is right.
ALLOWED = {
    "wcs/children.py",  # the one place that starts them, and its guard
    "tests/unit/test_children.py",  # the parent these tests kill, killed again in finally
}


def _starts(path: Path) -> list[str]:
    """Calls in ``path`` that start a process other than through ``wcs.children``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        alias.asname or alias.name: (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            target = (func.value.id, func.attr)
        elif isinstance(func, ast.Name) and func.id in imported:
            target = imported[func.id]
        else:
            continue
        if target in STARTERS:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {'.'.join(target)}")
    return found


def test_processes_are_started_only_through_wcs_children() -> None:
    """Every process the tests, the benchmarks, the demo or the product start is in a
    group the guard ends when its starter ends, so a run killed half-way leaves none
    behind: ``spawn``, ``spawn_async`` and ``run`` of ``wcs.children``."""
    found = [
        start
        for folder in SOURCES
        for path in sorted((ROOT / folder).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in ALLOWED
        for start in _starts(path)
    ]
    assert found == []
