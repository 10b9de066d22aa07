"""One station's MQTT session.

The session is named after the station, not after the process: ``wcs-{site}-st-{id}``,
persistent (clean session off), with QoS 1 subscriptions to the station's devices.
While no instance owns the station the broker queues its devices' events; the next
owner connects under the same name and gets them, so a failover loses nothing. An
owner acknowledges an event only after its effect committed.

The session reconnects (one backoff policy, ``wcs.retry``) only while its owner still
holds the station's lease: connecting under the station's name takes the session over
from whoever holds it, so a stale owner must not come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aiomqtt
from paho.mqtt.client import MQTTMessage

from wcs.contract.topics import Topics
from wcs.mqtt.client import (
    acknowledge,
    acknowledge_manually,
    handle_in_callback,
    make_client,
    publish_all,
)
from wcs.retry import Backoff, Reconnect
from wcs.settings import MqttEndpoint

log = logging.getLogger(__name__)

Handler = Callable[[MQTTMessage, int], None]


def session_id(site: str, station: str) -> str:
    return f"wcs-{site}-st-{station}"


def instance_client_id(site: str, instance: str) -> str:
    """A controller instance's own (clean) connection, for dead letters and order
    messages."""
    return f"wcs-{site}-ctl-{instance}"


class StationSession:
    """``async with StationSession(...)``: connected (or trying) until the block ends.

    ``handle(message, generation)`` runs in paho's callback for every message; the
    generation counts connections, so an acknowledgement is only sent on the
    connection its message came on."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        topics: Topics,
        station: str,
        subscriptions: Sequence[tuple[str, int]],
        handle: Handler,
        *,
        allowed: Callable[[], bool],
        on_connect: Callable[[], None] | None = None,
        protocol: int = 3,
    ) -> None:
        self.endpoint = endpoint
        self.station = station
        self.client_id = session_id(topics.site, station)
        self.subscriptions = list(subscriptions)
        self._handle = handle
        self._allowed = allowed
        self._on_connect = on_connect
        self._protocol = protocol
        self.client: aiomqtt.Client | None = None
        self.generation = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._link = Reconnect(
            f"station {station} session -> broker {endpoint.host}:{endpoint.port}",
            log,
            Backoff(0.1, 2.0),
        )

    async def __aenter__(self) -> StationSession:
        self._task = asyncio.create_task(self._run(), name=f"session-{self.station}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.client = None
        self.connected.clear()

    async def _run(self) -> None:
        await self._link.run(self._session)

    async def _session(self) -> None:
        # The lease is not (or no longer) good: connecting would take the session from
        # an owner that may hold it now. Its renewal (or this session's end, when the
        # station is let go) decides; the lease is a clock, not an event to wait on.
        while not self._allowed():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        client = make_client(
            self.endpoint,
            identifier=self.client_id,
            protocol=5 if self._protocol == 5 else 3,
            clean_session=False,
            max_queued_incoming=None,
        )
        acknowledge_manually(client)
        self.generation += 1
        generation = self.generation

        def on_message(message: MQTTMessage) -> None:
            self._handle(message, generation)

        try:
            # The callback is in place before the connection: a resumed session's queued
            # messages come right after the broker accepts it, before any subscription.
            with handle_in_callback(client, on_message):
                async with client:
                    self.client = client
                    # One SUBSCRIBE for all: a broker may hold the next packet until the
                    # retained messages of the last one are acknowledged (amqtt does), and
                    # acknowledgements wait for their commit.
                    await client.subscribe(list(self.subscriptions))
                    self.connected.set()
                    self._link.up()
                    if self._on_connect is not None:
                        self._on_connect()
                    # Messages arrive through the callback; this only ends with the link.
                    async for _ in client.messages:
                        pass
        finally:
            if self.client is client:
                self.client = None
                self.connected.clear()

    def ack(self, mid: int, generation: int) -> None:
        client = self.client
        if client is not None and generation == self.generation and mid:
            acknowledge(client, mid)

    def send(self, messages: Sequence[tuple[str, bytes, int, bool]]) -> asyncio.Future[Any] | None:
        """Hand messages to the client in order; None when it is not connected."""
        client = self.client
        if client is None or not messages:
            return None
        try:
            return publish_all(client, messages)
        except aiomqtt.MqttError:
            return None


async def end_sessions(endpoint: MqttEndpoint, topics: Topics, stations: Sequence[str]) -> None:
    """Connect once per station with a clean start: the broker drops the sessions (for a
    site that is not coming back, such as a demo's)."""
    for station in stations:
        with contextlib.suppress(aiomqtt.MqttError):
            async with make_client(endpoint, identifier=session_id(topics.site, station)):
                pass
