"""Run a driver's loops side by side; the first failure ends them all, unwrapped.

A TaskGroup reports failures as an ExceptionGroup; the reconnect loops want the one
error that ended the session (a lost port, a lost broker) to decide what to report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any


def first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first non-cancellation error in ``group`` (depth first)."""
    fallback: BaseException | None = None
    for exc in group.exceptions:
        leaf = first_leaf(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if not isinstance(leaf, asyncio.CancelledError):
            return leaf
        fallback = fallback or leaf
    return fallback or group


async def run_all(coros: Mapping[str, Coroutine[Any, Any, None]]) -> None:
    """Run the named coroutines together until one fails; raise its error as is."""
    try:
        async with asyncio.TaskGroup() as tg:
            for name, coro in coros.items():
                tg.create_task(coro, name=name)
    except BaseExceptionGroup as group:
        raise first_leaf(group) from None
