"""settle(): start-up's objects leave the collector's generations for good."""

from __future__ import annotations

import gc

from wcs.heap import settle


def test_settle_freezes_what_exists_and_collects_first() -> None:
    cycle: list[object] = []
    cycle.append(cycle)  # garbage only a collection can free
    del cycle
    before = gc.get_freeze_count()
    try:
        settle()
        frozen = gc.get_freeze_count()
        assert frozen > before
        assert gc.collect() == 0  # the cycle went in settle's own collection
    finally:
        gc.unfreeze()
