"""Packets queued in one event loop turn leave in one write, in order, all of them."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from paho.mqtt.client import DISCONNECT, PUBACK, PUBLISH

from wcs.mqtt.client import make_client, merge_queued
from wcs.settings import MqttEndpoint


def packet(command: int, data: bytes, *, qos: int = 1, pos: int = 0) -> dict[str, Any]:
    return {
        "command": command,
        "mid": 1,
        "qos": qos,
        "pos": pos,
        "to_process": len(data) - pos,
        "packet": data,
        "info": None,
    }


def test_merge_joins_the_leading_run_and_keeps_what_paho_acts_on() -> None:
    out: deque[dict[str, Any]] = deque(
        [
            packet(PUBACK, b"ack1"),
            packet(PUBLISH, b"xxpub1", pos=2),  # partly written already
            packet(PUBLISH | 0x02, b"pub2"),
            packet(PUBLISH, b"qos0", qos=0),  # its on_publish fires on write
            packet(PUBLISH, b"pub3"),
            packet(DISCONNECT, b"bye"),
        ]
    )
    merge_queued(out)
    assert [p["packet"] for p in out] == [b"ack1pub1pub2", b"qos0", b"pub3", b"bye"]
    first = out[0]
    assert first["pos"] == 0 and first["to_process"] == len(b"ack1pub1pub2")


def test_merge_leaves_a_single_packet_alone() -> None:
    out: deque[dict[str, Any]] = deque([packet(PUBLISH, b"only"), packet(DISCONNECT, b"bye")])
    merge_queued(out)
    assert [p["packet"] for p in out] == [b"only", b"bye"]


async def test_a_burst_of_publishes_is_one_write_and_arrives_whole(
    mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    topic = f"{site}/coalesce"
    # paho holds QoS 1 publishes beyond its in-flight window (20 by default) and
    # releases one per PUBACK as they come back, which splits the burst on the broker's
    # timing; without the window the whole burst is queued in one turn.
    unbounded = make_client(mqtt_endpoint, max_inflight=0)
    async with make_client(mqtt_endpoint) as receiver, unbounded as sender:
        await receiver.subscribe(topic, qos=1)
        paho = sender._client
        sends: list[int] = []
        real_send = paho._sock_send

        def counting_send(buf: bytes | bytearray) -> int:
            sends.append(len(buf))
            return real_send(buf)

        paho._sock_send = counting_send  # type: ignore[method-assign]
        await asyncio.gather(*(sender.publish(topic, f"{n}".encode(), qos=1) for n in range(50)))
        got: list[int] = []
        async with asyncio.timeout(10):
            async for message in receiver.messages:
                assert isinstance(message.payload, bytes)
                got.append(int(message.payload))
                if len(got) == 50:
                    break
    assert got == list(range(50))
    # Without coalescing paho makes one send per packet: 50 here. With it: the burst,
    # then the DISCONNECT on leaving the context.
    assert len(sends) == 2, sends
