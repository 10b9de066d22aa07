"""The SSE fan-out: bounded per-client queues, a slow client is dropped, never waited for."""

from __future__ import annotations

import asyncio

from api.live import LiveEvent, LiveHub


def event(n: int) -> LiveEvent:
    return LiveEvent("order", {"n": n})


async def test_every_client_gets_every_event_in_order() -> None:
    hub = LiveHub(queue_size=8)
    a, b = hub.subscribe(), hub.subscribe()
    for n in range(5):
        hub.publish(event(n))
    for sub in (a, b):
        got = [await sub.next() for _ in range(5)]
        assert [e.data["n"] for e in got if e is not None] == list(range(5))
    assert hub.clients == 2
    hub.close()


async def test_a_slow_client_is_dropped_and_the_others_keep_up() -> None:
    hub = LiveHub(queue_size=8)
    slow, fast = hub.subscribe(), hub.subscribe()
    received: list[int] = []

    async def reader() -> None:
        while (e := await fast.next()) is not None:
            received.append(e.data["n"])
            if e.data["n"] == 99:
                return

    task = asyncio.create_task(reader(), name="fast-reader")
    for n in range(100):
        hub.publish(event(n))  # never awaits: the publisher cannot be held up
        await asyncio.sleep(0)
    await asyncio.wait_for(task, 5)
    assert received == list(range(100))
    assert slow.dropped and not fast.dropped
    assert hub.clients == 1 and hub.dropped == 1
    # the dropped client's stream ends right away instead of replaying stale events
    assert await slow.next() is None
    hub.close()


async def test_close_ends_every_stream() -> None:
    hub = LiveHub(queue_size=8)
    subs = [hub.subscribe() for _ in range(3)]
    hub.publish(event(1))
    hub.close()
    assert hub.clients == 0
    for sub in subs:
        assert await sub.next() is None and not sub.dropped
    hub.unsubscribe(subs[0])  # unsubscribing twice is harmless
    assert hub.clients == 0


def test_encoding_is_compact_json_with_rfc3339_times() -> None:
    from datetime import UTC, datetime

    e = LiveEvent("order", {"at": datetime(2026, 11, 25, 8, 0, 1, tzinfo=UTC), "to": "packed"})
    assert e.encode() == '{"at":"2026-11-25T08:00:01.000Z","to":"packed"}'
