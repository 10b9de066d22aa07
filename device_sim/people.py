"""The people of a simulated shift, acting only through the devices and a handheld.

======================  ==============================================================
:class:`Picker`         at a pick station: scans an empty tote for every order of the
                        batch, then works the lit slots (PTL confirm, or a scan per
                        unit); pushes the cart's totes onto the conveyor at the end;
                        between batches fills the faces lit blue from reserve and
                        counts the ones lit yellow
:class:`QcOperator`     at a QC bench: scans the tote and every unit in it; now and
                        then rejects the packaging on the handheld, puts the units back
                        on their shelves and has the order picked again
:class:`Packer`         at a pack station: cartons the tote's units, puts the parcel
                        on the scale, scans the tote, takes the label the printer
                        prints, scans it and puts the parcel on the outbound conveyor
:class:`GoodsIn`        books receipts (and shelves the units) for backordered demand
:class:`StockController` counts what no pick station counts (reserve shelves), makes
                        the recounts that must be someone else's and, as supervisor,
                        books the counts that went to review
:class:`OutboundDock`   collects the parcels the conveyor brings to outbound
:class:`ExceptionDesk`  looks at whatever lands in the exception lane: sends it round
                        again when the order can go on, parks it otherwise
======================  ==============================================================

Mistakes are made on purpose, at the rates of :class:`Rates`, and counted in
:class:`ShiftStats` so the system's own counts can be checked against them:

- mispick: the picker scans a unit of another article first; the controller refuses
  it (the slot blinks red), the unit goes back to its shelf, the right one is picked;
- short pick: some units on the shelf turn out to be damaged (into the damage bin),
  or the shelf holds fewer than the books say (it drifted); the picker confirms
  fewer, and the controller re-plans the rest;
- weight mismatch: something that is not the order's (a tape dispenser) lies on the
  parcel when it is weighed; the controller sends the tote back to QC;
- QC failure: the operator finds crushed packaging and says so on the handheld.

Human work takes time (:class:`Timings`, seconds at speed 1); :class:`Pace` divides it
by the speed factor so a shift can run many times faster than real time. Waiting for
the system (a light, a label, a state on the handheld) is never scaled.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from device_sim.diverter import DiverterSim
from device_sim.floor import SimFloor
from device_sim.gs1 import sscc_element
from device_sim.handheld import Handheld, HandheldError
from device_sim.ptl import PtlSim
from device_sim.world import Tote, Unit, World
from device_sim.zpl import Label
from wcs.domain.packing import Carton, Item, choose_carton
from wcs.floor import DiverterDevice, PtlDevice, Station
from wcs.logs import get_logger

TOTE_SYMBOLOGY = "]C0"  # Code 128 tote labels
ITEM_SYMBOLOGY = "]E0"  # EAN-13 on the units
LABEL_SYMBOLOGY = "]C1"  # GS1-128 shipping label
LOCATION_SYMBOLOGY = "]C0"  # Code 128 location labels on the shelves
# What a lit slot asks for between batches (the manual: blue fill, yellow count).
MOVE_LIGHT, COUNT_LIGHT = "blue", "yellow"
# Order states a picker waits for before the tote leaves the cart.
PICKING_STATES = frozenset({"reserved", "pick_planned", "picking"})


class ShiftError(RuntimeError):
    """Something a person on the floor cannot get past: the shift is stuck."""


@dataclass(frozen=True)
class Rates:
    """How often people make each mistake (0..1)."""

    mispick: float = 0.03  # pick tasks where a wrong unit is scanned first
    short: float = 0.02  # pick visits that find damaged units on the shelf
    weight_mismatch: float = 0.03  # parcels weighed with something extra on them
    qc_fail: float = 0.01  # QC checks failed for packaging
    scan_items: float = 0.3  # pick tasks confirmed by scanning each unit

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"rate {name} must be within 0..1, got {value}")


@dataclass(frozen=True)
class Timings:
    """Seconds a task takes a person at speed 1."""

    walk_to_slot: float = 5.0
    take_unit: float = 1.0
    scan: float = 0.8
    press: float = 0.5
    tote_on_cart: float = 2.0
    tote_on_conveyor: float = 2.0
    qc_tote: float = 2.0
    qc_unit: float = 1.5
    pack_base: float = 10.0
    pack_unit: float = 1.0
    label: float = 3.0
    receipt_lead: float = 45.0
    count_unit: float = 0.4


@dataclass
class Pace:
    speed: float
    timings: Timings = field(default_factory=Timings)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, got {self.speed}")

    async def work(self, seconds: float, rng: random.Random | None = None) -> None:
        jitter = rng.uniform(0.8, 1.25) if rng is not None else 1.0
        await asyncio.sleep(seconds * jitter / self.speed)


@dataclass
class ShiftStats:
    """What people did, mistakes included (the system's own counts are checked against it)."""

    picks: int = 0
    mispicks: int = 0
    mispicks_not_refused: int = 0
    short_picks: int = 0  # pick visits that found fewer units than asked (any cause)
    damaged_units: int = 0
    moves: int = 0  # replenishment moves done
    short_moves: int = 0  # moves that found fewer units in reserve than asked
    moved_units: int = 0
    counts: int = 0  # counts keyed (at a station, by the stock controller)
    recounts: int = 0
    accepted: int = 0  # counts booked by the supervisor
    weight_mismatches: int = 0
    unexpected_rejections: int = 0
    qc_failures: int = 0
    receipts: int = 0
    received_units: int = 0
    totes_inducted: int = 0
    parcels_packed: int = 0
    parcels_out: int = 0
    sent_round_again: int = 0
    parked: int = 0
    # The orders each deliberate mistake was made on, to follow them to the end.
    mistakes: dict[str, list[str]] = field(default_factory=dict)

    def made(self, kind: str, order_id: str) -> None:
        self.mistakes.setdefault(kind, []).append(order_id)


@dataclass
class Crew:
    """What everybody on the floor shares."""

    sim: SimFloor
    world: World
    handheld: Handheld
    pace: Pace
    rates: Rates
    stats: ShiftStats = field(default_factory=ShiftStats)
    poll_s: float = 0.05  # how often a person looks at the handheld while waiting
    wait_s: float = 30.0  # how long anyone waits for the system before giving up
    visits: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def decisions(self, *key: str) -> random.Random:
        """The random stream for the next visit of ``key`` (e.g. packing one order).

        Visits are counted for the whole floor, not per person: an order weighed again
        at the other pack station is its second weighing there too."""
        self.visits[key] += 1
        return self.world.rng(*key, self.visits[key])

    @property
    def tote_infeed(self) -> DiverterSim:
        """Where totes join the conveyor: the divert point with a QC lane."""
        for device in self.sim.floor.devices:
            if isinstance(device, DiverterDevice) and "qc" in device.lanes.values():
                return self.sim.diverter(device.id)
        raise ShiftError("no diverter on this floor has a QC lane")

    @property
    def parcel_infeed(self) -> DiverterSim:
        """Where parcels join the conveyor: the outbound point (the tote infeed otherwise)."""
        for device in self.sim.floor.devices:
            if (
                isinstance(device, DiverterDevice)
                and device.zone == "outbound"
                and "outbound" in device.lanes.values()
            ):
                return self.sim.diverter(device.id)
        return self.tote_infeed


class Person:
    role: ClassVar[str]

    def __init__(self, name: str, crew: Crew) -> None:
        self.name = name
        self.crew = crew
        self.world = crew.world
        self.hh = crew.handheld
        self.pace = crew.pace
        self.stats = crew.stats
        self.log = get_logger("device_sim.people").bind(person=name, role=self.role)

    async def run(self) -> None:
        raise NotImplementedError

    async def wait_order(self, order_id: str, states: Iterable[str]) -> str:
        return await self.hh.wait_order(
            order_id, tuple(states), timeout_s=self.crew.wait_s, poll_s=self.crew.poll_s
        )


async def _wait_any(panels: Iterable[PtlSim], timeout_s: float) -> bool:
    """Until any panel changes (a light comes on) or ``timeout_s`` passes (then False)."""
    waits = [asyncio.ensure_future(p.changes.wait(timeout_s)) for p in panels]
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return any(not w.cancelled() and w.result() for w in done)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


class Picker(Person):
    role = "picker"

    def __init__(self, station: Station, crew: Crew) -> None:
        super().__init__(f"picker-{station.id}", crew)
        self.station = station
        if not station.scanner or not station.panels:
            raise ShiftError(f"pick station {station.id} needs a scanner and PTL panels")
        self.scanner = crew.sim.scanner(station.scanner)
        self.panels = {pid: crew.sim.ptl(pid) for pid in station.panels}
        # Which location each slot lights (the labels on the shelves say so too).
        self.places: dict[tuple[str, int], str] = {
            (device.id, slot): location
            for device in crew.sim.floor.devices
            if isinstance(device, PtlDevice) and device.id in self.panels
            for slot, location in device.slots.items()
        }

    async def run(self) -> None:
        cart: dict[str, Tote] = {}
        batch: str | None = None
        handled: set[int] = set()
        while True:
            # Only an active batch has lit slots; the short list keeps the handheld quick.
            lit = await self.hh.tasks(self.station.id, ("lit",))
            if not lit and (work := self._stock_lit()) is not None:
                # Between batches: the finished batch's totes go first, then the work.
                if cart and not await self._batch_open(batch):
                    await self._unload(cart)
                    batch = None
                await self._stock_work(*work)
                continue
            if lit and lit[0]["batch_id"] != batch:
                # A new batch: the cart went back to the depot with the last one's totes.
                await self._unload(cart)
                batch = str(lit[0]["batch_id"])
                await self._tote_up(batch, cart)
                continue
            todo = [t for t in lit if t["batch_id"] == batch and t["id"] not in handled]
            if todo:
                task = todo[0]
                # A scan counts for the first lit task of its article: with the same
                # article lit twice (a re-planned short pick) only the button is certain.
                alone = all(t["sku"] != task["sku"] or t["id"] == task["id"] for t in lit)
                if await self._pick(task, cart, may_scan=alone):
                    handled.add(task["id"])
                continue
            changed = await _wait_any(self.panels.values(), 0.25)
            if not changed and cart and not await self._batch_open(batch):
                await self._unload(cart)
                batch = None

    async def _batch_open(self, batch: str | None) -> bool:
        tasks = await self.hh.tasks(self.station.id, ("open", "lit"))
        return any(t["batch_id"] == batch for t in tasks)

    async def _tote_up(self, batch: str, cart: dict[str, Tote]) -> None:
        """One empty tote per order of the batch; the handheld says which order got it.

        The controller pairs a scanned tote with the batch's first order (by task)
        that has none, so the picker knows which order to look for."""
        tasks = [
            t
            for t in await self.hh.tasks(self.station.id, ("open", "lit"))
            if t["batch_id"] == batch
        ]
        first_task: dict[str, int] = {}
        for task in tasks:
            if task["tote"] is None:
                order = str(task["order_id"])
                first_task[order] = min(first_task.get(order, task["id"]), task["id"])
        for order in sorted(first_task, key=first_task.__getitem__):
            tote = self.world.empty_tote()
            await self.pace.work(self.pace.timings.tote_on_cart)
            await self.scanner.scan(tote.code, TOTE_SYMBOLOGY)
            tote.order_id = await self._paired(tote.code, order)
            cart[tote.order_id] = tote

    async def _paired(self, code: str, expected: str) -> str:
        try:
            async with asyncio.timeout(self.crew.wait_s):
                while True:
                    mine = await self.hh.tasks(self.station.id, ("open", "lit"), order_id=expected)
                    totes = {t["tote"] for t in mine}
                    if code in totes:
                        return expected
                    if totes - {None}:
                        break  # that order got another tote: look the new one up
                    await asyncio.sleep(self.crew.poll_s)
                while True:
                    for task in await self.hh.tasks(self.station.id, ("open", "lit")):
                        if task["tote"] == code:
                            return str(task["order_id"])
                    await asyncio.sleep(self.crew.poll_s)
        except TimeoutError:
            raise ShiftError(f"{self.name}: tote {code} was scanned but never paired") from None

    async def _pick(self, task: dict[str, Any], cart: dict[str, Tote], *, may_scan: bool) -> bool:
        """Work one lit task; False when its light never showed (look again later)."""
        panel = self.panels.get(task["ptl_device"])
        if panel is None:
            raise ShiftError(f"{self.name}: task {task['id']} is on {task['ptl_device']}")
        slot = int(task["ptl_slot"])
        try:
            await panel.wait_for(lambda: panel.slot(slot).lit, timeout_s=2.0)
        except TimeoutError:
            return False
        tote = cart.get(task["order_id"])
        if tote is None:
            raise ShiftError(f"{self.name}: no tote on the cart for order {task['order_id']}")
        need = int(task["qty"]) - int(task["qty_picked"])
        ref = self.world.reference(task["order_id"])
        rng = self.crew.decisions("pick", ref, task["sku"])
        rates, timings = self.crew.rates, self.pace.timings
        # Every draw is made whatever the others gave, so each decision stays tied to
        # its own place in the order's stream.
        mistake, scanning, shortage = rng.random(), rng.random(), rng.random()
        wrong_first = may_scan and mistake < rates.mispick
        by_scan = may_scan and (wrong_first or scanning < rates.scan_items)
        damaged = rng.randint(1, need) if need > 0 and shortage < rates.short else 0

        await self.pace.work(timings.walk_to_slot, rng)
        if wrong_first and await self._mispick(panel, slot, task, rng):
            self.stats.made("mispick", task["order_id"])
        # At the shelf until the confirm is pressed: nobody counts it in between.
        async with self.world.at_shelf(task["location"]):
            await self._take(panel, slot, task, tote, need, damaged, by_scan, rng)
        return True

    async def _take(
        self,
        panel: PtlSim,
        slot: int,
        task: dict[str, Any],
        tote: Tote,
        need: int,
        damaged: int,
        by_scan: bool,
        rng: random.Random,
    ) -> None:
        timings = self.pace.timings
        if damaged:
            # The damaged units were what the pick face held: they go to the bin, the
            # picker takes the rest and confirms fewer than the display asks for.
            damaged = self.world.damage(task["location"], damaged)
            self.stats.damaged_units += damaged
        # The shelf may hold fewer than the books say (it drifted): take what is there.
        units = self.world.take(task["location"], need - damaged)
        await self.pace.work(timings.take_unit * max(len(units), 1), rng)
        tote.units += units
        self.stats.picks += 1
        good = len(units)
        if good < need:
            self.stats.short_picks += 1
            self.stats.made("short_pick", task["order_id"])
        if by_scan and good:
            for unit in units:
                await self.scanner.scan(unit.article.barcode, ITEM_SYMBOLOGY)
                await self.pace.work(timings.scan, rng)
            if good < need:
                # Scans and the PTL press travel separately: confirm the rest as missing
                # only once the display has counted the scans down.
                await self._wait_display(panel, slot, need - good)
                await panel.press(slot, 0)
        else:
            await self.pace.work(timings.press, rng)
            await panel.press(slot, good)

    async def _mispick(
        self, panel: PtlSim, slot: int, task: dict[str, Any], rng: random.Random
    ) -> bool:
        others = sorted(
            (s for s in self.world.shelves.values() if s.sku != task["sku"] and s.units > 0),
            key=lambda s: s.location,
        )
        if not others:
            return False
        shelf = rng.choice(others)
        async with self.world.at_shelf(shelf.location):
            wrong = self.world.take(shelf.location, 1)
            if not wrong:
                return False  # someone emptied it meanwhile
            await self.scanner.scan(wrong[0].article.barcode, ITEM_SYMBOLOGY)
            self.stats.mispicks += 1
            try:
                await panel.wait_for(lambda: panel.slot(slot).colour == "red", timeout_s=10.0)
            except TimeoutError:
                self.stats.mispicks_not_refused += 1
                self.log.warning("wrong item was not refused", sku=wrong[0].article.sku, slot=slot)
            self.world.put_back(wrong)
        return True

    # -- between batches: moves and counts ----------------------------------------------

    def _stock_lit(self) -> tuple[PtlSim, int, str | None] | None:
        """A slot lit steady blue (fill it) or yellow (count it), if any; a panel
        without colours shows a lit slot with no pick lit (the handheld tells)."""
        for panel in self.panels.values():
            for slot, view in panel.lit().items():
                if not view.blink and view.colour in (MOVE_LIGHT, COUNT_LIGHT, None):
                    return panel, slot, view.colour
        return None

    async def _stock_work(self, panel: PtlSim, slot: int, colour: str | None) -> None:
        location = self.places[(panel.device_id, slot)]
        if colour is None:
            moves = await self.hh.moves(("active",), station=self.station.id)
            colour = MOVE_LIGHT if any(m["dst"] == location for m in moves) else COUNT_LIGHT
        if colour == MOVE_LIGHT:
            await self._move(panel, slot, location)
        else:
            await self._count(panel, slot, location)

    async def _move(self, panel: PtlSim, slot: int, face: str) -> None:
        """Bring the units the slot shows from the reserve the handheld names."""
        rows = await self.hh.moves(("active",), station=self.station.id)
        move = next((m for m in rows if m["dst"] == face), None)
        if move is None:
            await asyncio.sleep(self.crew.poll_s)  # the light went out meanwhile
            return
        move_id, src = int(move["id"]), str(move["src"])
        asked = int(move["qty"]) - int(move["moved"])
        rng = self.crew.decisions("move", src, face)
        timings = self.pace.timings

        async def ended() -> bool:
            rows = await self.hh.moves(station=self.station.id)
            return any(m["id"] == move_id and m["state"] in ("done", "short") for m in rows)

        async with self.world.at_shelf(src, face):
            await self.pace.work(timings.walk_to_slot, rng)
            await self.scanner.scan(src, LOCATION_SYMBOLOGY)
            units = self.world.take(src, asked)
            await self.pace.work(timings.take_unit * max(len(units), 1), rng)
            await self.pace.work(timings.walk_to_slot, rng)
            moved = self.world.shelve(face, units)
            if rng.random() < self.crew.rates.scan_items and moved:
                for unit in units:
                    await self.scanner.scan(unit.article.barcode, ITEM_SYMBOLOGY)
                    await self.pace.work(timings.scan, rng)
                if moved < asked:
                    await self._wait_display(panel, slot, asked - moved)
                    await self._press_work(panel, slot, 0, src, ended)
                else:
                    await self._until(ended, f"move {move_id} to {face}")
            else:
                await self.pace.work(timings.press, rng)
                await self._press_work(panel, slot, moved, src, ended)
        self.stats.moves += 1
        self.stats.moved_units += moved
        if moved < asked:
            self.stats.short_moves += 1

    async def _count(self, panel: PtlSim, slot: int, location: str) -> None:
        """Count the slot's location blind and key the units on the panel."""
        rows = await self.hh.counts(("counting",), station=self.station.id)
        count = next((c for c in rows if c["location"] == location), None)
        if count is None:
            await asyncio.sleep(self.crew.poll_s)
            return
        count_id, sku = int(count["id"]), str(count["sku"])
        rng = self.crew.decisions("count", location)
        timings = self.pace.timings

        async def ended() -> bool:
            rows = await self.hh.counts(station=self.station.id)
            return any(c["id"] == count_id and c["state"] != "counting" for c in rows)

        async with self.world.at_shelf(location):
            await self.pace.work(timings.walk_to_slot, rng)
            await self.scanner.scan(location, LOCATION_SYMBOLOGY)
            shelf = self.world.shelves.get(location)
            found = shelf.units if shelf is not None and shelf.sku == sku else 0
            if rng.random() < self.crew.rates.scan_items and found:
                barcode = self.world.articles[sku].barcode
                for _ in range(found):
                    await self.scanner.scan(barcode, ITEM_SYMBOLOGY)
                    await self.pace.work(timings.scan, rng)
                await self._wait_display(panel, slot, found)
            else:
                await self.pace.work(timings.count_unit * max(found, 1), rng)
            await self._press_work(panel, slot, found, location, ended)
        self.stats.counts += 1

    async def _press_work(
        self,
        panel: PtlSim,
        slot: int,
        qty: int,
        label: str,
        ended: Callable[[], Awaitable[bool]],
    ) -> None:
        """Confirm ``qty`` on the slot until the handheld shows the work ended.

        The label scan and the press travel separately: a press that overtakes the
        label is refused (the slot blinks red); the operator scans the label again
        and confirms again, as on a real floor."""
        for _ in range(5):
            await panel.press(slot, qty)
            if await self._until(ended, f"{label} slot {slot}", panel=panel, slot=slot):
                return
            await self.scanner.scan(label, LOCATION_SYMBOLOGY)
            await self.pace.work(self.pace.timings.walk_to_slot)
        raise ShiftError(f"{self.name}: {panel.device_id} slot {slot} refused five confirms")

    async def _until(
        self,
        ended: Callable[[], Awaitable[bool]],
        what: str,
        *,
        panel: PtlSim | None = None,
        slot: int = 0,
    ) -> bool:
        """Until the work ended (True) or the slot blinks red (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.crew.wait_s
        while loop.time() < deadline:
            if await ended():
                return True
            if panel is not None:
                view = panel.slot(slot)
                if view.lit and view.blink and view.colour == "red":
                    return False
            await asyncio.sleep(self.crew.poll_s)
        raise ShiftError(f"{self.name}: {what} never ended")

    async def _wait_display(self, panel: PtlSim, slot: int, left: int) -> None:
        try:
            await panel.wait_for(lambda: panel.slot(slot).qty == left, timeout_s=self.crew.wait_s)
        except TimeoutError:
            raise ShiftError(
                f"{self.name}: {panel.device_id} slot {slot} never counted down to {left}"
            ) from None

    async def _unload(self, cart: dict[str, Tote]) -> None:
        for order_id, tote in list(cart.items()):
            state = await self.hh.wait_order(
                order_id,
                leaving=PICKING_STATES,
                timeout_s=self.crew.wait_s,
                poll_s=self.crew.poll_s,
            )
            await self.pace.work(self.pace.timings.tote_on_conveyor)
            self.log.debug("tote to conveyor", tote=tote.code, order=order_id, state=state)
            self.crew.tote_infeed.arrive(tote.code)
            self.stats.totes_inducted += 1
        cart.clear()


class QcOperator(Person):
    role = "qc"

    def __init__(self, station: Station, crew: Crew) -> None:
        super().__init__(f"qc-{station.id}", crew)
        self.station = station
        if not station.scanner:
            raise ShiftError(f"QC station {station.id} needs a scanner")
        self.scanner = crew.sim.scanner(station.scanner)

    async def run(self) -> None:
        queue = self.crew.sim.conveyor.queue("qc")
        while True:
            delivery = await queue.get()
            tote = self.world.totes.get(delivery.tote)
            if tote is None or tote.order_id is None:
                self.world.parked.append(delivery.tote)
                self.stats.parked += 1
                continue
            await self._check(tote, tote.order_id)

    async def _check(self, tote: Tote, order_id: str) -> None:
        ref = self.world.reference(order_id)
        rng = self.crew.decisions("qc", ref)
        timings = self.pace.timings
        await self.pace.work(timings.qc_tote, rng)
        await self.scanner.scan(tote.code, TOTE_SYMBOLOGY)
        if rng.random() < self.crew.rates.qc_fail:
            await self.pace.work(timings.qc_unit, rng)
            await self._reject(order_id)
            self.stats.qc_failures += 1
            self.stats.made("qc_fail", order_id)
            await self._fail(tote, order_id)
            return
        for unit in tote.units:
            await self.pace.work(timings.qc_unit, rng)
            await self.scanner.scan(unit.article.barcode, ITEM_SYMBOLOGY)
        state = await self.wait_order(order_id, ("qc_passed", "qc_failed"))
        if state == "qc_failed":
            await self._fail(tote, order_id)
            return
        await self.pace.work(timings.tote_on_conveyor, rng)
        self.crew.tote_infeed.arrive(tote.code)
        self.stats.totes_inducted += 1

    async def _reject(self, order_id: str) -> None:
        """Key in "packaging not acceptable" until the handheld shows the failure.

        The verdict travels over HTTP, the tote scan over the scanner: when the verdict
        overtakes the scan it can land on the order's previous (closed) check and not
        take; the operator sees that on the screen and enters it again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.crew.wait_s
        while True:
            verdict = await self.hh.qc_result(
                order_id, packaging_ok=False, appearance_ok=True, note="crushed inner packaging"
            )
            if verdict == "failed":
                return
            if loop.time() > deadline:
                raise ShiftError(f"{self.name}: the QC failure of {order_id} never took")
            await asyncio.sleep(self.crew.poll_s)

    async def _fail(self, tote: Tote, order_id: str) -> None:
        """Units back on their shelves, the order picked again, then the tote back on the
        stack: the repick is what frees it, and a picker who took it off the stack
        before that would scan a tote still bound to this order and wait in vain."""
        await self.wait_order(order_id, ("qc_failed",))
        # At the shelves until the system has booked the units back on them.
        async with self.world.at_shelf(*(u.home for u in tote.units)):
            self.world.put_back(tote.units)
            tote.units.clear()
            await self.hh.qc_resolve(order_id, "repick")
        self.world.return_tote(tote)


class Packer(Person):
    role = "packer"

    def __init__(self, station: Station, crew: Crew) -> None:
        super().__init__(f"packer-{station.id}", crew)
        self.station = station
        if not (station.scanner and station.scale and station.printer):
            raise ShiftError(f"pack station {station.id} needs a scanner, a scale and a printer")
        self.scanner = crew.sim.scanner(station.scanner)
        self.scale = crew.sim.scale(station.scale)
        printers = [station.printer, station.backup_printer]
        self.printers = [crew.sim.printer(p) for p in printers if p]

    async def run(self) -> None:
        queue = self.crew.sim.conveyor.queue(f"pack:{self.station.id}")
        while True:
            delivery = await queue.get()
            tote = self.world.totes.get(delivery.tote)
            if tote is None or tote.order_id is None or not tote.units:
                self.world.parked.append(delivery.tote)
                self.stats.parked += 1
                continue
            await self._pack(tote, tote.order_id)

    def _carton(self, units: list[Unit]) -> Carton:
        counts = Counter(u.article.sku for u in units)
        items = [
            Item(sku, n, self.world.articles[sku].weight_g, self.world.articles[sku].dims_mm)
            for sku, n in sorted(counts.items())
        ]
        return choose_carton(items)

    async def _pack(self, tote: Tote, order_id: str) -> None:
        ref = self.world.reference(order_id)
        rng = self.crew.decisions("pack", ref)
        timings = self.pace.timings
        carton = self._carton(tote.units)
        weight = sum(u.article.true_weight_g for u in tote.units) + carton.tare_g
        stray = 0.0
        if rng.random() < self.crew.rates.weight_mismatch:
            # A tape dispenser left on the parcel: clearly more than the tolerance allows.
            stray = max(300.0, 0.15 * weight)
        await self.pace.work(timings.pack_base + timings.pack_unit * len(tote.units), rng)
        self.scale.place(round(weight + stray, 1), settle_s=min(0.8, 8.0 / self.pace.speed))
        printed = {id(p): len(p.labels) for p in self.printers}
        await self.scanner.scan(tote.code, TOTE_SYMBOLOGY)
        label = await self._label_or_rejection(order_id, printed)
        self.scale.remove(settle_s=0.0)
        if label is None:
            if stray:
                self.stats.weight_mismatches += 1
                self.stats.made("weight_mismatch", order_id)
            else:
                self.stats.unexpected_rejections += 1
            # The units go back into the tote, the stray object stays at the bench.
            await self.pace.work(timings.tote_on_conveyor, rng)
            self.crew.tote_infeed.arrive(tote.code)
            self.stats.totes_inducted += 1
            return
        sscc = label.sscc
        if sscc is None:
            raise ShiftError(f"{self.name}: the label for order {order_id} has no SSCC")
        await self.pace.work(timings.label, rng)
        await self.scanner.scan(sscc_element(sscc), LABEL_SYMBOLOGY)
        await self.wait_order(order_id, ("packed", "allocated"))
        self.world.seal(tote, sscc, carton.code)
        self.stats.parcels_packed += 1
        await self.pace.work(timings.tote_on_conveyor, rng)
        self.crew.parcel_infeed.arrive(sscc_element(sscc))

    async def _label_or_rejection(self, order_id: str, seen: dict[int, int]) -> Label | None:
        """The label printed for the order after ``seen`` (labels per printer when the
        tote was scanned), or None when the weight check sent the tote back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.crew.wait_s
        next_look = 0.0
        while loop.time() < deadline:
            for printer in self.printers:
                for label in printer.labels[seen[id(printer)] :]:
                    if any(order_id in text for text in label.texts):
                        return label
            if loop.time() >= next_look:
                state = (await self.hh.order(order_id))["state"]
                if state == "picked":
                    return None
                next_look = loop.time() + 0.2
            await _first_change(self.printers, self.crew.poll_s)
        raise ShiftError(f"{self.name}: no label and no verdict for order {order_id}")


async def _first_change(sims: Iterable[Any], timeout_s: float) -> None:
    waits = [asyncio.ensure_future(s.changes.wait(timeout_s)) for s in sims]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


class GoodsIn(Person):
    """Replenishment: what backordered orders need arrives, is shelved and booked."""

    role = "goods-in"

    def __init__(self, crew: Crew, *, case_size: int = 12) -> None:
        super().__init__("goods-in", crew)
        self.case_size = case_size

    async def run(self) -> None:
        while True:
            await asyncio.sleep(max(self.crew.poll_s * 10, 0.2))
            waiting = await self.hh.orders("backordered")
            demand: Counter[str] = Counter()
            for order in waiting:
                for line in order["lines"]:
                    demand[line["sku"]] += int(line["qty"])
            for sku, qty in sorted(demand.items()):
                if sku not in self.world.articles:
                    continue
                available = int((await self.hh.inventory(sku))["available"])
                short = qty - available
                if short > 0:
                    await self._receive(sku, short)

    async def _receive(self, sku: str, short: int) -> None:
        if not self.world.slotting.locations_of(sku):
            raise ShiftError(f"goods-in: article {sku} has no shelf")
        where = self.world.slotting.put_away_at(sku)
        cases = -(-short // self.case_size)
        qty = cases * self.case_size
        await self.pace.work(self.pace.timings.receipt_lead)
        # Shelved first, booked second: the system never promises units not yet there.
        async with self.world.at_shelf(where):
            self.world.put_away(where, qty)
            await self.hh.receipt(sku, where, qty)
        self.stats.receipts += 1
        self.stats.received_units += qty


class StockController(Person):
    """Counts on a handheld what no pick station counts (reserve shelves), recounts
    what a station's count found too different, and, as supervisor, books the counts
    that went to review (or that she would have to recount herself) with what she
    counts now. A shelf with a pick under way is left for later."""

    role = "stock"

    def __init__(self, crew: Crew) -> None:
        super().__init__("stock-controller", crew)
        self._later: dict[int, float] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(max(self.crew.poll_s * 4, 0.1))
            todo = await self.hh.counts(("open",), station="floor")
            todo += await self.hh.counts(("recount", "review"))
            for count in sorted(todo, key=lambda c: int(c["id"])):
                await self._work(count)

    async def _busy(self, location: str) -> bool:
        """A pick lit at the shelf: the picker may have taken units the books still
        show there (confirmed, not yet booked). Everyone else who takes or puts units
        holds the shelf until the books have them."""
        return any(t["location"] == location for t in await self.hh.tasks(None, ("lit",)))

    async def _work(self, count: dict[str, Any]) -> None:
        count_id, location, sku = int(count["id"]), str(count["location"]), str(count["sku"])
        loop = asyncio.get_running_loop()
        if self._later.get(count_id, 0.0) > loop.time():
            return
        async with self.world.at_shelf(location):
            if await self._busy(location):
                self._later[count_id] = loop.time() + 0.5
                return
            shelf = self.world.shelves.get(location)
            found = shelf.units if shelf is not None and shelf.sku == sku else 0
            rng = self.crew.decisions("stock-count", location)
            timings = self.pace.timings
            await self.pace.work(timings.walk_to_slot + timings.count_unit * max(found, 1), rng)
            try:
                if count["state"] == "review":
                    await self.hh.count_accept(count_id, found)
                    self.stats.accepted += 1
                    return
                try:
                    await self.hh.count_result(count_id, found)
                except HandheldError as exc:
                    if exc.status != 409 or count["state"] != "recount":
                        raise
                    # Her own first count: the supervisor books what she counts now.
                    await self.hh.count_accept(count_id, found)
                    self.stats.accepted += 1
                    return
                if count["state"] == "recount":
                    self.stats.recounts += 1
                else:
                    self.stats.counts += 1
            except HandheldError as exc:
                if exc.status not in (404, 409):
                    raise
                # Closed meanwhile, or its units are on a batch being picked: later.
                self._later[count_id] = loop.time() + 1.0


class OutboundDock(Person):
    role = "outbound"

    def __init__(self, crew: Crew) -> None:
        super().__init__("outbound", crew)

    async def run(self) -> None:
        queue = self.crew.sim.conveyor.queue("outbound")
        while True:
            delivery = await queue.get()
            parcel = self.world.parcels.get(_sscc_of(delivery.tote))
            if parcel is None:
                self.world.parked.append(delivery.tote)
                self.stats.parked += 1
                continue
            self.world.outbound.append(parcel)
            self.stats.parcels_out += 1


def _sscc_of(code: str) -> str:
    return code[2:] if len(code) == 20 and code.startswith("00") else code


class ExceptionDesk(Person):
    """Whatever the conveyor sends to the exception lane is looked at here."""

    role = "exception"
    ROUND_AGAIN: ClassVar[dict[str, str]] = {
        "picked": "tote",
        "qc_passed": "tote",
        "packed": "parcel",
        "allocated": "parcel",
    }

    def __init__(self, crew: Crew, *, max_rounds: int = 3) -> None:
        super().__init__("exception-desk", crew)
        self.max_rounds = max_rounds
        self._rounds: Counter[str] = Counter()

    async def run(self) -> None:
        queue = self.crew.sim.conveyor.queue("exception")
        while True:
            delivery = await queue.get()
            await self._look_at(delivery.tote)

    async def _look_at(self, code: str) -> None:
        tote = self.world.totes.get(code)
        parcel = self.world.parcels.get(_sscc_of(code))
        order_id = tote.order_id if tote is not None else parcel.order_id if parcel else None
        state = None
        if order_id is not None:
            try:
                state = (await self.hh.order(order_id))["state"]
            except HandheldError:
                state = None
        kind = self.ROUND_AGAIN.get(state or "")
        self._rounds[code] += 1
        if kind is None or self._rounds[code] > self.max_rounds:
            self.log.info("parked in the exception area", code=code, order=order_id, state=state)
            self.world.parked.append(code)
            self.stats.parked += 1
            return
        await self.pace.work(self.pace.timings.tote_on_conveyor)
        infeed = self.crew.tote_infeed if kind == "tote" else self.crew.parcel_infeed
        infeed.arrive(code)
        self.stats.sent_round_again += 1


def crew_for(crew: Crew) -> list[Person]:
    """Everybody a floor needs: a person per station, plus goods-in, outbound, exceptions."""
    people: list[Person] = []
    makers: dict[str, Callable[[Station, Crew], Person]] = {
        "pick": Picker,
        "qc": QcOperator,
        "pack": Packer,
    }
    for station in crew.sim.floor.stations:
        make = makers.get(station.kind)
        if make is not None:
            people.append(make(station, crew))
    people += [GoodsIn(crew), StockController(crew), OutboundDock(crew), ExceptionDesk(crew)]
    return people
