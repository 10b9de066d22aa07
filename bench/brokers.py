"""The broker a benchmark talks to: a private Mosquitto (TCP_NODELAY) unless told otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bench.report import BenchOptions


@contextlib.contextmanager
def bench_broker(opts: BenchOptions) -> Iterator[str]:
    if opts.mqtt_url:
        yield opts.mqtt_url
        return
    from wcs.mqtt.mosquitto import PrivateMosquitto

    with PrivateMosquitto() as broker:
        yield broker.url
