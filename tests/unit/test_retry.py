"""The one retry policy: capped exponential backoff, full jitter, outages logged once."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from wcs.retry import Backoff, Outage, Reconnect

LOG = logging.getLogger("tests.retry")


class Windows(random.Random):
    """Records each wait's upper bound and waits nothing."""

    def __init__(self) -> None:
        super().__init__(0)
        self.windows: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        self.windows.append(b)
        return 0.0


def test_window_doubles_from_the_base_up_to_the_cap() -> None:
    policy = Backoff(base_s=0.5, cap_s=4.0)
    assert [policy.window(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.window(10_000) == 4.0  # no overflow after a week of failures
    with pytest.raises(ValueError, match="at least one failure"):
        policy.window(0)


def test_delay_is_full_jitter_over_the_whole_window() -> None:
    policy = Backoff(base_s=0.5, cap_s=4.0)
    rng = random.Random(3)
    for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        waits = [policy.delay(failures, rng) for _ in range(300)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > 0.9 * ceiling and min(waits) < 0.1 * ceiling


@pytest.mark.parametrize(("base", "cap"), [(0, 1), (-1, 1), (2, 1)])
def test_a_backoff_that_cannot_work_is_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(base, cap)


async def test_wait_drives_tenacity_with_the_same_windows() -> None:
    rng = Windows()
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise OSError("down")
        return "up"

    retrying = AsyncRetrying(
        wait=Backoff(0.1, 0.3).wait(rng),
        stop=stop_after_attempt(5),
        retry=retry_if_exception_type(OSError),
    )
    assert await retrying(flaky) == "up"
    assert rng.windows == [0.1, 0.2, 0.3]


def test_outage_is_loud_once_quiet_while_it_lasts_and_noted_on_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage("feed -> broker b:1883", LOG)
    with caplog.at_level(logging.DEBUG, logger=LOG.name):
        assert outage.failed(ConnectionRefusedError("refused")) is True
        assert outage.failed(ConnectionRefusedError("refused")) is False
        assert outage.failed("still refused") is False
        assert outage.down
        assert outage.ok() is True
        assert outage.ok() is False  # nothing to recover from
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels[0] == ("WARNING", "feed -> broker b:1883: refused; retrying")
    assert [lvl for lvl, _ in levels[1:3]] == ["DEBUG", "DEBUG"]
    assert levels[3][0] == "INFO"
    assert levels[3][1].startswith("feed -> broker b:1883: working again after 3 failed attempts")
    assert len(levels) == 4
    assert (outage.failures, outage.total) == (0, 3)


def test_an_unexpected_error_is_logged_with_its_traceback_once_per_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage("scale s1 link", LOG, level=logging.ERROR, expected=(OSError,))
    with caplog.at_level(logging.DEBUG, logger=LOG.name):
        outage.failed(OSError("port gone"))
        outage.failed(KeyError("bug"))
        outage.failed(KeyError("bug"))
        outage.failed(ValueError("another bug"))
        outage.ok()
        outage.failed(KeyError("bug"))  # a new outage: loud again
    records = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.exc_info is not None for r in records] == [False, True, True, True]
    assert "unexpected error (KeyError" in records[1].getMessage()
    assert "unexpected error (ValueError" in records[2].getMessage()


async def test_reconnect_retries_until_the_session_ends_and_restarts_the_backoff_when_up() -> None:
    rng = Windows()
    failures: list[BaseException] = []
    link = Reconnect("peer", LOG, Backoff(0.1, 0.8), rng=rng, on_failure=failures.append)
    plan = ["fail", "fail", "fail", "up-then-fail", "fail", "up-and-end"]

    async def session() -> None:
        step = plan.pop(0)
        if step.startswith("up"):
            link.up()
        if step != "up-and-end":
            raise ConnectionResetError(step)

    await link.run(lambda: session())  # any callable that returns an awaitable
    assert plan == []
    # Three failures widen the window; the session that came up starts it over.
    assert rng.windows == [0.1, 0.2, 0.4, 0.1, 0.2]
    assert [str(e) for e in failures] == ["fail", "fail", "fail", "up-then-fail", "fail"]
    assert not link.outage.down


async def test_cancelling_stops_the_loop_in_the_wait_and_in_the_session() -> None:
    started = asyncio.Event()

    async def never_connects() -> None:
        started.set()
        raise OSError("refused")

    link = Reconnect("peer", LOG, Backoff(5.0, 5.0), rng=random.Random(1))
    task = asyncio.create_task(link.run(never_connects), name="test-reconnect")
    await started.wait()
    await asyncio.sleep(0.01)  # now in the backoff wait (up to 5 s)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def serves_for_ever() -> None:
        link.up()
        await asyncio.Event().wait()

    task = asyncio.create_task(link.run(serves_for_ever), name="test-reconnect")
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert link.outage.total == 1  # a cancellation is not a failure


async def test_a_base_exception_is_not_retried() -> None:
    link = Reconnect("peer", LOG, Backoff(0.01, 0.01))

    async def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await link.run(interrupted)
    assert link.outage.total == 0
