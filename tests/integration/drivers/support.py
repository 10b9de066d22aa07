"""Test-side device ends and a broker watcher for the driver integration tests.

These play the device's side of each wire just enough for a test; the full device
simulators live elsewhere and are not used here (a codec bug must not hide by being
mirrored in the test's device).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import tty
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt

from drivers.base import Driver, Resources
from drivers.options import DriverOptions
from drivers.registry import build_driver
from wcs.contract import Topics
from wcs.floor import Device
from wcs.mqtt.client import make_client
from wcs.settings import MqttEndpoint

FAST = DriverOptions(
    backoff_base_s=0.05,
    backoff_cap_s=0.5,
    shutdown_grace_s=2.0,
    scale_poll_s=0.5,
    scale_reply_timeout_s=1.0,
    scale_retry_delay_s=0.05,
    heartbeat_s=0.2,
    route_timeout_s=1.0,
    command_timeout_s=5.0,
    open_timeout_s=2.0,
)


class Pty:
    """A pseudo-terminal: the test is the device on the master, the driver opens the path.

    ``link`` is a stable symlink to the current slave, like ``/dev/serial/by-id/...``
    on a real machine, so :meth:`unplug` and :meth:`replug` can simulate pulling the
    cable and plugging it back in (the new pty gets a new ``/dev/pts/N``).
    """

    def __init__(self, directory: Path, name: str = "dev") -> None:
        self.link = directory / name
        self.master = -1
        self.slave = -1
        self.replug()

    @property
    def path(self) -> str:
        return str(self.link)

    def replug(self) -> None:
        self.unplug()
        self.master, self.slave = os.openpty()
        # Raw on both ends before the driver opens the port: no echo, no CR->LF mapping.
        tty.setraw(self.master)
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        tmp = self.link.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(self.slave))
        tmp.replace(self.link)

    def unplug(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    async def write(self, data: bytes, chunk: int = 4096) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self.master, view[:chunk])
            except BlockingIOError:
                await asyncio.sleep(0.001)  # the driver has not read yet: let it
                continue
            view = view[sent:]

    async def read(self, within: float = 5.0) -> bytes:
        """Bytes the driver wrote to the device."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            try:
                return os.read(self.master, 4096)
            except BlockingIOError:
                pass
            except OSError as exc:  # EIO: nobody holds the other end
                if exc.errno != errno.EIO:
                    raise
            if loop.time() > deadline:
                raise TimeoutError("the driver wrote nothing")
            await asyncio.sleep(0.002)

    def close(self) -> None:
        self.unplug()
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()


class Watch:
    """Subscribes to a test's whole site and keeps every message it sees."""

    def __init__(self, endpoint: MqttEndpoint, site: str, *, persistent: bool = False) -> None:
        self.endpoint = endpoint
        self.topics = Topics(site)
        self.persistent = persistent
        self.identifier = f"watch-{uuid.uuid4().hex[:10]}"
        self.received: dict[str, list[bytes]] = {}
        self._parsed: dict[str, list[dict[str, Any]]] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None
        self.subscribed = asyncio.Event()

    async def __aenter__(self) -> Watch:
        self._task = asyncio.create_task(self._run(), name="test-watch")
        await asyncio.wait_for(self.subscribed.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            client = make_client(
                self.endpoint, identifier=self.identifier, clean_session=not self.persistent
            )
            try:
                async with client:
                    self._client = client
                    await client.subscribe(f"{self.topics.root}/#", qos=1)
                    self.subscribed.set()
                    self._changed.set()
                    async for message in client.messages:
                        payload = message.payload
                        raw = payload if isinstance(payload, bytes) else str(payload).encode()
                        self.received.setdefault(message.topic.value, []).append(raw)
                        self._changed.set()
            except aiomqtt.MqttError:
                self._client = None
                await asyncio.sleep(0.05)

    def on(self, suffix: str) -> list[dict[str, Any]]:
        """JSON payloads received on ``<root>/<suffix>``, in arrival order."""
        topic = f"{self.topics.root}/{suffix}"
        raw = self.received.get(topic, [])
        parsed = self._parsed.setdefault(topic, [])
        parsed.extend(json.loads(r) for r in raw[len(parsed) :])
        return list(parsed)

    def count(self, suffix: str) -> int:
        return len(self.received.get(f"{self.topics.root}/{suffix}", []))

    async def wait(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Until ``predicate()`` holds; TimeoutError after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            self._changed.clear()
            # Woken by the next message, and at least every 50 ms whatever happens.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    async def expect(
        self, suffix: str, count: int = 1, within: float = 5.0
    ) -> list[dict[str, Any]]:
        try:
            await self.wait(lambda: self.count(suffix) >= count, within)
        except TimeoutError:
            raise AssertionError(
                f"expected {count} message(s) on {suffix}, got {len(self.on(suffix))}: "
                f"{self.on(suffix)[-3:]}"
            ) from None
        return self.on(suffix)

    async def status(
        self, device_id: str, state: str, within: float = 5.0, detail: str | None = None
    ) -> dict[str, Any]:
        """Wait until the latest status of ``device_id`` is ``state`` (and has ``detail``)."""

        def latest() -> dict[str, Any] | None:
            found = self.on(f"dev/{device_id}/status")
            return found[-1] if found else None

        def matches() -> bool:
            last = latest()
            return (
                last is not None
                and last["state"] == state
                and (detail is None or detail in (last["detail"] or ""))
            )

        try:
            await self.wait(matches, within)
        except TimeoutError:
            raise AssertionError(
                f"{device_id}: wanted status {state} {detail or ''}, last was {latest()}"
            ) from None
        last = latest()
        assert last is not None
        return last

    async def command(self, device_id: str, name: str, **fields: Any) -> str:
        cmd_id = fields.pop("cmd_id", None) or f"c-{uuid.uuid4().hex[:12]}"
        body = {"v": 1, "ts": "2026-11-25T08:15:02.120Z", "cmd_id": cmd_id, **fields}
        await self.publish(f"dev/{device_id}/cmd/{name}", json.dumps(body).encode())
        return cmd_id

    async def publish(self, suffix: str, payload: bytes) -> None:
        # Publish on the watching connection: a connection per publish churns sockets,
        # and aiomqtt registers socket writers late enough to race a quick close.
        if self._client is None:
            await self.wait(lambda: self._client is not None, 10)
        assert self._client is not None
        await self._client.publish(f"{self.topics.root}/{suffix}", payload, qos=1)

    async def ack(self, device_id: str, cmd_id: str, within: float = 5.0) -> dict[str, Any]:
        def found() -> list[dict[str, Any]]:
            return [a for a in self.on(f"dev/{device_id}/ack") if a["cmd_id"] == cmd_id]

        try:
            await self.wait(lambda: bool(found()), within)
        except TimeoutError:
            raise AssertionError(f"no ack for {cmd_id} from {device_id}") from None
        return found()[0]


def make_driver(
    device: Device,
    endpoint: MqttEndpoint,
    site: str,
    options: DriverOptions = FAST,
    resources: Resources | None = None,
) -> Driver:
    return build_driver(
        device, endpoint=endpoint, topics=Topics(site), options=options, resources=resources
    )


@contextlib.asynccontextmanager
async def running(*drivers: Driver) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(d.run(), name=f"test-driver-{d.device_id}") for d in drivers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
