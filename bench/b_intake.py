"""Order intake over HTTP against a bare validate-and-insert endpoint, and a flash sale.

Same run, same machine, same load generator, same database: ``wcs api`` (2 workers)
and the baseline of ``bench.bare_intake`` (a FastAPI endpoint that validates the same
body with the same pydantic model and inserts one row through an asyncpg pool),
each driven closed loop (a fixed number of requests in flight) on one hot SKU and on
many SKUs; the ratio of their rates is the figure that counts on a shared machine,
with the CPU per order of the API workers and of PostgreSQL beside it. Latency is read
open loop at half the intake's hot-SKU rate. The flash sale sends 10,000 single-unit
orders for one SKU with 1,000 in stock as fast as the API takes them, on PostgreSQL
and on SQLite: exactly 1,000 must be reserved, the rest backordered (or refused, with
``WCS_INTAKE__SHORTAGE=refuse``), no error, and stock must agree with the
reservations afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from bench.http_load import LoadClient, Reply
from bench.load import no_collector_pauses
from bench.meter import Meter, Usage
from bench.report import BenchOptions, Section, summarize_ms
from bench.support import Server, api_server, free_port, scratch_postgres, server_process

NAME = "order intake vs a bare validate-and-insert endpoint; flash sale (PostgreSQL, SQLite)"
ADMIN = "bench-admin-token-0123456789abcdef"
SKUS = 200
HOT = "HOT-0001"
FLASH = "FLASH-0001"
IN_FLIGHT = 64
INTAKE_PATH = "/api/v1/orders"
BARE_PATH = "/orders"

T = TypeVar("T")


def order(i: int, hot: bool, sku: str = HOT) -> dict[str, Any]:
    if hot:
        lines = [{"sku": sku, "qty": 1}]
    else:
        lines = [{"sku": f"SKU-{(i * 7 + k) % SKUS:04d}", "qty": 1} for k in range(1 + i % 3)]
    return {
        "external_id": f"bench-{i}",
        "customer": {"name": "Bench Customer", "phone": "+86 138 0013 8000"},
        "address": {
            "line1": "1 Test Road",
            "city": "Shanghai",
            "postal_code": "200000",
            "country": "CN",
        },
        "lines": lines,
        "priority": i % 10,
        "service": "standard",
    }


async def seed(client: LoadClient, stock: dict[str, int]) -> None:
    """Each SKU at a pick location of its own with ``qty`` units (a receipt is at most
    1,000,000 units)."""
    for n, (sku, qty) in enumerate(stock.items()):
        code = f"A-{n // 30 + 1:02d}-{n % 30 + 1:02d}-1"
        replies = [
            await client.put(
                f"/api/v1/skus/{sku}", {"name": sku, "weight_g": 200, "dims_mm": [100, 100, 50]}
            ),
            await client.put(
                f"/api/v1/locations/{code}",
                {"zone": "pick", "aisle": n // 30 + 1, "bay": n % 30 + 1, "level": 1},
            ),
        ]
        while qty > 0:
            part = min(qty, 1_000_000)
            replies.append(
                await client.post(
                    "/api/v1/inventory/receipts", {"sku": sku, "location": code, "qty": part}
                )
            )
            qty -= part
        for reply in replies:
            if reply.status >= 300:
                raise RuntimeError(f"seeding failed: HTTP {reply.status} {reply.body[:300]!r}")


@dataclass
class Target:
    """An endpoint under load: the API or the bare baseline."""

    name: str
    client: LoadClient
    path: str
    server: Server

    async def post(self, body: dict[str, Any], key: str) -> Reply:
        return await self.client.post(self.path, body, {"Idempotency-Key": key})


@dataclass
class Loop:
    rate: float
    latencies: list[float]
    statuses: Counter[int]
    seconds: float

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in (200, 201))


async def closed_loop(
    target: Target, make: Callable[[int], dict[str, Any]], start: int, count: int, prefix: str
) -> Loop:
    next_i = start
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def worker() -> None:
        nonlocal next_i
        while next_i < start + count:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            reply = await target.post(make(i), f"{prefix}{i}")
            latencies.append(time.perf_counter() - t0)
            statuses[reply.status] += 1

    with no_collector_pauses():
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        took = time.perf_counter() - began
    return Loop(count / took, latencies, statuses, took)


async def open_loop(
    target: Target,
    make: Callable[[int], dict[str, Any]],
    start: int,
    rate: float,
    seconds: float,
    prefix: str,
) -> Loop:
    """Send at a fixed rate whatever the answers; latency includes any queueing."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        reply = await target.post(make(i), f"{prefix}{i}")
        latencies.append(time.perf_counter() - t0)
        statuses[reply.status] += 1

    total = int(rate * seconds)
    tasks: list[asyncio.Task[None]] = []
    # A full collection of this process's heap (the replies of every round so far)
    # took 80 ms here: latency of the load generator, not of what it measures.
    with no_collector_pauses():
        began = time.perf_counter()
        for n in range(total):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(start + n), name=f"bench-order-{start + n}"))
        await asyncio.gather(*tasks)
        took = time.perf_counter() - began
    return Loop(total / took, latencies, statuses, took)


async def metered(meter: Meter, step: Awaitable[T]) -> tuple[T, Usage]:
    await meter.start()
    result = await step
    return result, await meter.stop()


def _per_order_ms(seconds: float, orders: int) -> float:
    return seconds / max(1, orders) * 1000


async def drain_outbox(db_url: str, limit_s: float = 300.0) -> tuple[int, float]:
    """Wait until the relay has published every outbox row: (rows waiting at the start,
    seconds it took). Intake's messages are part of its work; the next step must not
    run beside their publication."""
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        sql = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        began = time.perf_counter()
        backlog = waiting = int(await conn.fetchval(sql))
        while waiting and time.perf_counter() - began < limit_s:
            await asyncio.sleep(0.1)
            waiting = int(await conn.fetchval(sql))
    finally:
        await conn.close()
    return backlog, time.perf_counter() - began


@dataclass
class Tally:
    """One target's closed-loop rounds added up."""

    orders: int = 0
    seconds: float = 0.0
    errors: int = 0
    api_cpu_s: float = 0.0
    pg_cpu_s: float = 0.0
    busy: float = 0.0  # machine busy, weighted by time
    latencies: list[float] = field(default_factory=list)

    def add(self, loop: Loop, usage: Usage, orders: int) -> None:
        self.orders += orders
        self.seconds += loop.seconds
        self.errors += loop.errors
        self.api_cpu_s += usage.processes_cpu_s
        self.pg_cpu_s += usage.postgres_cpu_s
        self.busy += usage.machine_busy * loop.seconds
        self.latencies += loop.latencies

    @property
    def rate(self) -> float:
        return self.orders / self.seconds


async def compare(
    section: Section, intake: Target, bare: Target, db_url: str, n: int, rounds: int
) -> float:
    """Closed loop on one hot SKU and on many. Other work on a shared machine comes and
    goes, so the two endpoints take turns in ``rounds`` short rounds (the order
    alternating) and each round's ratio is kept: the median ratio is the figure.
    Returns the intake's hot-SKU rate."""
    hot_rate = 0.0
    chunk = n // rounds
    for label, hot in (("one hot SKU", True), ("200 SKUs", False)):
        make = functools.partial(order, hot=hot)
        tallies = {bare.name: Tally(), intake.name: Tally()}
        ratios: list[float] = []
        backlog = drained = 0.0
        for target in (bare, intake):
            await closed_loop(target, make, 0, 256, f"{target.name}-{label[:3]}-w")  # warm-up
        for r in range(rounds):
            rates: dict[str, float] = {}
            for target in (bare, intake) if r % 2 == 0 else (intake, bare):
                meter = Meter(target.server.workers(), db_url)
                prefix = f"{target.name}-{label[:3]}-{r}-"
                loop, usage = await metered(meter, closed_loop(target, make, 0, chunk, prefix))
                tallies[target.name].add(loop, usage, chunk)
                rates[target.name] = loop.rate
                # Intake's messages are part of its work: published before the next turn.
                waiting, took = await drain_outbox(db_url)
                backlog, drained = max(backlog, waiting), max(drained, took)
            ratios.append(rates[intake.name] / rates[bare.name])
        b, k = tallies[bare.name], tallies[intake.name]
        ratio = statistics.median(ratios)
        section.add(f"{label}: bare endpoint orders/s ({IN_FLIGHT} in flight)", b.rate, "/s")
        section.add(f"{label}: intake orders/s ({IN_FLIGHT} in flight)", k.rate, "/s")
        section.add(
            f"{label}: intake / bare orders/s, median of {rounds} rounds",
            ratio,
            "x",
            ">= 0.5" if hot else "",
            ratio >= 0.5 if hot else None,
        )
        section.add(
            f"{label}: intake / bare per round (lowest - highest)",
            f"{min(ratios):.2f} - {max(ratios):.2f}",
            "x",
        )
        bs, ks = summarize_ms(b.latencies), summarize_ms(k.latencies)
        section.add(
            f"{label}: p99 bare / intake (closed loop)", f"{bs['p99']:.0f} / {ks['p99']:.0f}", "ms"
        )
        api_ms = [_per_order_ms(t.api_cpu_s, t.orders) for t in (b, k)]
        pg_ms = [_per_order_ms(t.pg_cpu_s, t.orders) for t in (b, k)]
        section.add(
            f"{label}: CPU per order, API workers bare / intake",
            f"{api_ms[0]:.2f} / {api_ms[1]:.2f}",
            "ms",
        )
        section.add(
            f"{label}: CPU per order, PostgreSQL bare / intake",
            f"{pg_ms[0]:.2f} / {pg_ms[1]:.2f}",
            "ms",
        )
        section.add(
            f"{label}: machine busy bare / intake",
            f"{b.busy / b.seconds:.0%} / {k.busy / k.seconds:.0%}",
            "",
        )
        section.add(
            f"{label}: intake's outbox rows unpublished after a round / drained in (most)",
            f"{backlog:.0f} / {drained:.1f}",
            "s",
        )
        section.add(
            f"{label}: errors bare / intake",
            f"{b.errors} / {k.errors}",
            "",
            "0",
            b.errors + k.errors == 0,
        )
        if hot:
            hot_rate = k.rate
    return hot_rate


async def latency(
    section: Section, intake: Target, bare: Target, rate: float, seconds: float
) -> None:
    make = functools.partial(order, hot=True)
    b = await open_loop(bare, make, 0, rate, seconds / 2, "bare-open-")
    k = await open_loop(intake, make, 0, rate, seconds, "intake-open-")
    ks, bs = summarize_ms(k.latencies), summarize_ms(b.latencies)
    section.add(f"open loop at {rate:.0f}/s (half the hot-SKU rate): intake achieved", k.rate, "/s")
    section.add(f"open loop at {rate:.0f}/s: intake p50", ks["p50"], "ms")
    section.add(f"open loop at {rate:.0f}/s: intake p99", ks["p99"], "ms", "< 50", ks["p99"] < 50)
    section.add(f"open loop at {rate:.0f}/s: bare p99", bs["p99"], "ms")
    section.add(f"open loop at {rate:.0f}/s: errors", k.errors, "", "0", k.errors == 0)


# --- flash sale ----------------------------------------------------------------------


@dataclass
class Reconciled:
    states: Counter[str]
    on_hand: int
    reserved: int
    held: int  # units in active reservations


PG_RECONCILE = (
    "SELECT (SELECT on_hand FROM stock WHERE sku = $1),"
    " (SELECT reserved FROM stock WHERE sku = $1),"
    " (SELECT coalesce(sum(qty), 0) FROM reservations WHERE sku = $1 AND state = 'active')"
)
PG_STATES = (
    "SELECT o.state, count(*) FROM orders o"
    " WHERE EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.sku = $1)"
    " GROUP BY o.state"
)


async def reconcile_pg(db_url: str) -> Reconciled:
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        on_hand, reserved, held = await conn.fetchrow(PG_RECONCILE, FLASH)
        states = Counter({r[0]: int(r[1]) for r in await conn.fetch(PG_STATES, FLASH)})
    finally:
        await conn.close()
    return Reconciled(states, int(on_hand), int(reserved), int(held))


def reconcile_sqlite(path: str) -> Reconciled:
    sql = PG_RECONCILE.replace("$1", "?")
    with contextlib.closing(sqlite3.connect(path)) as db:
        on_hand, reserved, held = db.execute(sql, (FLASH,) * 3).fetchone()
        states = Counter(dict(db.execute(PG_STATES.replace("$1", "?"), (FLASH,)).fetchall()))
    return Reconciled(states, int(on_hand), int(reserved), int(held))


async def flash_sale(
    section: Section,
    label: str,
    intake: Target,
    orders_n: int,
    units: int,
    reconcile: Callable[[], Awaitable[Reconciled]],
) -> None:
    await seed(intake.client, {FLASH: units})
    sale = await closed_loop(intake, lambda i: order(i, True, FLASH), 0, orders_n, "flash-")
    refused = sale.statuses.get(409, 0)
    errors = sale.errors - refused
    after = await reconcile()
    backordered = after.states.get("backordered", 0)
    reserved = after.states.get("reserved", 0)
    exact = (
        reserved == units
        and backordered + refused == orders_n - units
        and after.reserved == after.held == units
        and after.on_hand == units
    )
    section.add(
        f"flash sale {label}: {orders_n:,} orders, {units:,} in stock: drain time",
        sale.seconds,
        "s",
    )
    section.add(f"flash sale {label}: orders/s", sale.rate, "/s")
    section.add(f"flash sale {label}: reserved", reserved, "", f"{units}", reserved == units)
    section.add(
        f"flash sale {label}: backordered / refused",
        f"{backordered} / {refused}",
        "",
        f"{orders_n - units} in all",
        backordered + refused == orders_n - units,
    )
    section.add(f"flash sale {label}: errors", errors, "", "0", errors == 0)
    section.add(
        f"flash sale {label}: stock reserved = units in reservations",
        f"{after.reserved} = {after.held}",
        "",
        "reconciled",
        exact,
    )
    s = summarize_ms(sale.latencies)
    section.add(f"flash sale {label}: p99 ({IN_FLIGHT} in flight)", s["p99"], "ms")


# --- wiring --------------------------------------------------------------------------


def api_env(db_url: str, mqtt_url: str) -> dict[str, str]:
    return {
        "WCS_DATABASE_URL": db_url,
        "WCS_MQTT_URL": mqtt_url,
        "WCS_ADMIN_TOKEN": ADMIN,
        "WCS_EMBEDDED_BROKER": "false",
        "WCS_LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def bare_server(db_url: str, workers: int) -> Iterator[Server]:
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            from bench.bare_intake import TABLE

            await conn.execute(TABLE)
        finally:
            await conn.close()

    asyncio.run(create())
    port = free_port()
    args = [
        "-m", "uvicorn", "bench.bare_intake:app_from_env", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "75",
    ]  # fmt: skip
    with server_process(args, {"WCS_BENCH_BARE_DSN": dsn}, port) as server:
        yield server


async def drive_pg(section: Section, db_url: str, api: Server, bare: Server, quick: bool) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with LoadClient(api.url, headers) as ac, LoadClient(bare.url) as bc:
        await seed(ac, {HOT: 5_000_000, **{f"SKU-{n:04d}": 1_000_000 for n in range(SKUS)}})
        intake = Target("intake", ac, INTAKE_PATH, api)
        baseline = Target("bare", bc, BARE_PATH, bare)
        n, rounds = (1_600, 2) if quick else (8_000, 8)
        hot_rate = await compare(section, intake, baseline, db_url, n, rounds)
        rate = float(max(10, round(hot_rate / 2, -1)))
        await latency(section, intake, baseline, rate, 3.0 if quick else 10.0)
        await drain_outbox(db_url)
        orders_n, units = (1_000, 100) if quick else (10_000, 1_000)
        await flash_sale(
            section, "PostgreSQL", intake, orders_n, units, lambda: reconcile_pg(db_url)
        )


async def drive_sqlite(section: Section, path: str, api: Server, quick: bool) -> None:
    async with LoadClient(api.url, {"Authorization": f"Bearer {ADMIN}"}) as ac:
        intake = Target("intake", ac, INTAKE_PATH, api)
        orders_n, units = (1_000, 100) if quick else (10_000, 1_000)

        async def reconcile() -> Reconciled:
            return reconcile_sqlite(path)

        await flash_sale(section, "SQLite", intake, orders_n, units, reconcile)


def run(opts: BenchOptions) -> Section:
    from bench.brokers import bench_broker
    from wcs.persistence.migrate import upgrade

    section = Section(NAME)
    workers = int(os.environ.get("WCS_BENCH_API_WORKERS", "2"))
    busy0 = _loadavg()
    with bench_broker(opts) as mqtt_url:
        with (
            scratch_postgres(opts.pg_url) as url,
            api_server(api_env(url, mqtt_url), workers=workers) as api,
            bare_server(url, workers) as bare,
        ):
            asyncio.run(drive_pg(section, url, api, bare, opts.quick))
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "flash.db")
            url = f"sqlite+aiosqlite:///{path}"
            upgrade(url)
            with api_server(api_env(url, mqtt_url), workers=workers) as api:
                asyncio.run(drive_sqlite(section, path, api, opts.quick))
    section.notes.append(
        f"{workers} API worker processes for intake and for the bare endpoint, load generator "
        f"in the benchmark process ({IN_FLIGHT} requests in flight), same machine"
    )
    section.notes.append(f"load average before / after: {busy0} / {_loadavg()}")
    return section


def _loadavg() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])
