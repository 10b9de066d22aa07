"""What every driver shares: the device reconnect loop, command execution, acks.

A driver is three named tasks in one TaskGroup:

- ``<id>/mqtt``: the :class:`~drivers.bridge.MqttBridge` (broker side);
- ``<id>/device``: connect to the device, serve it until the link fails, report
  ``fault`` with the reason, back off, reconnect - forever;
- ``<id>/commands``: run commands one at a time, ack each exactly once.

Errors are logged the way a supervisor wants them (:class:`wcs.retry.Outage`): ERROR on
the first failure, quiet while it lasts, INFO on recovery; reconnects follow the one
backoff policy of the system (:mod:`wcs.retry`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import ClassVar

from drivers.bridge import MqttBridge
from drivers.frame import BadFrame
from drivers.modbus_link import ModbusHubs
from drivers.options import DriverOptions
from drivers.serial_link import PortClaims
from drivers.stats import DriverCounters
from wcs.contract import Command
from wcs.contract.payloads import DeviceKind
from wcs.errors import DeviceError, DeviceUnavailable
from wcs.logs import get_logger
from wcs.retry import Reconnect
from wcs.tasks import run_all


@dataclass
class Resources:
    """Physical links shared between the drivers of one process."""

    ports: PortClaims = field(default_factory=PortClaims)
    modbus: ModbusHubs = field(default_factory=ModbusHubs)


class Driver(abc.ABC):
    kind: ClassVar[DeviceKind]
    accepts: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        device_id: str,
        bridge: MqttBridge,
        options: DriverOptions,
    ) -> None:
        self.device_id = device_id
        self.bridge = bridge
        self.options = options
        self.counters: DriverCounters = bridge.counters
        self.log = get_logger(f"drivers.{self.kind}").bind(device=device_id)
        self.online = asyncio.Event()
        self.last_fault: str | None = None

    @property
    def who(self) -> str:
        return f"{self.kind} {self.device_id}"

    # --- to implement ------------------------------------------------------------------

    @abc.abstractmethod
    def connect(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Open the device link; raise DeviceError when it cannot be reached."""

    @abc.abstractmethod
    async def serve(self) -> None:
        """Talk to the connected device until the link fails (raise DeviceError)."""

    async def execute(self, name: str, command: Command) -> str | None:
        """Run one command; return None when done as asked, else why not."""
        return f"{self.who} does not take '{name}' commands"

    # --- helpers for subclasses --------------------------------------------------------

    def bad_frame(self, source: str, exc: BadFrame) -> None:
        self.counters.bad_frames += 1
        if self.counters.bad_frames == 1 or self.counters.bad_frames % 1000 == 0:
            self.log.warning(
                "malformed frame to dlq",
                port=source,
                reason=exc.reason,
                total=self.counters.bad_frames,
            )
        self.bridge.dead_letter(source, exc.raw, f"{self.who}: {exc.reason}")

    def fault(self, detail: str) -> None:
        self.last_fault = detail
        self.bridge.set_status("fault", detail)

    def healthy(self) -> None:
        self.last_fault = None
        self.bridge.set_status("online")

    def require_online(self) -> None:
        if not self.online.is_set():
            reason = self.last_fault or "not connected yet"
            raise DeviceUnavailable(f"{self.who} is not connected: {reason}")

    # --- the runtime -------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled; cancelling publishes ``offline`` (see MqttBridge.run)."""
        try:
            await run_all(
                {
                    f"{self.device_id}/mqtt": self.bridge.run(),
                    f"{self.device_id}/device": self._device_loop(),
                    f"{self.device_id}/commands": self._command_loop(),
                }
            )
        finally:
            self.log.info("driver stopped", **self.counters.snapshot())

    async def _device_loop(self) -> None:
        link = Reconnect(
            "device link",  # the log is bound to the device, and its errors name it
            self.log,
            self.options.backoff,
            level=logging.ERROR,
            expected=(DeviceError,),
            on_failure=self._link_failed,
        )

        async def session() -> None:
            try:
                async with self.connect():
                    self.counters.device_connects += 1
                    link.up()
                    self.online.set()
                    await self.serve()
            finally:
                self.online.clear()

        await link.run(session)

    def _link_failed(self, exc: BaseException) -> None:
        # A driver bug must not take the floor down: reported as a fault, retried.
        detail = exc.message if isinstance(exc, DeviceError) else f"{self.who}: driver error: {exc}"
        self.counters.device_failures += 1
        self.fault(detail)

    async def _command_loop(self) -> None:
        while True:
            name, command = await self.bridge.commands.get()
            try:
                error = await asyncio.wait_for(
                    self.execute(name, command), self.options.command_timeout_s
                )
            except DeviceError as exc:
                error = exc.message
            except TimeoutError:
                limit = self.options.command_timeout_s
                error = f"{self.who}: '{name}' did not finish within {limit:g} s"
            except Exception as exc:
                self.log.exception("command failed", command=name, cmd_id=command.cmd_id)
                error = f"{self.who}: driver error running '{name}': {exc}"
            if error is not None:
                self.log.warning(
                    "command not done", command=name, cmd_id=command.cmd_id, error=error
                )
            self.bridge.ack(command.cmd_id, error is None, error)
