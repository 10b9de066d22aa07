"""Retrying: one policy for every reconnect and retry loop of the system.

Capped exponential backoff with full jitter: after the n-th failure in a row, wait a
uniformly random time between zero and ``min(cap, base * 2**(n-1))``. The randomness
spreads the reconnects of many clients after a shared outage (a broker restart, a
switch reboot, a database failover) instead of having them all knock at the same
instant; the cap bounds how long a peer that came back waits to be noticed.

- :class:`Backoff` is the policy: ``delay(n)`` for one wait, ``wait()`` for tenacity.
- :class:`Outage` is how a failing peer is logged: loud on the first failure, quiet
  (debug) while it lasts, one line on recovery; an unexpected error (a bug, not the
  peer) is logged with its traceback, once per kind and outage.
- :class:`Reconnect` is the loop, on tenacity: run a session; when it fails, log it
  through the outage, wait the backoff and run it again. A session that reports itself
  connected (``up()``) starts the backoff over: a link that worked for an hour and
  drops is retried quickly, one that never comes up is retried ever more slowly.

    link = Reconnect("live feed -> broker 10.0.0.5:1883", log, Backoff(0.2, 10.0))

    async def session() -> None:
        async with make_client(endpoint) as client:
            link.up()
            async for message in client.messages:
                ...

    await link.run(session)  # returns only if session returns; cancel to stop
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_never

Log = logging.Logger | structlog.stdlib.BoundLogger

_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter."""

    base_s: float = 0.2
    cap_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError(
                f"backoff needs 0 < base <= cap, got base {self.base_s} s, cap {self.cap_s} s"
            )

    def window(self, failures: int) -> float:
        """The longest wait after ``failures`` failures in a row (1 = the first)."""
        if failures < 1:
            raise ValueError("a backoff follows at least one failure")
        return min(self.cap_s, self.base_s * 2.0 ** min(failures - 1, 64))

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """The wait after ``failures`` failures in a row: uniform in [0, window]."""
        return (rng or _RNG).uniform(0.0, self.window(failures))

    def wait(self, rng: random.Random | None = None) -> Callable[[RetryCallState], float]:
        """The policy as tenacity's ``wait=``: the wait after attempt n is ``delay(n)``."""

        def wait(state: RetryCallState) -> float:
            return self.delay(state.attempt_number, rng)

        return wait


class Outage:
    """One peer's failures, logged the way an operator wants them.

    The first failure in a row is logged at ``level`` (a warning by default), the
    following ones at debug, and the first success after them once at info with how
    long it lasted. Failures that are not of an ``expected`` type are bugs rather than
    an absent peer: each kind is logged at error with its traceback, once per outage."""

    def __init__(
        self,
        subject: str,
        log: Log,
        *,
        level: int = logging.WARNING,
        expected: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        self.subject = subject
        self.failures = 0  # in a row
        self.total = 0
        self._log = log
        self._level = level
        self._expected = expected
        self._since = 0.0
        self._bugs: set[type[BaseException]] = set()  # logged with a traceback already

    @property
    def down(self) -> bool:
        return self.failures > 0

    def failed(self, error: BaseException | str) -> bool:
        """Count a failure and log it; True when it starts an outage."""
        first = self.failures == 0
        if first:
            self._since = time.monotonic()
        self.failures += 1
        self.total += 1
        if isinstance(error, BaseException) and not isinstance(error, self._expected):
            if type(error) in self._bugs:
                self._log.debug(f"{self.subject}: still failing: {type(error).__name__}")
                return first
            self._bugs.add(type(error))
            self._log.error(
                f"{self.subject}: unexpected error ({type(error).__name__}: {error}); retrying",
                exc_info=error,
            )
        elif first:
            self._log.log(self._level, f"{self.subject}: {_reason(error)}; retrying")
        else:
            self._log.debug(f"{self.subject}: still failing: {_reason(error)}")
        return first

    def ok(self) -> bool:
        """Note a success; True when it ends an outage (logged once at info)."""
        if not self.failures:
            return False
        lasted = time.monotonic() - self._since
        attempts = "attempt" if self.failures == 1 else "attempts"
        self._log.info(
            f"{self.subject}: working again after {self.failures} failed {attempts} "
            f"in {lasted:.1f} s"
        )
        self.failures = 0
        self._bugs.clear()
        return True


def _reason(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error).strip()
    return text or type(error).__name__


class Reconnect:
    """A session retried for ever with the backoff; see the module's docstring.

    ``on_failure`` runs after every failed session, before the wait (a driver reports
    its device's fault there). Cancelling the task that runs :meth:`run` stops it, in
    the session or in the wait alike."""

    def __init__(
        self,
        subject: str,
        log: Log,
        backoff: Backoff | None = None,
        *,
        level: int = logging.WARNING,
        expected: tuple[type[BaseException], ...] = (Exception,),
        on_failure: Callable[[BaseException], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.outage = Outage(subject, log, level=level, expected=expected)
        self._on_failure = on_failure
        self._rng = rng

    def up(self) -> bool:
        """The session is connected: the next failure waits the shortest backoff again.
        True when this ends an outage (logged once)."""
        return self.outage.ok()

    async def run(self, session: Callable[[], Awaitable[None]]) -> None:
        retrying = AsyncRetrying(
            stop=stop_never,
            retry=retry_if_exception_type(Exception),
            wait=self._wait,
            after=self._failed,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await session()

    def _failed(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is None:
            return
        if self._on_failure is not None:
            self._on_failure(error)
        self.outage.failed(error)

    def _wait(self, state: RetryCallState) -> float:
        # Failures since the session was last up, not attempts since the loop began.
        return self.backoff.delay(max(self.outage.failures, 1), self._rng)
