"""Simulated conveyor diverter (one decision point): a Modbus TCP PLC laid out by a
register map (:mod:`wcs.register_maps`: ``wcs-diverter`` by default, the map of
``mqtt_topics.md``, or another the floor file names, such as ``sorter-plc``: numbered
from 1, 32-bit sequence ids and counters low word first, its own status codes, the
barcode low byte first, a heartbeat coil). In the default map:

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
from device_sim.modbus_server import Fields, ModbusSim, Table
from wcs.logs import get_logger
from wcs.register_maps import SHIPPED, DiverterMap, Reg

DEFAULT_MAP = SHIPPED["wcs-diverter"]


def barcode_registers(text: str, registers: int = 20, low_first: bool = False) -> list[int]:
    """ASCII, two characters per register (the first in the high byte, or the low one
    with ``low_first``), NUL padded; longer codes are cut."""
    data = text.encode("ascii", "replace")[: registers * 2].ljust(registers * 2, b"\0")
    pairs = [(data[i], data[i + 1]) for i in range(0, len(data), 2)]
    return [(b << 8 | a) if low_first else (a << 8 | b) for a, b in pairs]


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
        register_map: DiverterMap | None = None,
    ):
        self.options = options or DiverterOptions()
        super().__init__(
            device_id, host=host, port=port, unit=unit, reply_delay_s=self.options.reply_delay_s
        )
        m = self.map = register_map or _default_map()
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
        self._arrival_modulo = 1 << (16 * m.arrivals.words)
        self.status_ok = next(code for code, what in m.status_codes.items() if what is None)
        self._jam = _code_for(m, "jam")
        self._fault = _code_for(m, "fault")
        self.heartbeats = 0
        f = self.fields = Fields(self.image, m.numbering, m.word_order)
        for reg in (m.lane, m.request_seq, m.arrivals, m.seq_echo, m.lane_taken):
            f.declare(reg)
        f.declare(m.status, value=self.status_ok)
        for n in range(m.barcode_registers):
            f.declare(m.barcode.model_copy(update={"address": m.barcode.address + n}))
        for signal in (m.eye, m.in_position, m.fault_flag):
            if signal is not None:
                f.declare(signal)
        if m.heartbeat is not None:
            f.declare(m.heartbeat.at)
        self._seq_seen = 0

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
        return self.fields.get(self.map.status)

    @property
    def arrival_count(self) -> int:
        return self.fields.get(self.map.arrivals)

    def jam(self) -> None:
        self._set_status(self._jam)

    def fault(self) -> None:
        self._set_status(self._fault)

    def clear(self) -> None:
        self._set_status(self.status_ok)

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
        if status != self.status_ok:
            self.log.warning("fault injected", status=self.map.status_codes[status])
        self.fields.set(self.map.status, status)
        self._signal(self.map.fault_flag, status != self.status_ok)
        self.changes.notify()

    def _signal(self, reg: Reg | None, on: bool) -> None:
        if reg is not None:
            self.fields.set(reg, int(on))

    # -- PLC logic -----------------------------------------------------------------

    def _start_behaviour(self) -> None:
        self.tasks.spawn(self._cycle(), "cycle")

    def _on_host_write(self, table: Table, address: int, old: list[Any], new: list[Any]) -> None:
        m, f = self.map, self.fields
        if m.heartbeat is not None and f.touches(m.heartbeat.at, table, address, len(new)):
            self.heartbeats += 1
        if not f.touches(m.request_seq, table, address, len(new)):
            return
        seq = f.get(m.request_seq)
        if seq == self._seq_seen:
            return
        self._seq_seen = seq
        if self._present is not None:
            self._request.set()
            return
        # Nothing at the eye to divert: acknowledge the request, divert nothing.
        f.set(m.seq_echo, seq)
        f.set(m.lane_taken, 0)
        self.log.warning("route request with no tote at the eye", seq=seq)

    async def _belt_running(self) -> None:
        await self.changes.wait_for(lambda: self.status == self.status_ok, None)

    async def _cycle(self) -> None:
        m, f = self.map, self.fields
        while True:
            tote, noread = await self._infeed.get()
            if self.options.spacing_s > 0:
                await asyncio.sleep(self.options.spacing_s)
            await self._belt_running()
            self._request.clear()
            self._present = tote
            self._signal(m.eye, True)
            self._signal(m.in_position, False)
            f.set(m.arrivals, (f.get(m.arrivals) + 1) % self._arrival_modulo)
            low_first = m.byte_order == "low_first"
            words = barcode_registers("" if noread else tote, m.barcode_registers, low_first)
            table, start = f.where(m.barcode)
            cells = self.image.table(table)
            for n, value in enumerate(words):
                cells[start + n] = value
            self.arrivals.append(tote)
            self.log.info("tote at eye", tote=tote, noread=noread, arrivals=f.get(m.arrivals))
            self.changes.notify()

            try:
                async with asyncio.timeout(self.options.decision_window_s):
                    await self._request.wait()
                decided = True
            except TimeoutError:
                decided = False
            await self._belt_running()

            requested = f.get(m.lane) if decided else None
            seq = f.get(m.request_seq) if decided else None
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
                f.set(m.seq_echo, seq)
            f.set(m.lane_taken, lane)
            self._signal(m.in_position, True)
            self._signal(m.eye, False)
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


def _default_map() -> DiverterMap:
    assert isinstance(DEFAULT_MAP, DiverterMap)
    return DEFAULT_MAP


def _code_for(m: DiverterMap, word: str) -> int:
    """The status code whose meaning names ``word`` (a jam, a fault)."""
    for code, what in m.status_codes.items():
        if what is not None and word in what:
            return code
    return next(code for code, what in m.status_codes.items() if what is not None)


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
