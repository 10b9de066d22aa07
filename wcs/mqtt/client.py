"""aiomqtt clients configured the way this system needs them.

Every client sets TCP_NODELAY: without it a QoS 1 round trip on loopback costs tens
of milliseconds of Nagle and delayed-ACK waiting instead of a fraction of one.

With Nagle off, every MQTT packet paho writes is a system call and a segment of its
own, and the broker wakes up for each. Packets queued in the same event loop turn
(a batch's acknowledgements and commands) are therefore written together.

paho looks every incoming message up in its table of per-filter callbacks through a
recursive closure that refers to itself: a reference cycle per message, which only
the garbage collector frees. At a few hundred messages a second that garbage was
what set off most collections in the controller, full ones included (17-25 ms each,
every event behind them waiting). Clients here look messages up without the cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Self

import aiomqtt
from paho.mqtt.client import (
    DISCONNECT,
    MQTT_CLEAN_START_FIRST_ONLY,
    MQTT_ERR_SUCCESS,
    PUBLISH,
    CleanStartOption,
    MQTTMessage,
)
from paho.mqtt.client import Client as PahoClient
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from wcs.ids import new_id
from wcs.settings import MqttEndpoint
from wcs.tls import client_context

NODELAY: list[tuple[int, int, int]] = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
# MQTT 5 session expiry "never", like a 3.1.1 persistent session on Mosquitto.
SESSION_NEVER_EXPIRES = 0xFFFFFFFF

# How long a cancelled connect may take to finish before it is abandoned anyway.
SETTLE_S = 5.0


class Client(aiomqtt.Client):
    """aiomqtt's client, safe to cancel while it connects.

    aiomqtt 2.5 leaves the socket open and its housekeeping task running when the task
    entering ``async with client`` is cancelled before the broker has answered
    (upstream issue #377, fixed only in its 3.x rewrite): a reconnect loop stopped at
    that moment leaked both. Cancelled there, this one lets the connect finish (for
    ``SETTLE_S`` at most), disconnects, and only then passes the cancellation on."""

    async def __aenter__(self) -> Self:
        connecting = asyncio.get_running_loop().create_task(
            super().__aenter__(), name=f"mqtt-connect:{self.identifier}"
        )
        try:
            return await asyncio.shield(connecting)
        except asyncio.CancelledError:
            await self._abandon(connecting)
            raise

    async def _abandon(self, connecting: asyncio.Task[Self]) -> None:
        try:
            async with asyncio.timeout(SETTLE_S):
                await asyncio.wait([connecting])
                if not connecting.cancelled() and connecting.exception() is None:
                    await super().__aexit__(None, None, None)
        except Exception:  # the connect failed or the broker stopped answering: gone
            connecting.cancel()
        finally:
            misc = self._misc_task
            if misc is not None and not misc.done():
                misc.cancel()


def make_client(
    endpoint: MqttEndpoint,
    *,
    identifier: str | None = None,
    will: aiomqtt.Will | None = None,
    protocol: Literal[3, 5] = 3,
    clean_session: bool = True,
    keepalive: int = 30,
    max_queued_incoming: int | None = 10_000,
    max_inflight: int | None = None,
) -> aiomqtt.Client:
    """An aiomqtt client with TCP_NODELAY; use it as ``async with make_client(...)``.

    MQTT 5 is needed for shared subscriptions on brokers that enforce it; 3.1.1 is the
    default because the embedded broker (amqtt) speaks only 3.1.1.

    ``clean_session=False`` means a persistent session in both versions. MQTT 5 splits
    it in two: resume the session on connect (clean start off) and keep it while
    disconnected (a session expiry interval; the default 0 ends the session with the
    connection, and the messages owed to a crashed client go with it).

    ``max_inflight`` bounds the QoS 1/2 publishes awaiting their acknowledgement
    (paho's default 20 when None, 0 for no bound); publishes beyond it wait in paho.
    """
    version = aiomqtt.ProtocolVersion.V5 if protocol == 5 else aiomqtt.ProtocolVersion.V311
    clean_start: CleanStartOption = MQTT_CLEAN_START_FIRST_ONLY
    properties: Properties | None = None
    if protocol == 5 and not clean_session:
        clean_start = False
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
    client = Client(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=endpoint.password,
        identifier=identifier or new_id("wcs-"),
        will=will,
        protocol=version,
        clean_session=None if protocol == 5 else clean_session,
        clean_start=clean_start,
        properties=properties,
        keepalive=keepalive,
        tls_context=tls_context(endpoint),
        socket_options=NODELAY,
        max_queued_incoming_messages=max_queued_incoming,
        max_inflight_messages=max_inflight,
    )
    coalesce_writes(client._client)
    client._client._on_message_filtered = AcyclicMatcher()
    return client


class AcyclicMatcher(MQTTMatcher):
    """paho's topic-filter table, matched without creating garbage.

    The same filters in the same trie and the same matches in the same order as
    paho's ``iter_match``, whose recursive closure holds itself (a reference cycle
    per call). Here the recursion is a method: nothing refers back to the generator.
    Assigned over paho's private ``_on_message_filtered`` (paho-mqtt is pinned
    exactly; a test compares the two matchers)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def iter_match(self, topic: str) -> Iterator[Any]:
        return self._match(self._root, topic.split("/"), 0, not topic.startswith("$"))

    def _match(self, node: Any, levels: list[str], i: int, normal: bool) -> Iterator[Any]:
        children = node._children
        if i == len(levels):
            if node._content is not None:
                yield node._content
        else:
            exact = children.get(levels[i])
            if exact is not None:
                yield from self._match(exact, levels, i + 1, normal)
            # A wildcard at the first level never matches a $-topic (MQTT 4.7.2).
            wild = children.get("+")
            if wild is not None and (normal or i > 0):
                yield from self._match(wild, levels, i + 1, normal)
        rest = children.get("#")
        if rest is not None and (normal or i > 0) and rest._content is not None:
            yield rest._content


def tls_context(endpoint: MqttEndpoint) -> ssl.SSLContext | None:
    """The broker's TLS context (``wcs.tls.client_context``): its certificate checked
    against the given CA (or the system's trust store), our certificate if we have one."""
    if not endpoint.tls:
        return None
    return client_context(endpoint.cafile, endpoint.certfile, endpoint.keyfile)


def _mergeable(packet: dict[str, Any]) -> bool:
    # paho acts on a QoS 0 PUBLISH (on_publish) and a DISCONNECT once they are written;
    # everything else is fire-and-forget at write time.
    kind = packet["command"] & 0xF0
    return kind != DISCONNECT and not (kind == PUBLISH and packet["qos"] == 0)


def merge_queued(out: deque[dict[str, Any]]) -> None:
    """Join the leading run of mergeable queued packets into one (in order)."""
    run = 0
    for packet in out:
        if not _mergeable(packet):
            break
        run += 1
    if run < 2:
        return
    parts = []
    for _ in range(run):
        packet = out.popleft()
        parts.append(bytes(packet["packet"][packet["pos"] :]))
    data = b"".join(parts)
    out.appendleft(
        {
            "command": 0x40,  # written as one; PUBACK is what paho treats as inert
            "mid": 0,
            "qos": 1,
            "pos": 0,
            "to_process": len(data),
            "packet": data,
            "info": None,
        }
    )


def coalesce_writes(client: PahoClient) -> None:
    """Make ``client`` write all its queued packets with one send where it can.

    Relies on paho's private ``_out_packet`` queue and ``_packet_write`` (paho-mqtt is
    pinned exactly; a test checks the effect on the wire). Only for clients driven
    from one thread (aiomqtt's event loop)."""
    original = client._packet_write
    out: deque[dict[str, Any]] = client._out_packet  # type: ignore[assignment]

    def packet_write() -> Any:
        if len(out) > 1:
            merge_queued(out)
        return original()

    client._packet_write = packet_write  # type: ignore[method-assign]


class _Confirmations:
    """Counts a batch's broker confirmations down; aiomqtt calls ``set()`` on each."""

    __slots__ = ("done", "left")

    def __init__(self, left: int, done: asyncio.Future[None]) -> None:
        self.left = left
        self.done = done

    def set(self) -> None:
        self.left -= 1
        if self.left <= 0 and not self.done.done():
            self.done.set_result(None)


def publish_all(
    client: aiomqtt.Client,
    messages: Sequence[tuple[str, bytes, int, bool]],
    *,
    timeout_s: float = 10.0,
) -> asyncio.Future[None]:
    """Hand ``(topic, payload, qos, retain)`` messages to the client now, in order;
    the future resolves once the broker has confirmed every QoS 1/2 one.

    Same effect as gathering ``client.publish`` calls, without a task, an event and a
    timer per message: one future counts the batch's confirmations (through aiomqtt's
    pending-publish map; aiomqtt is pinned exactly). It fails with
    ``aiomqtt.MqttCodeError`` if paho refuses a message (not connected: the ones
    after it are not sent) and with ``aiomqtt.MqttError`` when the confirmations do
    not come within ``timeout_s``."""
    paho = client._client
    pending = client._pending_publishes
    loop = asyncio.get_running_loop()
    waiting = _Confirmations(0, loop.create_future())
    for topic, payload, qos, retain in messages:
        info = paho.publish(topic, payload, qos, retain)
        if info.rc != MQTT_ERR_SUCCESS:
            _forget(pending, waiting)
            failed: asyncio.Future[None] = loop.create_future()
            failed.set_exception(aiomqtt.MqttCodeError(info.rc, "Could not publish message"))
            return failed
        if qos > 0 and not info.is_published():
            waiting.left += 1
            pending[info.mid] = waiting  # type: ignore[assignment]
    if waiting.left == 0:
        waiting.done.set_result(None)
        return waiting.done
    return loop.create_task(_confirmed(pending, waiting, timeout_s), name="mqtt-confirmations")


async def _confirmed(pending: dict[int, Any], waiting: _Confirmations, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await waiting.done
    except TimeoutError:
        _forget(pending, waiting)
        raise aiomqtt.MqttError("the broker did not confirm the messages in time") from None
    except BaseException:
        _forget(pending, waiting)
        raise


def _forget(pending: dict[int, Any], waiting: _Confirmations) -> None:
    """Drop the confirmations that will not come (the connection went, or we stopped)."""
    for mid in [mid for mid, value in pending.items() if value is waiting]:
        del pending[mid]


def set_paho_nodelay(client: PahoClient) -> None:
    """paho has no socket option hook: set TCP_NODELAY on its socket after connect."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextlib.contextmanager
def handle_in_callback(
    client: aiomqtt.Client, handle: Callable[[MQTTMessage], None]
) -> Iterator[None]:
    """Messages handled as paho reads them, in the event loop's thread, instead of
    through aiomqtt's queue (``client.messages`` then yields nothing, but still ends
    with an error when the connection does).

    The queue costs a task wake-up per message, and a reader that falls behind holds
    every waiting message there: with MQTT 5 each is a paho message plus its
    properties, some sixty objects, which every full garbage collection walks. Read
    in the callback, a backlog waits at the broker instead. ``handle`` must not block;
    an exception it raises escapes into paho's read loop and ends the connection."""
    paho = client._client
    previous = paho.on_message

    def on_message(_client: PahoClient, _userdata: object, message: MQTTMessage) -> None:
        handle(message)

    paho.on_message = on_message
    try:
        yield
    finally:
        paho.on_message = previous


def acknowledge_manually(client: aiomqtt.Client) -> None:
    """QoS 1 messages are acknowledged only by ``acknowledge`` (after their effect is
    durable), not when the callback returns. Call before connecting."""
    client._client.manual_ack_set(True)


def acknowledge(client: aiomqtt.Client, mid: int) -> None:
    """Send the PUBACK of a QoS 1 message received with manual acknowledgement."""
    client._client.ack(mid, 1)
