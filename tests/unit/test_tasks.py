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
    with pytest.raises(ExceptionGroup) as caught:
        async with background("broken", broken()):
            await asyncio.sleep(5)  # cancelled by the failure, not waited out
            reached_end = True
    assert not reached_end
    assert caught.group_contains(LookupError, match="bug")


async def test_run_all_raises_the_first_error_unwrapped() -> None:
    async def fails() -> None:
        raise ConnectionResetError("port lost")

    async def waits() -> None:
        await asyncio.Event().wait()

    with pytest.raises(ConnectionResetError, match="port lost"):
        await run_all({"a": waits(), "b": fails()})


async def test_every_repeats_rounds_runs_again_at_once_when_asked_and_survives_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[object] = [True, True, None, OSError("db away"), OSError("db away"), None]
    done = asyncio.Event()
    seen: list[float] = []

    async def round_() -> object:
        seen.append(asyncio.get_running_loop().time())
        outcome = outcomes.pop(0)
        if not outcomes:
            done.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    outage = Outage("job", LOG)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        async with background("every", every(0.05, round_, outage)):
            await asyncio.wait_for(done.wait(), 5)
    gaps = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    assert gaps[0] < 0.04 and gaps[1] < 0.04  # True: more waiting, at once
    assert all(gap >= 0.045 for gap in gaps[2:])  # then one interval each
    assert outage.total == 2 and not outage.down
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]


async def test_every_wakes_early_and_can_wait_first() -> None:
    wake = asyncio.Event()
    rounds = 0

    async def round_() -> None:
        nonlocal rounds
        rounds += 1

    async with background("every", every(30, round_, Outage("job", LOG), wake=wake)):
        await asyncio.sleep(0.02)
        assert rounds == 1  # at once
        wake.set()
        await asyncio.sleep(0.02)
        assert rounds == 2  # woken, not after 30 s

    rounds = 0
    async with background("every", every(30, round_, Outage("job", LOG), wait_first=True)):
        await asyncio.sleep(0.05)
        assert rounds == 0
