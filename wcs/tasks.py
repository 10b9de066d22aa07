"""Task lifecycles: every background task is named and owned by the block that runs it.

- :func:`background` runs a coroutine as a named task for the duration of an
  ``async with`` block, in a TaskGroup: leaving the block cancels the task and waits
  for it; a task that fails cancels the block and its error is raised there. No task
  is left running that nobody awaits.
- :func:`run_all` runs named coroutines side by side until one fails and raises that
  error as is: a reconnect loop wants the one error that ended its session (a lost
  port, a lost broker), not an ExceptionGroup.
- :func:`every` is the periodic job: a round every interval, failures logged as one
  outage (:class:`wcs.retry.Outage`).

A component that runs while entered keeps its tasks in an ``AsyncExitStack``::

    async def __aenter__(self) -> Self:
        await self._stack.enter_async_context(background("alert-evaluator", self._run()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, NoReturn, TypeVar

from wcs.retry import Outage

T = TypeVar("T")


@contextlib.asynccontextmanager
async def background(name: str, coro: Coroutine[Any, Any, T]) -> AsyncIterator[asyncio.Task[T]]:
    """Run ``coro`` as the task ``name`` while the block runs; cancel it on leaving."""
    async with asyncio.TaskGroup() as group:
        task = group.create_task(coro, name=name)
        try:
            yield task
        finally:
            task.cancel()


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
        async with asyncio.TaskGroup() as group:
            for name, coro in coros.items():
                group.create_task(coro, name=name)
    except BaseExceptionGroup as errors:
        raise first_leaf(errors) from None


async def every(
    interval_s: float,
    round_: Callable[[], Awaitable[object]],
    outage: Outage,
    *,
    wake: asyncio.Event | None = None,
    wait_first: bool = False,
) -> NoReturn:
    """Run ``round_`` every ``interval_s`` seconds, for ever.

    A round that returns True (a full batch: more may be waiting) runs again at once;
    setting ``wake`` cuts a wait short (it is cleared before each round, so a wake-up
    during a round is not lost). A failing round is logged through ``outage`` - loud
    once, quiet while it lasts, once on recovery - and tried again after the interval.
    ``wait_first``: the first round comes after one interval rather than at once."""
    if wait_first:
        await _pause(interval_s, wake)
    while True:
        if wake is not None:
            wake.clear()
        again = False
        try:
            again = await round_() is True
        except Exception as exc:
            outage.failed(exc)
        else:
            outage.ok()
        if not again:
            await _pause(interval_s, wake)


async def _pause(seconds: float, wake: asyncio.Event | None) -> None:
    if wake is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
