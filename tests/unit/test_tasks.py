"""Task lifecycles: named, owned by a block, never left behind; periodic rounds."""

from __future__ import annotations

import asyncio
import logging

import pytest

from wcs.retry import Outage
from wcs.tasks import background, every, run_all

LOG = logging.getLogger("tests.tasks")


async def test_background_runs_a_named_task_for_the_block_and_cancels_it_on_leaving() -> None:
    ran = asyncio.Event()
    stopped = asyncio.Event()

    async def forever() -> None:
        ran.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async with background("the-job", forever()) as task:
        await ran.wait()
        assert task.get_name() == "the-job"
        assert any(t.get_name() == "the-job" for t in asyncio.all_tasks())
    assert stopped.is_set() and task.cancelled()
    assert not any(t.get_name() == "the-job" for t in asyncio.all_tasks())


async def test_a_failing_background_task_cancels_the_block_and_raises_there() -> None:
    async def broken() -> None:
        await asyncio.sleep(0)
        raise LookupError("bug")

    reached_end = False

    async def owner() -> None:
        nonlocal reached_end
        async with background("broken", broken()):
            await asyncio.sleep(5)  # cancelled by the failure, not waited out
            reached_end = True

    with pytest.raises(ExceptionGroup) as caught:
        await owner()
    assert not reached_end
    assert caught.group_contains(LookupError, match="bug")


async def test_run_all_raises_the_first_error_unwrapped() -> None:
    async def fails() -> None:
        raise ConnectionResetError("port lost")

    async def waits() -> None:
        await asyncio.Event().wait()

    with pytest.raises(ConnectionResetError, match="port lost"):
        await run_all({"a": waits(), "b": fails()})


async def test_every_runs_again_at_once_while_a_round_says_more_is_waiting() -> None:
    outcomes: list[object] = [True, True, None, True]
    rounds = 0

    async def round_() -> object:
        nonlocal rounds
        rounds += 1
        return outcomes.pop(0)

    async with background("every", every(30, round_, Outage("job", LOG))):
        async with asyncio.timeout(5):
            while rounds < 3:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert rounds == 3  # the third said nothing more: it waits the 30 s


async def test_every_survives_failing_rounds_and_logs_them_as_one_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[object] = [OSError("db away"), OSError("db away"), None]
    done = asyncio.Event()

    async def round_() -> None:
        outcome = outcomes.pop(0) if outcomes else None
        if not outcomes:
            done.set()
        if isinstance(outcome, Exception):
            raise outcome

    outage = Outage("job", LOG)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        async with background("every", every(0.01, round_, outage)):
            await asyncio.wait_for(done.wait(), 5)
            await asyncio.sleep(0.05)
    assert outage.total == 2 and not outage.down
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]


async def test_every_wakes_early_and_can_wait_first() -> None:
    wake = asyncio.Event()
    rounds = 0

    async def round_() -> None:
        nonlocal rounds
        rounds += 1

    async def until(n: int) -> None:
        async with asyncio.timeout(5):  # far below the 30 s interval
            while rounds < n:
                await asyncio.sleep(0.005)

    async with background("every", every(30, round_, Outage("job", LOG), wake=wake)):
        await until(1)  # at once
        wake.set()
        await until(2)  # woken, not after 30 s

    rounds = 0
    async with background("every", every(30, round_, Outage("job", LOG), wait_first=True)):
        await asyncio.sleep(0.05)
        assert rounds == 0
