"""The private Mosquitto helper: start, stop, restart on the same port, persistence."""

from __future__ import annotations

import socket

import aiomqtt
import pytest

from wcs.errors import ConfigError
from wcs.mqtt.client import make_client
from wcs.mqtt.mosquitto import PrivateMosquitto, find_mosquitto


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def round_trip(broker: PrivateMosquitto, topic: str, retain: bool = False) -> bytes:
    async with make_client(broker.endpoint) as client:
        await client.subscribe(topic, qos=1)
        await client.publish(topic, b"hello", qos=1, retain=retain)
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            return message.payload
    raise AssertionError("no message")


async def retained(broker: PrivateMosquitto, topic: str) -> bytes | None:
    async with make_client(broker.endpoint) as client:
        await client.subscribe(topic, qos=1)
        try:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return message.payload
        except aiomqtt.MqttError:
            return None
    return None


async def test_start_stop_restart_same_port() -> None:
    with PrivateMosquitto() as broker:
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert broker.endpoint.port == broker.port
        assert await round_trip(broker, "t/a") == b"hello"
        port = broker.port
        broker.stop()
        assert not broker.running and not answers(port)
        with pytest.raises(aiomqtt.MqttError):
            async with make_client(broker.endpoint):
                pass
        broker.start()
        assert broker.running and broker.port == port
        assert await round_trip(broker, "t/b") == b"hello"
        broker.restart()
        assert await round_trip(broker, "t/c") == b"hello"
    assert not answers(port)


async def test_persistence_keeps_retained_messages_across_restart() -> None:
    import asyncio

    with PrivateMosquitto(persistence=True) as broker:
        await round_trip(broker, "t/keep", retain=True)
        broker.restart()
        async with asyncio.timeout(5):
            assert await retained(broker, "t/keep") == b"hello"


async def test_without_persistence_a_restart_forgets() -> None:
    import asyncio

    with PrivateMosquitto() as broker:
        await round_trip(broker, "t/gone", retain=True)
        broker.restart()
        async with make_client(broker.endpoint) as client:
            await client.subscribe("t/gone", qos=1)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await anext(aiter(client.messages))


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("wcs.mqtt.mosquitto.DEFAULT_BINARY", "/nonexistent/mosquitto")
    with pytest.raises(ConfigError, match="apt-get install mosquitto"):
        find_mosquitto()
