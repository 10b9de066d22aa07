"""A test bench for the controller: the floor as drivers would show it on the broker.

Events are published exactly as drivers publish them; commands are collected from
the broker exactly as drivers would receive them. Real Mosquitto, real database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt

from wcs.contract.payloads import EVENT_MODELS, Ack, DeviceStatus
from wcs.contract.topics import Topics
from wcs.floor import Floor
from wcs.mqtt.client import make_client
from wcs.settings import MqttEndpoint, Settings

FLOOR = {
    "devices": [
        {
            "id": "ptl-1",
            "kind": "ptl",
            "zone": "pick",
            "link": {"type": "modbus", "port": 1502},
            "slots": {1: "A-01-01-1", 2: "A-01-02-1", 3: "A-02-05-1", 4: "A-03-02-1"},
        },
        {"id": "scan-pk", "kind": "scanner", "zone": "pick", "link": {"url": "loop://"}},
        {"id": "scan-qc", "kind": "scanner", "zone": "qc", "link": {"url": "loop://"}},
        {"id": "scan-p1", "kind": "scanner", "zone": "pack", "link": {"url": "loop://"}},
        {"id": "scan-p2", "kind": "scanner", "zone": "pack", "link": {"url": "loop://"}},
        {"id": "scale-p1", "kind": "scale", "zone": "pack", "link": {"url": "loop://"}},
        {"id": "scale-p2", "kind": "scale", "zone": "pack", "link": {"url": "loop://"}},
        {"id": "prn-p1", "kind": "printer", "zone": "pack", "link": {"type": "tcp", "port": 9100}},
        {"id": "prn-p2", "kind": "printer", "zone": "pack", "link": {"type": "tcp", "port": 9101}},
        {
            "id": "div-1",
            "kind": "diverter",
            "zone": "qc",
            "link": {"type": "modbus", "port": 1503},
            "point": "D1",
            "lanes": {1: "qc", 2: "pack:P1", 3: "pack:P2", 4: "outbound", 5: "exception"},
            "default_lane": 5,
        },
    ],
    "stations": [
        {"id": "PK1", "kind": "pick", "scanner": "scan-pk", "panels": ["ptl-1"]},
        {"id": "QC1", "kind": "qc", "scanner": "scan-qc"},
        {
            "id": "P1",
            "kind": "pack",
            "scanner": "scan-p1",
            "scale": "scale-p1",
            "printer": "prn-p1",
            "backup_printer": "prn-p2",
        },
        {
            "id": "P2",
            "kind": "pack",
            "scanner": "scan-p2",
            "scale": "scale-p2",
            "printer": "prn-p2",
        },
    ],
}


def floor_for(site: str) -> Floor:
    return Floor.model_validate({"site": site, **FLOOR})


def settings_for(db_url: str, endpoint: MqttEndpoint, site: str, **changes: Any) -> Settings:
    """A controller's settings on the test's database and broker (never an embedded one)."""
    return Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{endpoint.host}:{endpoint.port}",
        site=site,
        embedded_broker=False,
        **changes,
    )


class FakeFloor:
    """Publishes device events and collects device commands on the real broker."""

    def __init__(self, client: aiomqtt.Client, topics: Topics) -> None:
        self.client = client
        self.topics = topics
        self.commands: list[tuple[str, str, dict[str, Any]]] = []
        self.dlq: list[dict[str, Any]] = []
        self._seq = itertools.count(1)
        self._changed = asyncio.Event()

    async def event(self, device: str, kind: str, **fields: Any) -> str:
        msg_id = fields.pop("msg_id", None) or f"{device}-{next(self._seq)}"
        payload = EVENT_MODELS[kind](msg_id=msg_id, **fields)
        await self.client.publish(self.topics.dev_evt(device, kind), payload.to_json(), qos=1)
        return msg_id

    async def raw(self, topic: str, payload: bytes) -> None:
        await self.client.publish(topic, payload, qos=1)

    async def status(
        self, device: str, kind: str, zone: str, state: str, detail: str | None = None
    ) -> None:
        payload = DeviceStatus(state=state, kind=kind, zone=zone, detail=detail)  # type: ignore[arg-type]
        await self.client.publish(
            self.topics.dev_status(device), payload.to_json(), qos=1, retain=True
        )

    async def ack(
        self, device: str, cmd_id: str, ok: bool = True, error: str | None = None
    ) -> None:
        payload = Ack(cmd_id=cmd_id, ok=ok, error=error)
        await self.client.publish(self.topics.dev_ack(device), payload.to_json(), qos=1)

    async def wait_command(
        self,
        device: str,
        name: str,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
        *,
        timeout: float = 10.0,
        start: int = 0,
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for dev, cmd, body in self.commands[start:]:
                    if dev == device and cmd == name and where(body):
                        return body
                self._changed.clear()
                await self._changed.wait()

    async def wait_dlq(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.dlq) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.dlq

    async def _collect(self) -> None:
        async for message in self.client.messages:
            info = self.topics.parse(str(message.topic))
            body = json.loads(message.payload)  # type: ignore[arg-type]
            if info.kind == "cmd":
                self.commands.append((info.device_id or "", info.name or "", body))
            elif info.kind == "dlq":
                self.dlq.append(body)
            self._changed.set()


@asynccontextmanager
async def fake_floor(endpoint: MqttEndpoint, topics: Topics) -> AsyncIterator[FakeFloor]:
    async with make_client(endpoint) as client:
        await client.subscribe(f"{topics.root}/dev/+/cmd/+", qos=1)
        await client.subscribe(topics.dlq(), qos=1)
        floor = FakeFloor(client, topics)
        task = asyncio.create_task(floor._collect(), name="fake-floor-collect")
        try:
            yield floor
        finally:
            task.cancel()
            with __import__("contextlib").suppress(asyncio.CancelledError):
                await task
