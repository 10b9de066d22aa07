"""Garbage-collector settings for the long-running event processes."""

from __future__ import annotations

import gc


def settle() -> None:
    """Keep what start-up built (modules, compiled statements, the floor) out of the
    garbage collector's way.

    A full collection walks every tracked object; with start-up's objects in the
    heap one took 50-70 ms in the controller, a stall that every event queued behind
    it waits out. Frozen objects are never collected (they live as long as the
    process anyway), so full collections only walk what the process allocates while
    it runs. Call it once the process has started, from its entry point only."""
    gc.collect()
    gc.freeze()
