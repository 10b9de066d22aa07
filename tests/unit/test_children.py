"""Children started through ``wcs.children`` end with their parent, however the
parent ends - and so does everything they started in turn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

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
