"""Free local ports for the servers a test starts."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_GIVEN: set[int] = set()  # ports free_port handed out in this run


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range.

    A port from ``bind(0)`` is one the kernel also gives to outgoing connections, and a
    test run opens many (database, broker, port probes): one of them can hold the port
    by the time the server the test starts binds it.
    """
    low = _ephemeral_low()
    while True:
        port = random.randrange(max(1024, low - 10_000), low)
        if port in _GIVEN:  # two servers of one test each need their own
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
