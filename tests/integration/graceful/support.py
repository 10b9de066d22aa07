"""``wcs controller`` as a real child process, and a steady stream of device events."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.controller.support import FLOOR
from wcs.children import spawn
from wcs.contract.payloads import WeightEvent
from wcs.contract.topics import Topics
from wcs.mqtt.client import make_client
from wcs.persistence.tables import processed_messages
from wcs.settings import MqttEndpoint

READY_LINE = "running for site"


def write_floor(directory: Path, site: str) -> Path:
    path = directory / "floor.yaml"
    path.write_text(yaml.safe_dump({"site": site, **FLOOR}), encoding="utf-8")
    return path


class ControllerProcess:
    """One ``wcs controller`` child; its log goes to a file so a busy run cannot block it."""

    def __init__(
        self, floor: Path, db_url: str, mqtt_url: str, site: str, log: Path, instance: str
    ) -> None:
        self.log = log
        self.env = {
            **os.environ,
            "WCS_DATABASE_URL": db_url,
            "WCS_MQTT_URL": mqtt_url,
            "WCS_SITE": site,
            "WCS_EMBEDDED_BROKER": "false",
            "WCS_CONTROLLER__INSTANCE": instance,
            "WCS_CONTROLLER__WAVE_INTERVAL_S": "3600",
            "WCS_LOG_LEVEL": "INFO",
        }
        self.args = [sys.executable, "-m", "cli", "controller", "--floor", str(floor)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, within: float = 20.0) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = spawn(
                self.args, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            if READY_LINE in text:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"controller did not start:\n{self.tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def terminate(self, within: float) -> tuple[int, float]:
        """SIGTERM; the exit code and how long the process took to exit."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(within)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"no exit within {within} s of SIGTERM:\n{self.tail()}") from None
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class EventStream:
    """Publishes weight events at a steady rate; remembers which the broker accepted."""

    def __init__(
        self, endpoint: MqttEndpoint, site: str, rate_per_s: float, garbage_every: int = 0
    ) -> None:
        self.endpoint = endpoint
        self.garbage_every = garbage_every
        self.garbage = 0
        self.topics = Topics(site)
        self.period = 1.0 / rate_per_s
        self.accepted: list[str] = []  # msg_ids the broker acknowledged (PUBACK)
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _run(self) -> None:
        devices = itertools.cycle(("scale-p1", "scale-p2"))
        async with make_client(self.endpoint) as client:
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            for n in itertools.count():
                if self._stop.is_set():
                    return
                device = next(devices)
                if self.garbage_every and n % self.garbage_every == 0:
                    # Something for the dead-letter path as well.
                    junk = b"\xff" + n.to_bytes(8, "big") * (1 + n % 50)
                    await client.publish(self.topics.dev_evt(device, "scan"), junk, qos=1)
                    self.garbage += 1
                msg_id = f"soak-{n}"
                event = WeightEvent(msg_id=msg_id, grams=float(n % 5000), stable=n % 2 == 0)
                await client.publish(self.topics.dev_evt(device, "weight"), event.to_json(), qos=1)
                self.accepted.append(f"{device}/{msg_id}")
                next_at += self.period
                await asyncio.sleep(max(0.0, next_at - loop.time()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="test-event-stream")

    async def stop(self) -> None:
        """Stop after the publish under way, so ``accepted`` is exactly what was sent."""
        if self._task is not None:
            self._stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None


async def inbox_keys(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.scalars(select(processed_messages.c.msg_id))).all())


async def inbox_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(processed_messages)) or 0)
