"""The controller announces itself, as drivers do for devices: a retained
``controller/{instance}/status`` with ``online`` once connected, ``offline`` as the
MQTT Last Will (a crash or a lost network), and ``offline`` said on a clean stop
(the broker does not send the Will on a clean disconnect)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

import aiomqtt

from wcs.contract.payloads import ControllerStatus
from wcs.contract.topics import Topics

log = logging.getLogger(__name__)

ANNOUNCE_TIMEOUT_S = 2.0


def will(topics: Topics, instance: str) -> aiomqtt.Will:
    """The Last Will the broker publishes when this controller's connection dies."""
    return aiomqtt.Will(
        topics.controller_status(instance),
        ControllerStatus(state="offline", instance=instance).to_json(),
        qos=1,
        retain=True,
    )


async def announce(
    client: aiomqtt.Client, topics: Topics, instance: str, state: Literal["online", "offline"]
) -> None:
    """Publish the retained presence; a broker gone at that moment is not an error
    (online is said again on reconnect, offline by the Will)."""
    payload = ControllerStatus(state=state, instance=instance).to_json()
    with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
        async with asyncio.timeout(ANNOUNCE_TIMEOUT_S):
            await client.publish(topics.controller_status(instance), payload, qos=1, retain=True)
            return
    log.info("could not announce controller %s %s; the broker is away", instance, state)
