"""MT-SICS scale driver: request/reply, or a continuous ``SIR`` stream.

Request mode (the floor file's ``mode: request``): the scale speaks only when asked.
``cmd/weigh`` sends ``S`` until the scale reports a stable weight, within the floor
file's ``stable_within_s`` (``S I`` - no stable weight yet - and ``S D`` are asked
again); with ``dynamic`` it polls ``SI`` instead and publishes each moving reading as
``stable: false`` on the way. ``cmd/tare`` sends ``T`` (``TI`` when ``immediate``,
``TA <value> <unit>`` with ``preset_g``), ``cmd/zero`` ``Z`` (``ZI``), ``cmd/reset``
``@``. Between commands an ``SI`` probe every few seconds tells a silent scale
(``fault``: does not answer) or an overloaded one from a healthy one.

Continuous mode (``mode: continuous``): the scale streams with ``SIR``; each weight
it settles on (see :mod:`drivers.scale.settle`) is published, moving readings too
when the floor file asks (``dynamic_events``). A command interrupts the stream - any
command ends ``SIR`` on the scale - and the stream is asked for again after it. A
scale that stops streaming (a power cut ends ``SIR``) is a ``fault`` and is asked
again until it streams.

Any reply that fits the MT-SICS grammar proves the scale alive: an unexpected one
refuses the command it answered with a plain reason and leaves the scale online;
only bytes that are not MT-SICS at all go to ``dlq``.
"""

from __future__ import annotations

import asyncio
import time

from drivers.bridge import MqttBridge
from drivers.frame import BadFrame, LineFramer, Overlong
from drivers.options import DriverOptions
from drivers.scale import mtsics
from drivers.scale.base import SerialScale
from drivers.scale.settle import SettleFilter
from wcs.contract import Command, ResetCommand, TareCommand, WeighCommand, ZeroCommand
from wcs.errors import DeviceUnavailable
from wcs.floor import ScaleDevice
from wcs.tasks import run_all

# At most this many moving readings a second reach the broker from a stream.
DYNAMIC_PER_S = 5.0


class MtSicsScaleDriver(SerialScale):
    accepts = frozenset({"tare", "zero", "weigh", "reset"})

    def __init__(self, device: ScaleDevice, bridge: MqttBridge, options: DriverOptions) -> None:
        super().__init__(device, bridge, options)
        self._lock = asyncio.Lock()
        self._pending: tuple[str, asyncio.Future[mtsics.Reply]] | None = None
        self.stray_replies = 0
        self.continuous = device.mode == "continuous"
        self.filter = SettleFilter(device.settle_readings)
        self._streaming = False
        self._last_frame = 0.0
        self._last_dynamic = 0.0
        self._dynamic_wanted = 0  # weigh commands asking for moving readings now
        self._settled: asyncio.Future[float] | None = None

    # --- the line ------------------------------------------------------------------

    async def serve(self) -> None:
        self._last_frame = time.monotonic()
        second = (
            {f"{self.device_id}/stream": self._stream_loop()}
            if self.continuous
            else {f"{self.device_id}/probe": self._probe_loop()}
        )
        try:
            await run_all({f"{self.device_id}/read": self._read_loop(), **second})
        finally:
            self._streaming = False

    async def _read_loop(self) -> None:
        link = self.link
        framer = LineFramer("auto")
        while True:
            data = await link.read()
            for frame in framer.feed(data):
                self._on_frame(frame, link.name)

    def _on_frame(self, frame: bytes | Overlong, source: str) -> None:
        if isinstance(frame, Overlong):
            self.bad_frame(source, BadFrame(frame.reason, frame.raw))
            return
        try:
            reply = mtsics.decode_reply(frame)
        except BadFrame as exc:
            self.bad_frame(source, exc)
            return
        self.counters.frames += 1
        self._last_frame = time.monotonic()
        pending = self._pending
        if pending is not None and not pending[1].done() and mtsics.answers(pending[0], reply):
            pending[1].set_result(reply)
            return
        if self._streaming and mtsics.reply_token(reply) in mtsics.WEIGHT_TOKENS:
            self._on_stream(reply)
            return
        # A reply that came after its request timed out: nobody waits for it any more.
        self.stray_replies += 1
        self.log.debug("unexpected MT-SICS reply", reply=frame.decode("ascii", "replace"))

    async def request(
        self, command: str, *args: str, timeout_s: float | None = None, quiet: bool = False
    ) -> mtsics.Reply:
        """Send one command and wait for its reply; one at a time per scale.

        No answer in time is a ``fault`` (the scale does not answer) unless ``quiet``:
        then the caller decides what the silence means."""
        timeout_s = timeout_s or self.options.scale_reply_timeout_s
        async with self._lock:
            future: asyncio.Future[mtsics.Reply] = asyncio.get_running_loop().create_future()
            self._pending = (command, future)
            try:
                await self.link.write(mtsics.encode_command(command, *args))
                return await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                if quiet:
                    raise
                detail = (
                    f"{self.who} does not answer on {self.device.link.url} "
                    f"('{command}' unanswered after {timeout_s:g} s); check cable and power"
                )
                self.fault(detail)
                raise DeviceUnavailable(detail) from None
            finally:
                self._pending = None

    def _status_from(self, reply: mtsics.Reply) -> None:
        """What a reply says about the scale's health (any well-formed reply: alive)."""
        # Only a weight reply's + and - say the pan is out of range: Z + or T + refuse
        # that one command (outside the zero-setting range, tare over capacity).
        weighing = mtsics.reply_token(reply) in mtsics.WEIGHT_TOKENS
        match reply:
            case mtsics.Status(status="+") if weighing:
                self.fault(f"{self.who}: overload - remove weight from the pan")
            case mtsics.Status(status="-") if weighing:
                self.fault(f"{self.who}: underload - check the pan is in place")
            case mtsics.Weight(grams=None, unit=unit):
                self.fault(
                    f"{self.who} reports weights in '{unit}', which has no conversion to "
                    "grams; set the scale's host unit to g or kg"
                )
            case _:
                self.healthy()

    # --- request mode ----------------------------------------------------------------

    async def _probe_loop(self) -> None:
        interval = self.options.scale_poll_s
        while True:
            try:
                reply = await self.request(
                    "SI", timeout_s=min(interval, self.options.scale_reply_timeout_s)
                )
            except DeviceUnavailable:
                pass
            else:
                self._status_from(reply)
            await asyncio.sleep(interval)

    # --- continuous mode ------------------------------------------------------------

    async def _stream_loop(self) -> None:
        """Keep the scale streaming: start SIR, and again whenever the stream stops."""
        silence = max(2.0, self.options.scale_poll_s)
        while True:
            if not self._streaming or time.monotonic() - self._last_frame > silence:
                if self._streaming:
                    self._streaming = False
                    self.fault(
                        f"{self.who} stopped streaming on {self.device.link.url}; "
                        "check cable and power (asking it to stream again)"
                    )
                await self._start_stream()
            await asyncio.sleep(silence / 4)

    async def _start_stream(self) -> None:
        try:
            reply = await self.request("SIR")
        except DeviceUnavailable:
            return
        if isinstance(reply, mtsics.Weight) or (
            isinstance(reply, mtsics.Status) and reply.command in mtsics.WEIGHT_TOKENS
        ):
            self._streaming = True
            self._last_frame = time.monotonic()
            self._on_stream(reply)
            return
        self.fault(
            f"{self.who} refuses continuous output: {self._reply_text(reply)}; "
            "set the scale to MT-SICS level 0 or the floor file's mode to request"
        )

    def _on_stream(self, reply: mtsics.Reply) -> None:
        self._status_from(reply)
        if not isinstance(reply, mtsics.Weight) or reply.grams is None:
            return
        grams = reply.grams
        publish = self.filter.feed(grams, reply.stable)
        waiter = self._settled
        if waiter is not None and not waiter.done() and self.filter.settled is not None:
            self.filter.published(grams)
            waiter.set_result(grams)
            publish = grams
        if publish is not None:
            self.publish_weight(publish, True)
        elif not reply.stable and (self.device.dynamic_events or self._dynamic_wanted):
            now = time.monotonic()
            if now - self._last_dynamic >= 1 / DYNAMIC_PER_S:
                self._last_dynamic = now
                self.publish_weight(grams, False)

    async def _after_command(self) -> None:
        """Any command ends SIR on the scale: ask for the stream again."""
        if self.continuous:
            self._streaming = False
            await self._start_stream()

    # --- commands ----------------------------------------------------------------------

    async def execute(self, name: str, command: Command) -> str | None:
        self.require_online()
        try:
            if isinstance(command, WeighCommand):
                return await self._weigh(command.dynamic)
            if isinstance(command, TareCommand):
                return await self._tare(command)
            if isinstance(command, ZeroCommand):
                return await self._zero(command.immediate)
            if isinstance(command, ResetCommand):
                reply = await self.request("@")
                self._status_from(reply)
                if isinstance(reply, mtsics.Identification):
                    return None
                return self._refusal("reset", reply)
        finally:
            if name in self.accepts and not isinstance(command, WeighCommand):
                await self._after_command()
        return await super().execute(name, command)

    async def _until_settled(
        self, command: str, *args: str, dynamic: bool = False
    ) -> tuple[mtsics.Reply | None, mtsics.Reply | None]:
        """Ask ``command`` until it is done at a stable weight or the bound passes.

        Returns ``(done, last)``: the reply that settled it (None when the bound passed
        first) and the last reply seen. ``S I``/``T I``/``Z I`` (not now, not stable)
        and moving weights are asked again; anything else ends the wait."""
        bound = self.device.stable_within_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + bound
        last: mtsics.Reply | None = None
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None, last
            try:
                # The scale waits for stability itself before it answers S, T and Z:
                # its silence until the bound is no fault.
                reply = await self.request(
                    command,
                    *args,
                    timeout_s=max(min(remaining, bound), 0.05),
                    quiet=True,
                )
            except TimeoutError:
                return None, last
            self._status_from(reply)
            last = reply
            if isinstance(reply, mtsics.Weight) and reply.grams is not None:
                if reply.stable:
                    return reply, last
                if dynamic:
                    self.publish_weight(reply.grams, False)
            elif isinstance(reply, mtsics.Tare | mtsics.Identification) or (
                isinstance(reply, mtsics.Status) and reply.done
            ):
                return reply, last
            elif not (isinstance(reply, mtsics.Status) and reply.status == "I"):
                return None, last  # overload, error, unknown: asking again will not help
            pause = self.options.scale_retry_delay_s
            await asyncio.sleep(min(pause, max(deadline - loop.time(), 0)))

    async def _weigh(self, dynamic: bool) -> str | None:
        if self.continuous:
            return await self._weigh_from_stream(dynamic)
        done, last = await self._until_settled("SI" if dynamic else "S", dynamic=dynamic)
        if isinstance(done, mtsics.Weight) and done.grams is not None:
            self.publish_weight(done.grams, True)
            return None
        return self._not_settled("weigh", last)

    async def _weigh_from_stream(self, dynamic: bool) -> str | None:
        if not self._streaming:
            await self._start_stream()
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._settled = waiter
        self.filter.restart()  # a weight from after the command, not from before it
        self._dynamic_wanted += dynamic
        bound = self.device.stable_within_s
        try:
            await asyncio.wait_for(waiter, bound)
        except TimeoutError:
            return (
                f"{self.who}: no stable weight within {bound:g} s; "
                "check nothing touches the pan and the scale streams"
            )
        finally:
            self._dynamic_wanted -= dynamic
            self._settled = None
        return None

    async def _tare(self, command: TareCommand) -> str | None:
        if command.preset_g is not None:
            try:
                args = mtsics.preset_tare_args(command.preset_g, self.device.unit)
            except ValueError as exc:
                return f"{self.who}: preset tare refused: {exc}"
            reply = await self.request("TA", *args)
            self._status_from(reply)
            if isinstance(reply, mtsics.Tare):
                return None
            return self._refusal(f"preset tare of {command.preset_g:g} g", reply)
        if command.immediate:
            reply = await self.request("TI")
            self._status_from(reply)
            return None if isinstance(reply, mtsics.Tare) else self._refusal("tare", reply)
        done, last = await self._until_settled("T")
        return None if isinstance(done, mtsics.Tare) else self._not_settled("tare", last)

    async def _zero(self, immediate: bool) -> str | None:
        if immediate:
            reply = await self.request("ZI")
            self._status_from(reply)
            if isinstance(reply, mtsics.Status) and reply.done:
                return None
            return self._refusal("zero", reply)
        done, last = await self._until_settled("Z")
        return None if done is not None else self._not_settled("zero", last)

    # --- reasons ---------------------------------------------------------------------

    def _not_settled(self, what: str, last: mtsics.Reply | None) -> str:
        bound = self.device.stable_within_s
        if last is None:
            return (
                f"{self.who}: {what}: no answer within {bound:g} s; "
                "check nothing touches the pan, the cable and the power"
            )
        if isinstance(last, mtsics.Weight) and not last.stable:
            seen = f"last reading {last.describe()}"
        elif isinstance(last, mtsics.Status) and last.status == "I":
            seen = f"the scale kept answering '{last.command} I'"
        else:
            return self._refusal(what, last)
        return (
            f"{self.who}: {what}: no stable weight within {bound:g} s ({seen}); "
            "check nothing touches the pan"
        )

    def _refusal(self, what: str, reply: mtsics.Reply) -> str:
        match reply:
            case mtsics.Status():
                code = f"{reply.command} {reply.status}"
                return f"{self.who}: {what} refused: {reply.meaning} ({code})"
            case mtsics.Error():
                return f"{self.who}: {what} refused: {reply.meaning} ({reply.code})"
            case mtsics.Weight(grams=None) | mtsics.Tare(grams=None):
                return (
                    f"{self.who}: {what}: the scale answers in '{reply.unit}', which has no "
                    "conversion to grams; set its host unit to g or kg"
                )
        return f"{self.who}: {what}: unexpected answer '{self._reply_text(reply)}'"

    @staticmethod
    def _reply_text(reply: mtsics.Reply) -> str:
        """A reply as the scale sent it (near enough), for a supervisor to read."""
        match reply:
            case mtsics.Weight() | mtsics.Tare():
                status = "S" if reply.stable else "D"
                if isinstance(reply, mtsics.Tare) and reply.command == "TA":
                    status = "A"
                return f"{reply.command} {status} {reply.value:g} {reply.unit}"
            case mtsics.Status():
                return f"{reply.command} {reply.status}"
            case mtsics.Error():
                return reply.code
            case mtsics.Identification():
                return f'{reply.command} A "{reply.text}"'
            case mtsics.Other():
                return reply.text[:80]
        return "?"  # pragma: no cover - exhaustive above
