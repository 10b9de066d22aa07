"""``wcs demo``: a whole simulated shift on embedded defaults, in one command.

What runs, in start order (everything stops in reverse, on success, error or Ctrl-C):

====================  ================================================================
database              SQLite file (``var/demo.db``, fresh unless ``keep``), migrated
MQTT broker           the one answering at ``WCS_MQTT_URL``, else an embedded amqtt
fake carrier          ``wcs.carriers.fake_server`` as its own process, on a free port
API                   uvicorn serving the real app in a thread of its own
simulated floor       :class:`device_sim.SimFloor` for the floor file, on free ports
drivers               one per device, over the simulators' real wire protocols
controller            :class:`controller.runtime.Controller`, allocation loop included
people                :class:`device_sim.scenario.Shift`: pickers, QC, packers ...
shop                  posts the planned orders to ``POST /api/v1/orders`` over time
====================  ================================================================

Catalogue, locations, pick faces and opening stock go in through the API (and onto
the simulated shelves): each stocked article has its pick faces, filled to their
maximum, and the rest on a reserve shelf. Then the shelves drift from the books
(:class:`device_sim.world.Drift`: units lost, units put away at another location of
the article), as they do between counts. During the shift the pick station fills
its faces from reserve and counts them between batches (on a short pick, a face
picked empty, and the ABC schedule, compressed so that every face comes due within
the shift), and a stock controller counts the reserve and makes the recounts. The
shift ends when every order is in a final state (allocated, exception or
cancelled), then the KPI table is printed. With ``serve`` everything
keeps running and the status page URL is printed until Ctrl-C.

Logs go to a file beside the database, so the progress display stays readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from controller.session import end_sessions
from demo.audit import audit, counted_findings
from demo.delivery import DeliveryDay, DeliveryStats
from demo.report import FINAL, STATE_ORDER, ShiftReport, collect, kpi_table
from demo.shop import PlannedOrder, Shop, plan_orders
from device_sim.floor import SimFloor, SimOptions
from device_sim.handheld import Handheld
from device_sim.scenario import Rates, Shift, ShiftOptions
from device_sim.world import Drift, Drifted, World, plan_slotting
from drivers.base import Driver
from drivers.options import DriverOptions
from drivers.runner import build_drivers, supervise
from wcs.children import spawn_async
from wcs.contract.topics import Topics
from wcs.errors import ConfigError, WcsError
from wcs.floor import DiverterDevice, Floor, ModbusLink, PtlDevice, load_floor
from wcs.logs import configure_logging
from wcs.mqtt.broker import ensure_broker
from wcs.mqtt.client import make_client
from wcs.persistence.db import make_engine
from wcs.persistence.migrate import upgrade
from wcs.persistence.tables import shipments
from wcs.services.auth import issue_token
from wcs.services.kpis import orders_by_state
from wcs.settings import Settings, load_settings
from wcs.timeutil import utcnow

log = logging.getLogger(__name__)

DEFAULT_FLOOR = Path(__file__).resolve().parent.parent / "floors" / "sample.yaml"
Outcome = Literal["done", "failed", "stalled", "interrupted"]


@dataclass(frozen=True)
class DemoOptions:
    orders: int = 300
    seed: int = 1
    # How many times faster than real time people work.
    speed: float = 60.0
    serve: bool = False
    port: int | None = None
    db_path: Path = Path("var/demo.db")
    keep: bool = False
    floor_path: Path = DEFAULT_FLOOR
    # Site id (the MQTT topic root); by default one of its own per run, so a run never
    # hears another's devices on a shared broker.
    site: str | None = None
    rates: Rates = field(default_factory=Rates)
    invalid_share: float = 0.03
    backorder_share: float = 0.04
    # Mean seconds between two orders from the shop at speed 1 (an evening peak).
    arrival_s: float = 6.0
    # A shift that changes no order's state for this long is declared stalled.
    stall_s: float = 60.0
    live: bool = True  # redraw the progress in place (off: print it once at the end)
    # After the shift, hand the parcels over and deliver them (carriers, own fleet,
    # sign-offs), so the delivery and satisfaction KPIs have values.
    deliver: bool = True
    log_level: str = "WARNING"
    # How far the shelves drifted from the books before the shift.
    drift: Drift = field(default_factory=lambda: Drift(lost=0.2, misplaced=0.1))
    # Counts by rule (short pick, face picked empty, ABC schedule); off: none.
    counts: bool = True
    # The ABC schedule's period; None: twice the time the shop takes to place the
    # orders, at least 20 s, so the faces come due within the shift (fast movers at
    # least twice) instead of once a week.
    count_period_s: float | None = None


@dataclass
class DemoResult:
    outcome: Outcome
    report: ShiftReport
    status_url: str
    world: World
    detail: str = ""
    links: dict[str, str] = field(default_factory=dict)
    drifted: list[Drifted] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- pieces ----------------------------------------------------------------------------------


async def _in_thread(target: Callable[[], object], name: str) -> None:
    """Run ``target()`` in a thread of its own and wait for it without blocking the loop.

    A plain thread we join, not the loop's executor: nothing is left running after."""
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    error: list[BaseException] = []

    def body() -> None:
        try:
            target()
        except BaseException as exc:  # handed to the waiting coroutine
            error.append(exc)
        finally:
            loop.call_soon_threadsafe(finished.set)

    thread = threading.Thread(target=body, name=name)
    thread.start()
    await finished.wait()
    thread.join()
    if error:
        raise error[0]


def _fresh_database(path: Path, url: str, keep: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    upgrade(url)


async def prepare_database(path: Path, *, keep: bool) -> str:
    """A migrated SQLite file, emptied first unless ``keep``."""
    url = f"sqlite+aiosqlite:///{path}"
    await _in_thread(lambda: _fresh_database(path, url, keep), "demo-migrations")
    return url


@contextlib.asynccontextmanager
async def fake_carrier(seed: int, log_path: Path, *, append: bool) -> AsyncIterator[str]:
    """The fake carrier as its own process (the adapter talks real HTTP to it)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "wcs.carriers.fake_server", "--port", str(port)]
    with log_path.open("ab" if append else "wb") as out:
        proc = await spawn_async(
            *args, "--seed", str(seed), stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    try:
        async with httpx.AsyncClient(timeout=0.5) as client:
            deadline = time.monotonic() + 20
            while True:
                if proc.returncode is not None:
                    raise ConfigError(f"fake carrier exited with {proc.returncode}; see {log_path}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise ConfigError(f"fake carrier did not come up; see {log_path}")
                await asyncio.sleep(0.05)
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@contextlib.asynccontextmanager
async def api_server(settings: Settings, port: int) -> AsyncIterator[str]:
    """The real app under uvicorn, in its own thread and event loop.

    Its own loop keeps HTTP answers quick while the main loop is busy with the floor,
    and a thread other than the main one leaves Ctrl-C to us."""
    import uvicorn

    from api.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def serve() -> None:
        try:
            server.run()
        finally:
            loop.call_soon_threadsafe(stopped.set)

    thread = threading.Thread(target=serve, name="demo-api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if stopped.is_set() or time.monotonic() > deadline:
                raise ConfigError(f"the API did not start on 127.0.0.1:{port}; is the port free?")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await stopped.wait()
        thread.join()


def _fast_polling(floor: Floor, poll_s: float) -> Floor:
    """Modbus devices polled more often than a real floor needs: a sped-up shift
    should not wait on the poll interval at every lit slot and divert."""
    devices = []
    for device in floor.devices:
        if isinstance(device, PtlDevice | DiverterDevice) and isinstance(device.link, ModbusLink):
            link = device.link.model_copy(update={"poll_interval_s": poll_s})
            device = device.model_copy(update={"link": link})
        devices.append(device)
    return floor.model_copy(update={"devices": devices})


@contextlib.asynccontextmanager
async def running_drivers(
    floor: Floor, settings: Settings, options: DriverOptions
) -> AsyncIterator[list[Driver]]:
    drivers = build_drivers(floor, settings, options)

    tasks = [asyncio.create_task(supervise(d), name=f"driver:{d.device_id}") for d in drivers]
    try:
        async with asyncio.timeout(20):
            for driver in drivers:
                await driver.online.wait()
        yield drivers
    except TimeoutError:
        offline = [d.device_id for d in drivers if not d.online.is_set()]
        raise ConfigError(f"drivers could not reach {', '.join(offline)}") from None
    finally:
        for task in tasks:
            task.cancel()
        pending: set[asyncio.Task[None]] = set(tasks)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=2.0)
            for task in pending:
                # A library that swallowed the cancellation must not hang the shutdown.
                log.warning("%s did not stop; cancelling it again", task.get_name())
                task.cancel()


async def clear_retained(settings: Settings, quiet_s: float = 0.5) -> int:
    """Remove the run's retained messages (device statuses, order states) from a shared
    broker; returns how many. The run's site is used once, so they are only clutter."""
    root = f"wcs/v1/{settings.site}/"
    topics: set[str] = set()
    async with make_client(settings.mqtt) as client:
        await client.subscribe(f"{root}#", qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(quiet_s):
                async for message in client.messages:
                    if message.retain and message.payload:
                        topics.add(str(message.topic))
        for topic in sorted(topics):
            await client.publish(topic, b"", qos=1, retain=True)
    return len(topics)


async def seed_catalogue(client: httpx.AsyncClient, world: World) -> None:
    """Articles, pick locations and opening stock, through the API and onto the shelves."""

    async def call(method: str, path: str, body: dict[str, object]) -> None:
        response = await client.request(method, path, json=body)
        if response.status_code not in (200, 201):
            raise ConfigError(f"{method} {path}: {response.status_code} {response.text[:200]}")

    for article in world.slotting.articles:
        await call(
            "PUT",
            f"/api/v1/skus/{article.sku}",
            {
                "name": article.name,
                "weight_g": article.weight_g,
                "dims_mm": list(article.dims_mm),
                "barcode": article.barcode,
            },
        )
    for location in sorted(world.shelves):
        _, aisle, bay, level = location.split("-")
        zone = "reserve" if location in world.slotting.reserves else "pick"
        await call(
            "PUT",
            f"/api/v1/locations/{location}",
            {"zone": zone, "aisle": int(aisle), "bay": int(bay), "level": int(level)},
        )
    for face in world.slotting.faces:
        await call(
            "PUT",
            f"/api/v1/faces/{face.location}",
            {"sku": face.sku, "min_qty": face.min_qty, "max_qty": face.max_qty},
        )
    for location, qty in sorted(world.slotting.opening.items()):
        if qty > 0:
            world.put_away(location, qty)
            sku = world.shelves[location].sku
            await call(
                "POST", "/api/v1/inventory/receipts", {"sku": sku, "location": location, "qty": qty}
            )


class ProgressView:
    """Orders by state, moving live, and a bar of how many reached a final state."""

    def __init__(self, total: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]shift[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("orders settled"),
            TimeElapsedColumn(),
        )
        self.task = self.progress.add_task("orders", total=total)
        self.counts: dict[str, int] = {}

    def update(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.progress.update(self.task, completed=sum(counts.get(s, 0) for s in FINAL))

    def __rich__(self) -> Group:
        states = Text()
        for state in STATE_ORDER:
            n = self.counts.get(state, 0)
            if n:
                style = "green" if state == "allocated" else "red" if state == "exception" else ""
                states.append(f"{state} {n}  ", style=style)
        return Group(self.progress, states)


@contextlib.contextmanager
def _signals_set(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread (tests)
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _log_to_file(path: Path, level: str, *, append: bool) -> None:
    configure_logging(level, stream=path.open("a" if append else "w", encoding="utf-8"))


# -- the shift ---------------------------------------------------------------------------------


async def run_demo(
    options: DemoOptions, *, console: Console | None = None, base: Settings | None = None
) -> DemoResult:
    console = console or Console()
    base = base or load_settings()
    options.db_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = options.db_path.with_suffix(".log")
    if options.live:
        _log_to_file(log_path, options.log_level, append=options.keep)
    floor = load_floor(options.floor_path)
    stop = asyncio.Event()
    began = time.monotonic()
    started_at = utcnow()
    url = await prepare_database(options.db_path, keep=options.keep)
    port = options.port or free_port()
    admin = secrets.token_urlsafe(24)
    speed = options.speed
    console.print(
        f"[bold]wcs demo[/bold]: {options.orders} orders, seed {options.seed}, speed x{speed:g}; "
        f"database {options.db_path}, logs {log_path}"
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(_signals_set(stop))
        embedded = await stack.enter_async_context(
            ensure_broker(base.mqtt, allow_embedded=base.embedded_broker)
        )
        site = options.site or f"demo-{secrets.token_hex(3)}"
        carrier_url = await stack.enter_async_context(
            fake_carrier(
                options.seed, options.db_path.with_suffix(".carrier.log"), append=options.keep
            )
        )
        settings = load_settings(
            database_url=url,
            mqtt_url=base.mqtt_url,
            embedded_broker=base.embedded_broker,
            site=site,
            admin_token=admin,
            carrier_url=carrier_url,
            floor_file=options.floor_path,
            controller=base.controller.model_copy(
                update={"wave_interval_s": 1.0, "allocate_interval_s": 0.5}
            ),
            # A laptop demo bound to loopback: the page opens without a token.
            monitoring=base.monitoring.model_copy(update={"status_public": True}),
            pod_dir=options.db_path.parent / "demo-pod",
            # A demo day has a few dozen own-fleet parcels: the solver needs little time.
            fleet=base.fleet.model_copy(update={"solve_budget_s": 2.0}),
            inventory=base.inventory.model_copy(
                update={
                    "counts": options.counts,
                    "count_period_s": options.count_period_s
                    or max(20.0, 2 * options.orders * options.arrival_s / speed),
                }
            ),
        )
        where = "embedded amqtt" if embedded else "the broker"
        console.print(f"MQTT: {where} at {settings.mqtt.host}:{settings.mqtt.port}, site {site}")
        if not embedded:
            stack.push_async_callback(clear_retained, settings)
        engine = make_engine(url)
        stack.push_async_callback(engine.dispose)
        floor_token = await issue_token(engine, "demo-floor", ["supervisor", "device"])
        shop_token = await issue_token(engine, "demo-shop", ["customer_service"])
        dispatch_token = await issue_token(engine, "demo-dispatch", ["dispatcher"])
        api_url = await stack.enter_async_context(api_server(settings, port))

        sim = await stack.enter_async_context(
            SimFloor(
                floor,
                SimOptions(ephemeral_ports=True, conveyor_travel_s=min(0.5, 10.0 / speed)),
            )
        )
        served = _fast_polling(sim.floor, 0.01)
        await stack.enter_async_context(running_drivers(served, settings, DriverOptions()))
        controller = Controller(settings, served, instance="demo")
        # The run's site is not coming back: a broker would keep queueing for its session.
        stack.push_async_callback(
            end_sessions, settings.mqtt, controller.topics, list(controller.plan.specs)
        )
        await stack.enter_async_context(controller)

        slotting = plan_slotting(
            sorted(
                code for d in floor.devices if isinstance(d, PtlDevice) for code in d.slots.values()
            ),
            expected_orders=options.orders,
            seed=options.seed,
            reserve=True,
        )
        world = World(slotting, options.seed)
        shop_client = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=api_url, headers={"Authorization": f"Bearer {shop_token}"}, timeout=30
            )
        )
        floor_client = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=api_url, headers={"Authorization": f"Bearer {floor_token}"}, timeout=30
            )
        )
        await seed_catalogue(floor_client, world)
        drifted = world.drift(options.drift)
        if drifted:
            lost = sum(d.units for d in drifted if d.to is None)
            misplaced = sum(d.units for d in drifted if d.to is not None)
            console.print(
                f"shelves drifted from the books at {len({d.location for d in drifted})} "
                f"locations: {lost} units lost, {misplaced} misplaced; counts "
                f"{'on' if options.counts else 'off'}"
            )
        planned = plan_orders(
            options.orders,
            slotting,
            seed=options.seed,
            invalid_share=options.invalid_share,
            backorder_share=options.backorder_share,
        )
        handheld = await stack.enter_async_context(Handheld(api_url, floor_token))
        shift = await stack.enter_async_context(
            Shift(sim, world, handheld, ShiftOptions(speed=speed, rates=options.rates))
        )
        shop = Shop(shop_client, world)
        shop_task = asyncio.create_task(
            shop.run(planned, options.arrival_s / speed), name="demo-shop"
        )
        stack.push_async_callback(_cancel, shop_task)

        outcome, detail = await _watch(
            engine, planned, shop, shop_task, shift, stop, options, console
        )
        findings = await audit(engine, world) if outcome == "done" else None
        delivered: DeliveryStats | None = None
        if outcome == "done" and options.deliver:
            console.print("delivery day: handover, carriers, own fleet, sign-offs…")
            carrier_client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=carrier_url, timeout=30)
            )
            day = DeliveryDay(
                engine,
                Topics(site),
                floor_client,
                carrier_client,
                admin_token=admin,
                dispatcher_token=dispatch_token,
                pod_dir=settings.pod_dir,
                seed=options.seed,
            )
            delivered = await day.run(api_url)
        report = await collect(
            engine,
            start=started_at - timedelta(seconds=1),
            end=utcnow() + timedelta(seconds=1),
            orders=len(planned),
            wall_s=time.monotonic() - began,
            device_events=controller.stats.applied,
            people=shift.stats,
            findings=findings,
            delivered=delivered,
        )
        if findings is not None:
            report.counted_piles, counted = await counted_findings(engine, world)
            report.findings = [*findings, *counted]
        links = await ready_links(engine, api_url, admin, floor)
        status_url = f"{api_url}/status"
        result = DemoResult(outcome, report, status_url, world, detail, links, drifted)
        _print_report(console, result)
        _print_links(console, links, serving=options.serve and outcome != "interrupted")
        if options.serve and outcome != "interrupted":
            await stop.wait()
        return result


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _watch(
    engine: AsyncEngine,
    planned: list[PlannedOrder],
    shop: Shop,
    shop_task: asyncio.Task[None],
    shift: Shift,
    stop: asyncio.Event,
    options: DemoOptions,
    console: Console,
) -> tuple[Outcome, str]:
    view = ProgressView(len(planned))
    last: dict[str, int] = {}
    changed = time.monotonic()
    with Live(view, console=console, auto_refresh=False, transient=False) as live:
        while True:
            async with engine.connect() as conn:
                counts = await orders_by_state(conn)
            view.update(counts)
            live.refresh()
            if counts != last:
                last, changed = counts, time.monotonic()
            settled = sum(counts.get(s, 0) for s in FINAL)
            if shop_task.done() and shop_task.exception() is not None:
                return "failed", f"the shop could not place orders: {shop_task.exception()}"
            if shift.failure is not None:
                return "failed", f"the shift is stuck: {shift.failure}"
            if shop.done.is_set() and settled >= len(planned):
                return "done", ""
            if stop.is_set():
                return "interrupted", "stopped by Ctrl-C"
            if time.monotonic() - changed > options.stall_s:
                stuck = {s: n for s, n in counts.items() if s not in FINAL}
                return "stalled", f"no order moved for {options.stall_s:g} s; waiting: {stuck}"
            await asyncio.sleep(0.25)


async def ready_links(
    engine: AsyncEngine, api_url: str, admin: str, floor: Floor
) -> dict[str, str]:
    """Links that open each screen signed in: tokens of their own, issued now."""
    links = {"status page (supervisor)": f"{api_url}/status?token={admin}"}
    station = next((s for s in floor.stations if s.kind in ("qc", "pack")), None)
    if station is not None:
        token = await issue_token(
            engine, f"station-{station.id}", [f"{station.kind}_operator"], subject=station.id
        )
        links[f"station screen {station.id}"] = f"{api_url}/station/{station.id}?token={token}"
    courier = await issue_token(engine, "courier-1", ["courier"], subject="courier-1")
    links["courier page (courier-1)"] = f"{api_url}/courier?token={courier}"
    async with engine.connect() as conn:
        tracking = await conn.scalar(
            select(shipments.c.tracking_no)
            .where(shipments.c.tracking_no.is_not(None))
            .order_by(shipments.c.id)
            .limit(1)
        )
    if tracking:
        links["customer tracking"] = f"{api_url}/api/v1/track/{tracking}"
    links["API reference"] = f"{api_url}/docs"
    return links


def _print_links(console: Console, links: dict[str, str], *, serving: bool) -> None:
    if serving:
        console.print("\n[bold]Ready to open[/bold] (each link signs you in; Ctrl-C stops all):")
    else:
        console.print(
            "\n[bold]Links[/bold] (this run has ended; `wcs demo --serve` keeps the next "
            "run's links open):"
        )
    width = max(len(name) for name in links)
    for name, url in links.items():
        console.print(f"  {name.ljust(width)}  {url}", soft_wrap=True)


def _print_report(console: Console, result: DemoResult) -> None:
    console.print()
    console.print(kpi_table(result.report))
    if result.outcome != "done":
        console.print(f"[red]shift {result.outcome}[/red]: {result.detail}")
    for finding in (result.report.findings or [])[:20]:
        console.print(f"[red]books:[/red] {finding}")


def main(options: DemoOptions) -> int:
    """Entry point of ``wcs demo``; returns the process exit code."""
    console = Console()
    try:
        result = asyncio.run(run_demo(options, console=console))
    except WcsError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        return 1
    if result.outcome == "interrupted":
        return 130
    return 0 if result.outcome == "done" and result.report.findings == [] else 1
