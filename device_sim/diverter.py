"""Simulated conveyor diverter (one decision point): a Modbus TCP PLC with the register
map of ``mqtt_topics.md``.

=====================  ==========================================================
holding ``0``          requested lane (host writes it first)
holding ``1``          request sequence id; the PLC acts when it changes
input ``0``            arrival counter, +1 per tote at the photo-eye (wraps)
input ``1``            sequence id of the last executed request
input ``2``            lane taken by the last tote (0: none)
input ``3``            status: 0 ok, 1 jam, 2 fault
input ``10``-``29``    barcode of the tote at the point, 2 ASCII chars per register,
                       high byte first, NUL padded (all NUL for a no-read)
discrete ``0``         photo-eye blocked (tote present)
discrete ``1``         diverter in position (set when the last divert fired)
discrete ``2``         fault (jam or fault status)
=====================  ==========================================================

Cycle: :meth:`DiverterSim.arrive` queues a tote on the infeed; totes reach the eye one
at a time (``spacing_s`` apart). At the eye the counter and barcode change together;
the PLC then waits up to ``decision_window_s`` for the sequence id to change. On a
change it takes the requested lane and echoes the sequence id; otherwise the tote takes
``default_lane`` and the echo stays as it was: a tote is never lost. A requested lane
the PLC does not know also sends the tote to the default lane. A sequence change with
no tote at the eye is echoed with lane 0 (nothing diverted). Like a real PLC it cannot
tell which tote a late request was meant for: it applies to the tote at the eye.

Every divert is recorded (:class:`Divert`) and handed to ``on_divert`` callbacks; a
:class:`Conveyor` uses them to carry totes on to the next point or station.

Faults: :meth:`jam` / :meth:`fault` stop the belt (status 1 / 2, fault input set) with
the tote held at the eye until :meth:`clear`; :meth:`force_lane` sends the next totes
down a lane other than the one asked for; ``arrive(..., noread=True)`` leaves the
barcode registers blank; plus the faults of :class:`device_sim.modbus_server.ModbusSim`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from device_sim.base import Changes, TaskSet, now
from device_sim.modbus_server import ModbusSim, Table
from wcs.logs import get_logger

BARCODE_BASE = 10
BARCODE_REGISTERS = 20
STATUS_OK, STATUS_JAM, STATUS_FAULT = 0, 1, 2


def barcode_registers(text: str) -> list[int]:
    """ASCII, two characters per register, high byte first, NUL padded to 40 bytes."""
    data = text.encode("ascii", "replace")[: BARCODE_REGISTERS * 2].ljust(
        BARCODE_REGISTERS * 2, b"\0"
    )
    return [data[i] << 8 | data[i + 1] for i in range(0, len(data), 2)]


@dataclass(frozen=True)
class DiverterOptions:
    # As long as the controller's default decision timeout: the PLC gives up no sooner.
    decision_window_s: float = 5.0
    actuation_s: float = 0.0
    spacing_s: float = 0.0
    reply_delay_s: float = 0.0


@dataclass(frozen=True)
class Divert:
    diverter: str
    point: str
    tote: str
    lane: int
    route: str | None
    requested_lane: int | None
    seq: int | None
    timed_out: bool
    at: float


class DiverterSim(ModbusSim):
    kind = "diverter"

    def __init__(
        self,
        device_id: str,
        *,
        lanes: Mapping[int, str],
        default_lane: int = 0,
        point: str = "D1",
        host: str = "127.0.0.1",
        port: int = 502,
        unit: int = 1,
        options: DiverterOptions | None = None,
    ):
        self.options = options or DiverterOptions()
        super().__init__(
            device_id, host=host, port=port, unit=unit, reply_delay_s=self.options.reply_delay_s
        )
        self.lanes = dict(lanes)
        self.default_lane = default_lane
        self.point = point
        self.arrivals: list[str] = []
        self.diverts: list[Divert] = []
        self.on_divert: list[Callable[[Divert], None]] = []
        self._infeed: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
        self._present: str | None = None
        self._request = asyncio.Event()
        self._forced: list[int] = []
        self._cursor = 0
        image = self.image
        image.holding.update({0: 0, 1: 0})
        image.input.update({0: 0, 1: 0, 2: 0, 3: STATUS_OK})
        image.input.update({BARCODE_BASE + i: 0 for i in range(BARCODE_REGISTERS)})
        image.discrete.update({0: False, 1: False, 2: False})

    # -- scripted behaviour --------------------------------------------------------

    def arrive(self, tote: str, *, noread: bool = False) -> None:
        """A tote joins the infeed; it reaches the photo-eye when the point is free."""
        self._infeed.put_nowait((tote, noread))

    @property
    def at_eye(self) -> str | None:
        return self._present

    @property
    def waiting(self) -> int:
        return self._infeed.qsize()

    @property
    def status(self) -> int:
        return self.image.input[3]

    def jam(self) -> None:
        self._set_status(STATUS_JAM)

    def fault(self) -> None:
        self._set_status(STATUS_FAULT)

    def clear(self) -> None:
        self._set_status(STATUS_OK)

    def force_lane(self, lane: int, count: int = 1) -> None:
        """The next ``count`` totes take ``lane`` whatever the host asked (a sticky flap)."""
        self.log.warning("fault injected: wrong lane", lane=lane, count=count)
        self._forced.extend([lane] * count)

    async def next_divert(self, timeout_s: float = 5.0) -> Divert:
        """The next divert not yet returned by this method."""
        await self.wait_for(lambda: len(self.diverts) > self._cursor, timeout_s)
        divert = self.diverts[self._cursor]
        self._cursor += 1
        return divert

    async def divert_of(self, tote: str, timeout_s: float = 5.0) -> Divert:
        """Wait for ``tote`` to be diverted here and return how."""
        await self.wait_for(lambda: any(d.tote == tote for d in self.diverts), timeout_s)
        return next(d for d in reversed(self.diverts) if d.tote == tote)

    def _set_status(self, status: int) -> None:
        if status != STATUS_OK:
            self.log.warning(
                "fault injected", status={STATUS_JAM: "jam", STATUS_FAULT: "fault"}[status]
            )
        self.image.input[3] = status
        self.image.discrete[2] = status != STATUS_OK
        self.changes.notify()

    # -- PLC logic -----------------------------------------------------------------

    def _start_behaviour(self) -> None:
        self.tasks.spawn(self._cycle(), "cycle")

    def _on_host_write(self, table: Table, address: int, old: list[Any], new: list[Any]) -> None:
        if table is not Table.HOLDING or not address <= 1 < address + len(new):
            return
        index = 1 - address
        if new[index] == old[index]:
            return
        if self._present is not None:
            self._request.set()
            return
        # Nothing at the eye to divert: acknowledge the request, divert nothing.
        self.image.input[1] = new[index]
        self.image.input[2] = 0
        self.log.warning("route request with no tote at the eye", seq=new[index])

    async def _belt_running(self) -> None:
        await self.changes.wait_for(lambda: self.image.input[3] == STATUS_OK, None)

    async def _cycle(self) -> None:
        image = self.image
        while True:
            tote, noread = await self._infeed.get()
            if self.options.spacing_s > 0:
                await asyncio.sleep(self.options.spacing_s)
            await self._belt_running()
            self._request.clear()
            self._present = tote
            image.discrete[0] = True
            image.discrete[1] = False
            image.input[0] = (image.input[0] + 1) & 0xFFFF
            for i, value in enumerate(barcode_registers("" if noread else tote)):
                image.input[BARCODE_BASE + i] = value
            self.arrivals.append(tote)
            self.log.info("tote at eye", tote=tote, noread=noread, arrivals=image.input[0])
            self.changes.notify()

            try:
                async with asyncio.timeout(self.options.decision_window_s):
                    await self._request.wait()
                decided = True
            except TimeoutError:
                decided = False
            await self._belt_running()

            requested = image.holding[0] if decided else None
            seq = image.holding[1] if decided else None
            lane = requested if requested is not None else self.default_lane
            if lane not in self.lanes and lane != self.default_lane:
                self.log.warning("unknown lane requested; default lane taken", lane=lane)
                lane = self.default_lane
            if self._forced:
                lane = self._forced.pop(0)
            if self.options.actuation_s > 0:
                await asyncio.sleep(self.options.actuation_s)
            # Echo, lane taken and the eye clearing change in one step, so a host poll
            # never sees the echo without the lane.
            if seq is not None:
                image.input[1] = seq
            image.input[2] = lane
            image.discrete[1] = True
            image.discrete[0] = False
            self._present = None
            divert = Divert(
                diverter=self.device_id,
                point=self.point,
                tote=tote,
                lane=lane,
                route=self.lanes.get(lane),
                requested_lane=requested,
                seq=seq,
                timed_out=not decided,
                at=now(),
            )
            self.diverts.append(divert)
            self.log.info(
                "tote diverted", tote=tote, lane=lane, route=divert.route, timed_out=not decided
            )
            for callback in list(self.on_divert):
                callback(divert)
            self.changes.notify()


@dataclass(frozen=True)
class Delivery:
    """A tote reaching the end of a lane: a station, or the next diverter's infeed."""

    tote: str
    destination: str
    via: Divert
    at: float


class Conveyor:
    """Carries totes from diverter lanes to where those lanes lead, ``travel_s`` later.

    A lane's route (``pack:P1``, ``outbound`` ...) names the destination; totes reaching
    it are queued in :meth:`queue` for a scenario to pick up. :meth:`connect` makes a
    route feed another diverter instead, so a tote can be followed across points.
    """

    def __init__(self, travel_s: float = 0.0) -> None:
        self.travel_s = travel_s
        self.deliveries: list[Delivery] = []
        self.changes = Changes()
        self._links: dict[tuple[str, str], DiverterSim] = {}
        self._queues: dict[str, asyncio.Queue[Delivery]] = {}
        self._tasks = TaskSet("conveyor", get_logger("device_sim").bind(device="conveyor"))

    def attach(self, diverter: DiverterSim) -> None:
        diverter.on_divert.append(self._diverted)

    def connect(self, diverter_id: str, route: str, downstream: DiverterSim) -> None:
        """Totes leaving ``diverter_id`` on ``route`` go on to ``downstream``'s infeed."""
        self._links[(diverter_id, route)] = downstream

    def queue(self, destination: str) -> asyncio.Queue[Delivery]:
        return self._queues.setdefault(destination, asyncio.Queue())

    def trail(self, tote: str) -> list[str]:
        """Destinations ``tote`` has reached so far, in order."""
        return [d.destination for d in self.deliveries if d.tote == tote]

    async def delivered(self, tote: str, timeout_s: float = 5.0, *, count: int = 1) -> Delivery:
        """Wait until ``tote`` has reached ``count`` destinations; return the last one."""
        await self.changes.wait_for(lambda: len(self.trail(tote)) >= count, timeout_s)
        return [d for d in self.deliveries if d.tote == tote][count - 1]

    def _diverted(self, divert: Divert) -> None:
        self._tasks.spawn(self._carry(divert), f"carry:{divert.tote}")

    async def _carry(self, divert: Divert) -> None:
        if self.travel_s > 0:
            await asyncio.sleep(self.travel_s)
        route = divert.route or f"{divert.point}:lane{divert.lane}"
        downstream = self._links.get((divert.diverter, route))
        destination = downstream.device_id if downstream is not None else route
        delivery = Delivery(divert.tote, destination, divert, now())
        self.deliveries.append(delivery)
        if downstream is not None:
            downstream.arrive(divert.tote)
        self.queue(destination).put_nowait(delivery)
        self.changes.notify()

    async def aclose(self) -> None:
        await self._tasks.cancel_all()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
