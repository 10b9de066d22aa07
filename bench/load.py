"""Open-loop MQTT load: send at a fixed rate (sleeping, never spinning) and time replies.

Spinning would hold the GIL and starve the MQTT client's I/O, faking latency; so the
sender sleeps until each message is due. Latency is measured from the moment a
message was handed to the client to the moment its reply was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import aiomqtt
from paho.mqtt.client import MQTT_ERR_SUCCESS, MQTTMessage, MQTTMessageInfo

from wcs.mqtt.client import handle_in_callback


@dataclass
class Probe:
    """Replies are matched to requests by a key the caller extracts from each reply."""

    sent: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    late: int = 0

    def reply(self, key: str | None, at: float) -> None:
        if key is None:
            return
        started = self.sent.pop(key, None)
        if started is not None:
            self.latencies.append(at - started)

    @property
    def missing(self) -> int:
        return len(self.sent)


@contextlib.contextmanager
def no_collector_pauses() -> Iterator[None]:
    """The load generator's own garbage collector stays off while it measures.

    A full collection in this process (its probes hold tens of thousands of
    objects) stalls the reading of replies for tens of milliseconds, which would
    show as latency of whatever is measured. It collects before the step instead."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def read_in_callback(
    client: aiomqtt.Client, handle: Callable[[str, bytes, float], None]
) -> Iterator[None]:
    """Replies handled as paho reads them: ``handle(topic, payload, read_at)``.

    aiomqtt's message iterator puts each message on a queue and wakes a task to take
    it off again; at thousands of replies a second that costs the load generator
    CPU the measured processes share, and the reading time it stamps is later."""

    def on_message(message: MQTTMessage) -> None:
        handle(message.topic, bytes(message.payload), time.perf_counter())

    with handle_in_callback(client, on_message):
        yield


async def drive(
    client: aiomqtt.Client,
    probe: Probe,
    make: Callable[[int], tuple[str, bytes, str] | None],
    *,
    rate: float,
    seconds: float,
    settle_s: float = 3.0,
) -> float:
    """Send ``rate * seconds`` messages made by ``make(n) -> (topic, payload, key)``.

    Returns the achieved send rate (messages actually sent per second). Waits up to
    ``settle_s`` for the last replies.
    """
    with no_collector_pauses():
        return await _drive(client, probe, make, rate=rate, seconds=seconds, settle_s=settle_s)


async def _drive(
    client: aiomqtt.Client,
    probe: Probe,
    make: Callable[[int], tuple[str, bytes, str] | None],
    *,
    rate: float,
    seconds: float,
    settle_s: float,
) -> float:
    total = int(rate * seconds)
    sent = 0
    began = time.perf_counter()
    # Straight to paho: a task, an event and a timer per message (aiomqtt's publish)
    # would cost the load generator a third more CPU, taken from what is measured.
    paho = client._client
    unconfirmed: list[MQTTMessageInfo] = []
    for n in range(total):
        due = began + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        made = make(n)
        if made is None:
            continue  # the sender had nothing to send at this moment
        sent += 1
        topic, payload, key = made
        probe.sent[key] = time.perf_counter()
        info = paho.publish(topic, payload, qos=1)
        if info.rc != MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "the load generator could not publish")
        unconfirmed.append(info)
        if len(unconfirmed) >= 1000:
            unconfirmed = [i for i in unconfirmed if not i.is_published()]
    achieved = sent / (time.perf_counter() - began)
    deadline = time.perf_counter() + settle_s
    while (probe.sent or unconfirmed) and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
        unconfirmed = [i for i in unconfirmed if not i.is_published()]
    return achieved
