"""Order intake over HTTP on PostgreSQL: throughput and latency percentiles.

A scratch database is created and seeded; ``wcs api`` runs in its own process(es);
the load generator keeps a fixed number of requests in flight (closed loop) for the
throughput figure, then offers a fixed rate (open loop, sleeping between sends) for
the latency figure. Baseline in the same run: ``GET /healthz`` (the HTTP stack alone).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from bench.http_load import LoadClient, Reply, warm
from bench.report import BenchOptions, Section, summarize_ms
from bench.support import api_process, scratch_postgres

NAME = "order intake over HTTP (PostgreSQL)"
ADMIN = "bench-admin-token-0123456789abcdef"
SKUS = 200


def order(i: int) -> dict[str, Any]:
    return {
        "external_id": f"bench-{i}",
        "customer": {"name": "Bench Customer", "phone": "+86 138 0013 8000"},
        "address": {
            "line1": "1 Test Road",
            "city": "Shanghai",
            "postal_code": "200000",
            "country": "CN",
        },
        "lines": [{"sku": f"SKU-{(i * 7 + k) % SKUS:04d}", "qty": 1} for k in range(1 + i % 3)],
        "priority": i % 10,
        "service": "standard",
    }


async def seed(client: LoadClient) -> None:
    for n in range(SKUS):
        sku = f"SKU-{n:04d}"
        code = f"A-{n // 30 + 1:02d}-{n % 30 + 1:02d}-1"
        for reply in (
            await client.put(
                f"/api/v1/skus/{sku}",
                {"name": sku, "weight_g": 200, "dims_mm": [100, 100, 50]},
            ),
            await client.put(
                f"/api/v1/locations/{code}",
                {"zone": "pick", "aisle": n // 30 + 1, "bay": n % 30 + 1, "level": 1},
            ),
            await client.post(
                "/api/v1/inventory/receipts", {"sku": sku, "location": code, "qty": 100_000}
            ),
        ):
            if reply.status >= 300:
                raise RuntimeError(f"seeding failed: HTTP {reply.status} {reply.body[:300]!r}")


async def post_order(client: LoadClient, i: int, key: str) -> Reply:
    return await client.post("/api/v1/orders", order(i), {"Idempotency-Key": key})


async def closed_loop(
    client: LoadClient, start: int, count: int, concurrency: int
) -> tuple[float, list[float], int]:
    next_i = start
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal next_i, errors
        while next_i < start + count:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            r = await post_order(client, i, f"b{i}")
            latencies.append(time.perf_counter() - t0)
            if r.status not in (200, 201):
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - t0), latencies, errors


async def open_loop(
    client: LoadClient, start: int, rate: float, seconds: float, path: str | None = None
) -> tuple[list[float], int, float]:
    """Send at a fixed rate regardless of answers; latency includes any queueing."""
    latencies: list[float] = []
    errors = 0
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        if path is None:
            r = await post_order(client, i, f"o{i}")
            ok = r.status in (200, 201)
        else:
            r = await client.get(path)
            ok = r.status == 200
        latencies.append(time.perf_counter() - t0)
        if not ok:
            errors += 1

    total = int(rate * seconds)
    began = time.perf_counter()
    for n in range(total):
        due = began + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(start + n)))
    await asyncio.gather(*tasks)
    achieved = total / (time.perf_counter() - began)
    return latencies, errors, achieved


async def drive(base_url: str, quick: bool) -> Section:
    section = Section(NAME)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with LoadClient(base_url, headers) as c:
        await seed(c)
        await warm(c, 64)
        await closed_loop(c, 0, 200, 16)  # warm-up
        n = 1000 if quick else 6000
        tput, lat, errors = await closed_loop(c, 10_000, n, 64)
        s = summarize_ms(lat)
        section.add("closed loop: orders/s (64 in flight)", tput, "/s", ">= 800", tput >= 800)
        section.add("closed loop: p50", s["p50"], "ms")
        section.add("closed loop: p99", s["p99"], "ms")
        section.add("closed loop: errors", errors, "")
        # Latency is read below saturation (half the closed-loop rate): above it an
        # open loop only measures its own growing queue.
        rate = float(max(10, round(tput / 2, -1)))
        seconds = 3.0 if quick else 10.0
        base_lat, _, _ = await open_loop(c, 0, rate, seconds / 2, path="/healthz")
        b = summarize_ms(base_lat)
        lat, errors, achieved = await open_loop(c, 100_000, rate, seconds)
        s = summarize_ms(lat)
        section.add(f"open loop at {rate:.0f}/s: achieved", achieved, "/s")
        section.add(f"open loop at {rate:.0f}/s: p50", s["p50"], "ms")
        section.add(
            f"open loop at {rate:.0f}/s (half the closed-loop rate): p99",
            s["p99"],
            "ms",
            "< 50",
            s["p99"] < 50,
        )
        section.add(f"open loop at {rate:.0f}/s: errors", errors, "")
        section.add(f"baseline GET /healthz at {rate:.0f}/s: p50", b["p50"], "ms")
        section.add(f"baseline GET /healthz at {rate:.0f}/s: p99", b["p99"], "ms")
        section.add("intake p99 / baseline p99", s["p99"] / b["p99"], "x")
    return section


def run(opts: BenchOptions) -> Section:
    from bench.brokers import bench_broker

    workers = int(os.environ.get("WCS_BENCH_API_WORKERS", "2"))
    with scratch_postgres(opts.pg_url) as url, bench_broker(opts) as mqtt_url:
        env = {
            "WCS_DATABASE_URL": url,
            "WCS_MQTT_URL": mqtt_url,
            "WCS_ADMIN_TOKEN": ADMIN,
            "WCS_EMBEDDED_BROKER": "false",
            "WCS_LOG_LEVEL": "WARNING",
        }
        with api_process(env, workers=workers) as base_url:
            section = asyncio.run(drive(base_url, opts.quick))
    section.notes.append(
        f"{workers} API worker processes, load generator in the benchmark process, same machine"
    )
    return section
