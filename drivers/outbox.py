"""The bounded, ordered buffer between a driver and the broker.

Every outgoing message except the retained status goes through here, whether the
broker is up or not. A message stays until the broker acknowledges it (PUBACK), so
a connection lost with messages in flight replays them, in order, on the next
connection - a consumer may see one twice (QoS 1), always with the same ``msg_id``.
When the buffer is full the oldest message is dropped and counted: a long broker
outage costs the oldest events, never the driver's memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field


@dataclass(eq=False, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    inflight: bool = False
    acked: bool = False
    dropped: bool = False
    epoch: int = -1  # the connection it was last handed to


@dataclass
class Outbox:
    capacity: int = 10_000
    dropped: int = 0
    acked: int = 0
    high_water: int = 0
    _items: deque[Outgoing] = field(default_factory=deque)
    _cursor: int = 0  # items before it have been handed to the broker on this connection
    _inflight: int = 0  # publishes handed out on this connection and not finished
    _epoch: int = 0  # bumped per connection: a late answer from an old one counts for nothing
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("outbox capacity must be at least 1")

    def __len__(self) -> int:
        return len(self._items)

    @property
    def inflight(self) -> int:
        return self._inflight

    def put(self, topic: str, payload: bytes) -> Outgoing:
        if len(self._items) >= self.capacity:
            old = self._items.popleft()
            # An in-flight message keeps its window slot until its publish finishes,
            # so dropping never lets more publishes pile up than the window allows.
            old.dropped = True
            self._cursor = max(0, self._cursor - 1)
            self.dropped += 1
        item = Outgoing(topic, payload)
        self._items.append(item)
        self.high_water = max(self.high_water, len(self._items))
        self._changed.set()
        return item

    def take(self, window: int) -> Outgoing | None:
        """The next message to send, if fewer than ``window`` are unacknowledged."""
        if self._inflight >= window:
            return None
        while self._cursor < len(self._items):
            item = self._items[self._cursor]
            self._cursor += 1
            if item.acked:
                continue
            item.inflight = True
            item.epoch = self._epoch
            self._inflight += 1
            return item
        return None

    def ack(self, item: Outgoing) -> None:
        self.release(item)
        if item.acked or item.dropped:
            return
        item.acked = True
        self.acked += 1
        while self._items and self._items[0].acked:
            self._items.popleft()
            self._cursor = max(0, self._cursor - 1)
        self._changed.set()

    def release(self, item: Outgoing) -> None:
        """The publish of ``item`` finished (acknowledged or failed): free its slot."""
        if item.inflight and item.epoch == self._epoch:
            item.inflight = False
            self._inflight -= 1
            self._changed.set()

    def rewind(self) -> None:
        """The connection is gone: everything unacknowledged goes out again, in order."""
        for item in self._items:
            item.inflight = False
        self._inflight = 0
        self._epoch += 1
        self._cursor = 0
        self._changed.set()

    def has_sendable(self, window: int) -> bool:
        if self._inflight >= window:
            return False
        return any(not self._items[i].acked for i in range(self._cursor, len(self._items)))

    async def wait_changed(self) -> None:
        await self._changed.wait()
        self._changed.clear()

    def empty(self) -> bool:
        return not self._items
