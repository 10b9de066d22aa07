"""The bounded offline buffer: order, replay after a lost connection, drop-oldest."""

from __future__ import annotations

import random

from drivers.outbox import Outbox


def drain(box: Outbox, window: int = 10) -> list[bytes]:
    sent = []
    while (item := box.take(window)) is not None:
        sent.append(item.payload)
        box.ack(item)
    return sent


def test_fifo_and_window() -> None:
    box = Outbox(capacity=10)
    for i in range(5):
        box.put("t", str(i).encode())
    first = [box.take(2), box.take(2), box.take(2)]
    assert first[2] is None  # window of 2 is full
    assert [f.payload for f in first if f] == [b"0", b"1"]
    assert box.inflight == 2


def test_rewind_replays_unacked_in_order_and_skips_acked() -> None:
    box = Outbox(capacity=10)
    for i in range(5):
        box.put("t", str(i).encode())
    items = [box.take(10) for _ in range(4)]
    assert all(items)
    box.ack(items[0])  # type: ignore[arg-type]
    box.ack(items[2])  # type: ignore[arg-type] # acked out of order
    box.rewind()  # connection lost
    assert drain(box) == [b"1", b"3", b"4"]
    assert box.empty()
    assert box.acked == 5


def test_full_buffer_drops_oldest_and_counts() -> None:
    box = Outbox(capacity=3)
    for i in range(5):
        box.put("t", str(i).encode())
    assert len(box) == 3
    assert box.dropped == 2
    assert drain(box) == [b"2", b"3", b"4"]


def test_dropping_an_inflight_message_keeps_its_slot_until_it_finishes() -> None:
    box = Outbox(capacity=2)
    box.put("t", b"a")
    first = box.take(1)
    assert first is not None and box.take(1) is None
    box.put("t", b"b")
    box.put("t", b"c")  # drops "a" while it is in flight
    assert box.dropped == 1
    assert box.inflight == 1 and box.take(1) is None  # never more publishes than the window
    box.ack(first)  # the PUBACK for the dropped message frees the slot, counts nothing
    assert box.acked == 0 and box.inflight == 0
    assert drain(box, window=1) == [b"b", b"c"]


def test_a_late_answer_from_an_old_connection_changes_nothing() -> None:
    box = Outbox(capacity=10)
    box.put("t", b"a")
    box.put("t", b"b")
    a, b = box.take(5), box.take(5)
    assert a is not None and b is not None
    box.rewind()  # connection lost with both in flight
    assert box.take(5) is a and box.inflight == 1
    box.release(b)  # the old connection's publish of b ends: not this connection's slot
    assert box.inflight == 1
    box.ack(a)
    assert box.inflight == 0


def test_random_interleaving_never_loses_or_reorders() -> None:
    rng = random.Random(7)
    box = Outbox(capacity=100_000)
    produced = 0
    delivered: list[int] = []
    inflight = []
    for _ in range(20_000):
        action = rng.random()
        if action < 0.4:
            box.put("t", str(produced).encode())
            produced += 1
        elif action < 0.8:
            item = box.take(8)
            if item:
                inflight.append(item)
        elif action < 0.97 and inflight:
            item = inflight.pop(0)
            delivered.append(int(item.payload))
            box.ack(item)
        else:  # connection lost: un-acked in-flight items come back
            inflight.clear()
            box.rewind()
    box.rewind()
    delivered += [int(p) for p in drain(box)]
    assert sorted(set(delivered)) == list(range(produced))
    assert delivered == sorted(delivered)
