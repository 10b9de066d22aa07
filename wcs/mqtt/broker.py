"""Embedded broker for laptops and demos: amqtt in-process when nothing answers.

Production runs Mosquitto (or any MQTT 3.1.1/5 broker) with ``set_tcp_nodelay true``;
amqtt is pure asyncio and about half as fast, which is fine for a demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from wcs.settings import MqttEndpoint

log = logging.getLogger(__name__)


async def broker_answers(endpoint: MqttEndpoint, wait_s: float = 1.0) -> bool:
    try:
        async with asyncio.timeout(wait_s):
            _, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@contextlib.asynccontextmanager
async def ensure_broker(endpoint: MqttEndpoint, *, allow_embedded: bool) -> AsyncIterator[bool]:
    """Yield True when an embedded broker was started for ``endpoint``, False otherwise."""
    if await broker_answers(endpoint):
        yield False
        return
    if not allow_embedded:
        from wcs.errors import ConfigError

        raise ConfigError(
            f"no MQTT broker answers at {endpoint.host}:{endpoint.port}; start Mosquitto "
            "or set WCS_EMBEDDED_BROKER=true"
        )
    from amqtt.broker import Broker

    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"{endpoint.host}:{endpoint.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    log.info("embedded MQTT broker listening on %s:%s", endpoint.host, endpoint.port)
    try:
        yield True
    finally:
        await broker.shutdown()
