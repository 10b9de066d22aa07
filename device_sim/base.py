"""Lifecycle shared by every simulated device.

A simulator is an async context manager: ``__aenter__`` returns once the device is
reachable (port listening, pty created), ``__aexit__`` cancels its background tasks and
closes its link. Background work runs in named tasks owned by a :class:`TaskSet`; a task
that crashes is logged at once and its exception re-raised when the simulator stops, so
a bug in a simulator fails the test that used it instead of vanishing into a log.

The link (the pty, the TCP listener, the Modbus server) can be taken away and given back
while the device itself keeps its state: :meth:`Simulator.disconnect`,
:meth:`Simulator.reconnect` and :meth:`Simulator.outage` model a pulled cable or a
power-cycled serial device server.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable, Coroutine
from types import TracebackType
from typing import Any, ClassVar, Self

import structlog

from wcs.logs import get_logger


class TaskSet:
    """Named background tasks with one owner; cancelled and awaited together."""

    def __init__(self, owner: str, log: structlog.stdlib.BoundLogger) -> None:
        self._owner = owner
        self._log = log
        self._tasks: set[asyncio.Task[Any]] = set()
        self.crash: BaseException | None = None

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"sim:{self._owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._log.error("simulator task crashed", task=task.get_name(), error=repr(exc))
            if self.crash is None:
                self.crash = exc

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)


class Changes:
    """Wakes waiters whenever the device state changes (host write, press, arrival)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float | None) -> None:
        """Return as soon as ``predicate()`` holds; ``TimeoutError`` after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await self._event.wait()

    async def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the next change; ``False`` if ``timeout_s`` passed first."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


class Simulator(abc.ABC):
    """One simulated device: a link the host reaches plus behaviour behind it."""

    kind: ClassVar[str]

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.log = get_logger("device_sim").bind(device=device_id, kind=self.kind)
        self.tasks = TaskSet(device_id, self.log)
        self.changes = Changes()
        self._running = False
        self._link_up = False

    # -- lifecycle ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def link_up(self) -> bool:
        return self._link_up

    async def start(self) -> None:
        if self._running:
            raise RuntimeError(f"simulator {self.device_id} is already running")
        await self._open_link()
        self._link_up = True
        self._running = True
        try:
            self._start_behaviour()
        except BaseException:
            await self.stop()
            raise
        self.log.debug("simulator started", address=self.address)

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        await self.tasks.cancel_all()
        if self._link_up:
            self._link_up = False
            await self._close_link()
        self.log.debug("simulator stopped")
        if self.tasks.crash is not None:
            crash, self.tasks.crash = self.tasks.crash, None
            raise crash

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- link faults -------------------------------------------------------------

    async def disconnect(self) -> None:
        """Take the link away (listener and open connections closed, pty hung up)."""
        if not self._link_up:
            return
        self._link_up = False
        await self._close_link()
        self.log.warning("fault injected: link down")

    async def reconnect(self) -> None:
        """Give the link back at the same address (a pty gets a new slave path)."""
        if self._link_up or not self._running:
            return
        await self._open_link()
        self._link_up = True
        self.log.info("link restored", address=self.address)

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        """``async with sim.outage(): ...`` - the link is down inside the block."""
        await self.disconnect()
        try:
            yield
        finally:
            await self.reconnect()

    # -- for subclasses ----------------------------------------------------------

    @property
    @abc.abstractmethod
    def address(self) -> str:
        """What a host opens to reach this device (URL, host:port, pty path)."""

    @abc.abstractmethod
    async def _open_link(self) -> None: ...

    @abc.abstractmethod
    async def _close_link(self) -> None: ...

    def _start_behaviour(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Spawn the device's own background tasks (runs once, after the first open)."""

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, re-checking after every state change."""
        await self.changes.wait_for(predicate, timeout_s)


def now() -> float:
    """Monotonic seconds on the running loop's clock (the clock asyncio timeouts use)."""
    return asyncio.get_running_loop().time()


async def sleep_until(deadline: float, wake: asyncio.Event | None = None) -> bool:
    """Sleep until loop time ``deadline``; return ``True`` early if ``wake`` is set."""
    remaining = deadline - now()
    if wake is None:
        if remaining > 0:
            await asyncio.sleep(remaining)
        return False
    if wake.is_set():
        return True
    if remaining <= 0:
        return False
    try:
        async with asyncio.timeout(None if math.isinf(remaining) else remaining):
            await wake.wait()
    except TimeoutError:
        return False
    return True
