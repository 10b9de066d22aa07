"""Capped exponential backoff with full jitter: the one reconnect policy of every driver.

Full jitter (a uniformly random wait between zero and the exponential cap) spreads the
reconnects of many drivers after a shared outage (a broker restart, a switch reboot)
instead of having them all knock at the same instant.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_s: float = 0.1
    cap_s: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; each call widens the window up to ``cap_s``."""
        ceiling = min(self.cap_s, self.base_s * (2 ** min(self.attempt, 32)))
        self.attempt += 1
        return self.rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        """Call after a success so the next failure starts small again."""
        self.attempt = 0

    async def sleep(self) -> float:
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay
