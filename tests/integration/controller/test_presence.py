"""The controller announces itself: a retained ``controller/{instance}/status`` says
``online`` once it runs, the broker says ``offline`` (its Last Will) when the process
dies without a goodbye, and a clean stop says ``offline`` itself. Real processes,
the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from wcs.children import spawn
from wcs.contract.topics import Topics
from wcs.mqtt.client import make_client
from wcs.persistence.migrate import upgrade
from wcs.settings import MqttEndpoint

ROOT = Path(__file__).resolve().parents[3]
INSTANCE = "c-presence"


def _start(db: str, mqtt: MqttEndpoint, site: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCS_")}
    env.update(
        WCS_DATABASE_URL=db,
        WCS_MQTT_URL=f"mqtt://{mqtt.host}:{mqtt.port}",
        WCS_SITE=site,
        WCS_EMBEDDED_BROKER="false",
        WCS_CONTROLLER__INSTANCE=INSTANCE,
        WCS_CONTROLLER__AUTO_RELEASE="false",
        PYTHONPATH=str(ROOT),
    )
    return spawn(
        [sys.executable, "-m", "cli", "controller", "--floor", str(ROOT / "floors/sample.yaml")],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _presence(messages: AsyncIterator[aiomqtt.Message], limit_s: float = 30) -> Any:
    async with asyncio.timeout(limit_s):
        async for message in messages:
            if message.payload:
                return json.loads(bytes(message.payload))  # type: ignore[arg-type]
    raise AssertionError("no presence")


@pytest.mark.timeout(120)
async def test_online_will_and_clean_stop(
    tmp_path: Path, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/wcs.db"
    await asyncio.to_thread(upgrade, db)
    topic = Topics(site).controller_status(INSTANCE)
    async with make_client(mqtt_endpoint) as client:
        await client.subscribe(topic, qos=1)
        messages = client.messages
        process = _start(db, mqtt_endpoint, site)
        try:
            first = await _presence(messages)
            assert (first["state"], first["instance"]) == ("online", INSTANCE)
            process.kill()  # no goodbye: the broker speaks for it
            process.wait(10)
            will = await _presence(messages)
            assert will["state"] == "offline"

            process = _start(db, mqtt_endpoint, site)
            assert (await _presence(messages))["state"] == "online"
            process.send_signal(signal.SIGTERM)  # a clean stop says it itself
            said = await _presence(messages)
            assert said["state"] == "offline"
            assert process.wait(20) == 0 or process.returncode is not None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            await client.publish(topic, b"", qos=1, retain=True)
