"""Controller latency and throughput against a bare MQTT echo and a lean durable
responder, in one run.

Setup: a private Mosquitto (TCP_NODELAY); PostgreSQL scratch database; 50 pick
stations, each a PTL panel of 8 slots and a scanner, each with a batch of orders
already released and totes bound. The load generator plays the 50 pickers: at a
fixed total rate it scans the item of the slot currently lit at each station. The
controller (its own process, ``wcs controller``) records each unit durably (group
commit) and answers with PTL commands (display count-down, clear, next light). The
latency of a scan is from its publish to the first command whose ``cause`` is that
scan. The baselines, on the same broker and database at the same rates: a paho echo
(``bench.echo``), and a responder that commits each request to PostgreSQL before it
answers, in one round trip per micro-batch (``bench.durable``): what durability
itself costs here, apart from the controller's own work.

Two more responders, after the controller and on its database, write what a pick scan
writes without deciding anything (``bench.durable --rows``): one statement per table
per micro-batch, as the controller's store does, and all of it in one statement. They
are the floor under the controller's figures: what its rows cost, apart from its
decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import yaml

from bench.brokers import bench_broker
from bench.load import Probe, drive, read_in_callback
from bench.meter import Meter, Usage
from bench.report import BenchOptions, Section, summarize_ms
from bench.support import scratch_postgres
from wcs.children import spawn
from wcs.contract.payloads import DeviceStatus, ScanEvent
from wcs.contract.topics import Topics
from wcs.domain.gs1 import with_check_digit
from wcs.mqtt.client import make_client
from wcs.settings import MqttEndpoint

NAME = "controller: scan -> command vs MQTT echo and a durable responder (PostgreSQL)"
STATIONS = 50
SLOTS = 8
UNITS = 4  # units per task: 3 count-down updates, then clear + next light


def location(k: int, b: int) -> str:
    return f"A-{k:02d}-{b:02d}-1"


def barcode(k: int, b: int) -> str:
    """An EAN-13 (prefix 29: in-store numbers) with its check digit, as scanners read."""
    return with_check_digit(f"29{k:03d}{b:03d}0000")


def floor_doc(site: str) -> dict[str, Any]:
    devices: list[dict[str, Any]] = []
    stations: list[dict[str, Any]] = []
    for k in range(1, STATIONS + 1):
        devices.append(
            {
                "id": f"ptl-{k}",
                "kind": "ptl",
                "zone": "pick",
                "link": {"type": "modbus", "port": 20000 + k},
                "slots": {b: location(k, b) for b in range(1, SLOTS + 1)},
            }
        )
        devices.append(
            {"id": f"scan-{k}", "kind": "scanner", "zone": "pick", "link": {"url": "loop://"}}
        )
        stations.append(
            {"id": f"S{k}", "kind": "pick", "scanner": f"scan-{k}", "panels": [f"ptl-{k}"]}
        )
    return {"site": site, "devices": devices, "stations": stations}


async def seed(url: str, orders_per_station: int) -> None:
    """Bulk-load a floor in mid-shift: batches released, totes bound, nothing picked."""
    from sqlalchemy import insert

    from wcs.persistence import tables as t
    from wcs.persistence.db import make_engine
    from wcs.timeutil import utcnow

    now = utcnow()
    engine = make_engine(url)
    skus, locs, stock, orders, lines, res, events, batches, tasks, totes = (
        [], [], [], [], [], [], [], [], [], []
    )  # fmt: skip
    line_id = 0
    for k in range(1, STATIONS + 1):
        for b in range(1, SLOTS + 1):
            sku = f"BK-{k:02d}-{b}"
            skus.append(
                {
                    "sku": sku,
                    "name": sku,
                    "weight_g": 100.0,
                    "length_mm": 50,
                    "width_mm": 50,
                    "height_mm": 50,
                    "barcode": barcode(k, b),
                    "updated_at": now,
                }
            )
            locs.append(
                {
                    "code": location(k, b),
                    "zone": "pick",
                    "aisle": k,
                    "bay": b,
                    "level": 1,
                    "updated_at": now,
                }
            )
            per_slot = sum(1 for m in range(orders_per_station) if m % SLOTS == b - 1)
            stock.append(
                {
                    "sku": sku,
                    "location": location(k, b),
                    "on_hand": per_slot * UNITS,
                    "reserved": per_slot * UNITS,
                    "updated_at": now,
                }
            )
        batches.append(
            {
                "id": f"bk{k:02d}",
                "wave_id": "wbench",
                "station": f"S{k}",
                "state": "open",
                "zone": "pick",
                "distance_m": 0.0,
                "stops": [],
                "created_at": now,
            }
        )
        for m in range(orders_per_station):
            line_id += 1
            oid = f"o{k:02d}{m:05d}"
            b = m % SLOTS + 1
            orders.append(
                {
                    "id": oid,
                    "external_id": oid,
                    "idempotency_key": oid,
                    "request_hash": oid,
                    "state": "pick_planned",
                    "seq": 4,
                    "priority": 0,
                    "service": "standard",
                    "customer_name": "Bench",
                    "phone": "+8613800138000",
                    "email": None,
                    "line1": "1 Road",
                    "line2": None,
                    "city": "Shanghai",
                    "postal_code": "200000",
                    "country": "CN",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            lines.append(
                {
                    "id": line_id,
                    "order_id": oid,
                    "line_no": 1,
                    "sku": f"BK-{k:02d}-{b}",
                    "qty": UNITS,
                    "qty_picked": 0,
                }
            )
            res.append(
                {
                    "id": line_id,
                    "order_id": oid,
                    "line_id": line_id,
                    "sku": f"BK-{k:02d}-{b}",
                    "location": location(k, b),
                    "qty": UNITS,
                    "state": "active",
                    "created_at": now,
                }
            )
            for seq, (src, dst) in enumerate(
                [
                    (None, "received"),
                    ("received", "validated"),
                    ("validated", "reserved"),
                    ("reserved", "pick_planned"),
                ],
                start=1,
            ):
                events.append(
                    {
                        "order_id": oid,
                        "seq": seq,
                        "from_state": src,
                        "to_state": dst,
                        "actor": "bench",
                        "reason": None,
                        "at": now,
                    }
                )
            tasks.append(
                {
                    "batch_id": f"bk{k:02d}",
                    "seq": m,
                    "order_id": oid,
                    "line_id": line_id,
                    "reservation_id": line_id,
                    "sku": f"BK-{k:02d}-{b}",
                    "location": location(k, b),
                    "qty": UNITS,
                    "qty_picked": 0,
                    "state": "open",
                    "ptl_device": f"ptl-{k}",
                    "ptl_slot": b,
                    "updated_at": now,
                }
            )
            totes.append(
                {
                    "code": f"T{k:02d}{m:05d}",
                    "order_id": oid,
                    "state": "picking",
                    "station": f"S{k}",
                    "updated_at": now,
                }
            )
    async with engine.begin() as conn:
        await conn.execute(
            insert(t.waves).values(
                id="wbench",
                released_at=now,
                released_by="bench",
                orders=len(orders),
                distance_m=0.0,
                baseline_m=0.0,
            )
        )
        for table, rows in (
            (t.skus, skus),
            (t.locations, locs),
            (t.stock, stock),
            (t.orders, orders),
            (t.order_lines, lines),
            (t.reservations, res),
            (t.order_events, events),
            (t.pick_batches, batches),
            (t.pick_tasks, tasks),
            (t.totes, totes),
        ):
            for start in range(0, len(rows), 5000):
                await conn.execute(insert(table), rows[start : start + 5000])
    if engine.dialect.name == "postgresql":
        # A floor in mid-shift has planner statistics: autovacuum gathers them within a
        # minute of a bulk load. Without them the prepared statements of the hot path
        # are planned blind (a finished task's "anything left for this order?" then
        # walks the whole batch instead of the order's few tasks), and the plans change
        # part way through a run when autovacuum gets there.
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
    await engine.dispose()


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
    proc = spawn(
        cmd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        yield proc
    except BaseException:
        log.seek(0)
        print(log.read()[-3000:].decode(errors="replace"), file=sys.stderr)
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def echo_run(
    endpoint: MqttEndpoint, rate: float, seconds: float, prefix: str = "e"
) -> tuple[Probe, float]:
    """Requests to a responder at ``rate``; each payload ``{prefix}{rate}-{n}`` is new
    (responders that keep them answer a payload once)."""
    probe = Probe()
    async with make_client(endpoint, max_queued_incoming=None) as client:
        await client.subscribe("bench/rep/+", qos=1)

        def make(n: int) -> tuple[str, bytes, str]:
            key = f"{prefix}{rate:.0f}-{n}"
            return f"bench/req/{n % STATIONS}", key.encode(), key

        def reply(_topic: str, payload: bytes, at: float) -> None:
            probe.reply(payload.decode(), at)

        with read_in_callback(client, reply):
            achieved = await drive(client, probe, make, rate=rate, seconds=seconds)
    return probe, achieved


def _scan_as(pickers: Pickers, run: str, n: int) -> tuple[str, bytes, str] | None:
    return pickers.scan(n, run)


class Pickers:
    """50 pickers that take what their station's panel shows: the lit slot, as many
    units as it displays, one scan per unit; then they wait for the next light."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self.lit: dict[int, int] = {}  # station -> lit slot
        self.left: dict[int, int] = {}  # station -> units the picker still sees to take
        self.mispicks = 0
        self.commands = 0
        self.waited = 0  # scans skipped because the next light had not come yet

    def on_command(self, device: str, body: dict[str, Any]) -> str | None:
        self.commands += 1
        k = int(device.split("-")[1])
        color = body.get("color")
        slot = body.get("slot")
        if slot is not None and body.get("qty") is not None:
            if color == "green":
                if self.lit.get(k) != slot:  # a new task lit (slots clear in between)
                    self.lit[k] = int(slot)
                    self.left[k] = int(body["qty"])
                else:  # a count-down of this slot: the picker's own count is fresher,
                    # and a late count-down must not send them back for units taken
                    self.left[k] = min(self.left.get(k, 0), int(body["qty"]))
            elif color == "red":
                self.mispicks += 1
        elif slot is not None and self.lit.get(k) == slot:
            self.lit.pop(k, None)  # clear
            self.left.pop(k, None)
        cause = body.get("cause")
        return str(cause) if cause else None

    def scan(self, n: int, run: str) -> tuple[str, bytes, str] | None:
        k = n % STATIONS + 1
        slot = self.lit.get(k)
        if slot is None or not self.left.get(k):
            self.waited += 1
            return None  # nothing (more) to take at this station yet: the picker waits
        self.left[k] -= 1
        msg_id = f"{run}-{n}"
        payload = ScanEvent(msg_id=msg_id, code=barcode(k, slot), symbology="]E0").to_json()
        return self.topics.dev_evt(f"scan-{k}", "scan"), payload, msg_id


async def panels_online(client: aiomqtt.Client, topics: Topics) -> None:
    """Every panel reports online (retained), as its driver does on (re)connecting: its
    station puts the panel's picture back - now, or when the station is taken over -
    so the load sees what is lit wherever it joined."""
    online = DeviceStatus(state="online", kind="ptl", zone="pick").to_json()
    for k in range(1, STATIONS + 1):
        await client.publish(topics.dev_status(f"ptl-{k}"), online, qos=1, retain=True)


async def controller_run(
    endpoint: MqttEndpoint,
    topics: Topics,
    pickers: Pickers,
    runs: list[tuple[str, float, float]],
    meter: Meter | None = None,
) -> tuple[list[tuple[str, float, Probe, float]], dict[str, Usage]]:
    """Each run in turn, with the CPU spent during each (by run name) if metered."""
    results = []
    usage: dict[str, Usage] = {}
    async with make_client(endpoint, max_queued_incoming=None) as client:
        await client.subscribe(f"{topics.root}/dev/+/cmd/+", qos=1)
        probe_box: dict[str, Probe] = {"p": Probe()}

        def command(topic: str, payload: bytes, at: float) -> None:
            info = topics.parse(topic)
            probe_box["p"].reply(pickers.on_command(info.device_id or "", json.loads(payload)), at)

        with read_in_callback(client, command):
            await panels_online(client, topics)
            async with asyncio.timeout(30):
                while len(pickers.lit) < STATIONS:  # every station lit its first slot
                    await asyncio.sleep(0.05)
            for name, rate, seconds in runs:
                probe = Probe()
                probe_box["p"] = probe
                if meter is not None:
                    await meter.start()
                achieved = await drive(
                    client,
                    probe,
                    functools.partial(_scan_as, pickers, name),
                    rate=rate,
                    seconds=seconds,
                )
                if meter is not None:
                    usage[name] = await meter.stop()
                results.append((name, rate, probe, achieved))
                await asyncio.sleep(0.5)
    return results, usage


CPU_LABELS = ("controller", "PostgreSQL", "load generator")

# The floor responders: (label, ``bench.durable --rows`` mode, payload prefix).
FLOORS = (
    ("pick rows", "pick", "p"),
    ("pick rows in one statement", "pick-one", "q"),
)

Baseline = tuple[dict[int, tuple[Probe, float]], dict[int, Usage]]


async def _metered(meter: Meter, run: Awaitable[tuple[Probe, float]]) -> tuple[Probe, float, Usage]:
    await meter.start()
    probe, achieved = await run
    return probe, achieved, await meter.stop()


def baseline(
    module: str,
    args: list[str],
    endpoint: MqttEndpoint,
    db_url: str,
    ramp: list[int],
    seconds: float,
    prefix: str = "e",
) -> Baseline:
    """A responder on ``bench/req/+`` (``python -m module *args``) driven through the
    ramp: its probe and sent rate, and the CPU used, per rate."""
    cmd = [sys.executable, "-m", module, *args]
    results: dict[int, tuple[Probe, float]] = {}
    usage: dict[int, Usage] = {}
    with process(cmd, {}) as responder:
        assert responder.stdout is not None
        responder.stdout.readline()  # "ready": subscribed
        meter = Meter([responder.pid], db_url)
        for rate in ramp:
            run_s = seconds if rate == 1000 else seconds / 2
            probe, achieved, usage[rate] = asyncio.run(
                _metered(meter, echo_run(endpoint, rate, run_s, prefix))
            )
            results[rate] = (probe, achieved)
    return results, usage


def cpu_per_scan_ms(usage: Usage, probe: Probe) -> tuple[float, float, float]:
    """CPU milliseconds per answered scan of each process, in ``CPU_LABELS`` order."""
    scans = max(1, len(probe.latencies))
    return (
        1000 * usage.processes_cpu_s / scans,
        1000 * usage.postgres_cpu_s / scans,
        1000 * usage.loadgen_cpu_s / scans,
    )


def sustained(probe: Probe, rate: float, achieved: float) -> bool:
    s = summarize_ms(probe.latencies)
    return probe.missing == 0 and achieved >= 0.95 * rate and s["p99"] < 50


def highest(results: dict[int, tuple[Probe, float]]) -> int:
    """The highest rate of a ramp held with p99 < 50 ms, nothing lost."""
    return max((r for r, (p, a) in results.items() if sustained(p, r, a)), default=0)


def _floor_rows(
    section: Section,
    floors: dict[str, Baseline],
    by_name: dict[str, tuple[float, Probe, float]],
    usage: dict[str, Usage],
    durable: dict[int, tuple[Probe, float]],
) -> None:
    """The floor responders' figures beside the controller's, as ratios, held to the
    controller's own targets: where a floor misses one, no controller that writes
    these rows can meet it."""
    c500 = sum(cpu_per_scan_ms(usage["c500"], by_name["c500"][1])[:2])
    d250 = summarize_ms(durable[250][0].latencies)["p99"] if 250 in durable else None
    durable_max = highest(durable)
    for label, (results, used) in floors.items():
        best = highest(results)
        section.add(f"{label}: highest rate tried with p99 < 50 ms", float(best), "/s")
        section.add(
            f"{label} / durable: highest rate with p99 < 50 ms",
            best / max(durable_max, 1),
            "x",
            ">= 0.75",
            best >= 0.75 * durable_max,
        )
        if d250 is not None and 250 in results:
            p250 = summarize_ms(results[250][0].latencies)["p99"]
            section.add(
                f"{label} at 250/s: p99 / durable responder p99",
                p250 / d250,
                "x",
                "<= 2",
                p250 <= 2 * d250,
            )
        if 500 in results:
            own, pg, _ = cpu_per_scan_ms(used[500], results[500][0])
            section.add(
                f"{label} + PostgreSQL CPU per scan at 500/s",
                own + pg,
                "ms",
                "<= 0.50",
                own + pg <= 0.5,
            )
            section.add(f"{label}: its PostgreSQL alone, CPU per scan at 500/s", pg, "ms")
            section.add(
                f"controller + PostgreSQL / {label} + PostgreSQL, CPU at 500/s",
                c500 / max(own + pg, 1e-9),
                "x",
            )


def run(opts: BenchOptions) -> Section:
    section = Section(NAME)
    seconds = 3.0 if opts.quick else 10.0
    ramp = [250, 500, 1000, 2000] if opts.quick else [250, 500, 750, 1000, 1500, 2000, 3000, 4000]
    orders_per_station = 120 if opts.quick else 900
    site = "bench"
    topics = Topics(site)
    with bench_broker(opts) as mqtt_url, scratch_postgres(opts.pg_url) as db_url:
        endpoint = MqttEndpoint.parse(mqtt_url)
        # --- baselines: the bare echo, then a lean durable responder --------------------
        broker = ["--host", endpoint.host, "--port", str(endpoint.port)]
        echo_results, echo_usage = baseline("bench.echo", broker, endpoint, db_url, ramp, seconds)
        durable_results, durable_usage = baseline(
            "bench.durable", [*broker, "--database", db_url], endpoint, db_url, ramp, seconds
        )
        e = summarize_ms(echo_results[1000][0].latencies)
        section.add("echo at 1,000/s: p50", e["p50"], "ms")
        section.add("echo at 1,000/s: p99", e["p99"], "ms")
        section.add(
            "echo at 1,000/s: machine busy", 100 * echo_usage[1000].machine_busy, "% of all cores"
        )
        echo_max = highest(echo_results)
        section.add("echo: highest rate tried with p99 < 50 ms", float(echo_max), "/s")
        d = summarize_ms(durable_results[1000][0].latencies)
        section.add("durable responder at 1,000/s: p50", d["p50"], "ms")
        section.add("durable responder at 1,000/s: p99", d["p99"], "ms")
        section.add("durable responder at 1,000/s: p99 / echo p99", d["p99"] / e["p99"], "x")
        durable_max = highest(durable_results)
        section.add(
            "durable responder: highest rate tried with p99 < 50 ms", float(durable_max), "/s"
        )

        # --- the controller -----------------------------------------------------------
        asyncio.run(seed(db_url, orders_per_station))
        with tempfile.TemporaryDirectory() as tmp:
            floor_path = Path(tmp) / "floor.yaml"
            floor_path.write_text(yaml.safe_dump(floor_doc(site)), encoding="utf-8")
            env = {
                "WCS_DATABASE_URL": db_url,
                "WCS_MQTT_URL": mqtt_url,
                "WCS_SITE": site,
                "WCS_EMBEDDED_BROKER": "false",
                "WCS_LOG_LEVEL": "WARNING",
                "WCS_CONTROLLER__AUTO_RELEASE": "false",
                "WCS_CONTROLLER__WAVE_INTERVAL_S": "0.3",
            }
            cmd = [sys.executable, "-m", "cli", "controller", "--floor", str(floor_path)]
            with process(cmd, env) as ctl:
                pickers = Pickers(topics)
                # Ascending, so a run never starts behind the backlog of an overload.
                runs = [("warm", 300.0, 2.0)]
                runs += [(f"c{r}", float(r), seconds if r == 1000 else seconds / 2) for r in ramp]
                meter = Meter([ctl.pid], db_url)
                results, usage = asyncio.run(controller_run(endpoint, topics, pickers, runs, meter))
        # --- the floor: a pick scan's rows, written without deciding them ---------------
        floors: dict[str, Baseline] = {}
        for label, mode, prefix in FLOORS:
            floors[label] = baseline(
                "bench.durable",
                [*broker, "--database", db_url, "--rows", mode],
                endpoint,
                db_url,
                ramp,
                seconds,
                prefix,
            )
        by_name = {name: (rate, probe, achieved) for name, rate, probe, achieved in results}
        _, probe, achieved = by_name["c1000"]
        c = summarize_ms(probe.latencies)
        section.add("controller at 1,000/s: p50", c["p50"], "ms")
        section.add(
            "controller at 1,000/s: p99",
            c["p99"],
            "ms",
            f"<= {5 * e['p99']:.2f} (5x echo)",
            c["p99"] <= 5 * e["p99"],
        )
        section.add("controller at 1,000/s: p99 / echo p99", c["p99"] / e["p99"], "x")
        section.add("controller at 1,000/s: p99 / durable responder p99", c["p99"] / d["p99"], "x")
        section.add("controller at 1,000/s: achieved", achieved, "/s")
        section.add("controller at 1,000/s: unanswered scans", probe.missing, "")
        if (at_1000 := usage.get("c1000")) is not None:
            section.add(
                "controller at 1,000/s: machine busy", 100 * at_1000.machine_busy, "% of all cores"
            )
            for label, ms in zip(CPU_LABELS, cpu_per_scan_ms(at_1000, probe), strict=True):
                section.add(f"controller at 1,000/s: {label} CPU per scan", ms, "ms")
        ok_rates = [
            rate
            for name, (rate, p, a) in by_name.items()
            if name != "warm" and sustained(p, rate, a)
        ]
        best = max(ok_rates, default=0.0)
        section.add(
            "controller: highest rate tried with p99 < 50 ms",
            best,
            "/s",
            f">= {0.75 * durable_max:.0f} (0.75x durable)",
            best >= 0.75 * durable_max,
        )
        section.add(
            "controller / durable: highest rate with p99 < 50 ms", best / max(durable_max, 1), "x"
        )
        if "c250" in by_name and 250 in durable_results:
            p250 = summarize_ms(by_name["c250"][1].latencies)["p99"]
            d250 = summarize_ms(durable_results[250][0].latencies)["p99"]
            section.add(
                "controller at 250/s: p99",
                p250,
                "ms",
                f"<= {2 * d250:.2f} (2x durable)",
                p250 <= 2 * d250,
            )
            section.add("controller at 250/s: p99 / durable responder p99", p250 / d250, "x")
        if "c500" in usage and 500 in durable_usage:
            c500 = cpu_per_scan_ms(usage["c500"], by_name["c500"][1])
            both = c500[0] + c500[1]
            section.add(
                "controller + PostgreSQL CPU per scan at 500/s", both, "ms", "<= 0.50", both <= 0.5
            )
            d500 = cpu_per_scan_ms(durable_usage[500], durable_results[500][0])
            section.add(
                "durable responder + PostgreSQL CPU per request at 500/s", d500[0] + d500[1], "ms"
            )
            # The machine's speed moves from run to run; this ratio moves far less.
            section.add(
                "controller + PostgreSQL / durable responder + PostgreSQL, CPU at 500/s",
                both / max(d500[0] + d500[1], 1e-9),
                "x",
            )
            # The floors under the figure above: what answering over MQTT alone costs a
            # Python process here, and what one durable commit costs PostgreSQL.
            section.add("durable responder alone, CPU per request at 500/s", d500[0], "ms")
            section.add("durable responder's PostgreSQL, CPU per request at 500/s", d500[1], "ms")
            if 500 in echo_usage:
                e500 = cpu_per_scan_ms(echo_usage[500], echo_results[500][0])
                section.add("echo, CPU per message at 500/s", e500[0], "ms")
        if "c500" in usage:
            _floor_rows(section, floors, by_name, usage, durable_results)
        for name, (rate_f, p, a) in sorted(by_name.items(), key=lambda x: x[1][0]):
            rate = int(rate_f)
            if name == "warm":
                continue
            s = summarize_ms(p.latencies)
            line = (
                f"{rate:>6.0f}/s: controller p50 {s['p50']:.2f} p99 {s['p99']:.2f} ms, "
                f"sent {a:.0f}/s, unanswered {p.missing}"
            )
            if (used := usage.get(name)) is not None:
                cpu = " / ".join(f"{ms:.2f}" for ms in cpu_per_scan_ms(used, p))
                line += f", machine busy {100 * used.machine_busy:.0f}%, CPU per scan {cpu} ms"
            for label, base, base_usage in (
                ("echo", echo_results, echo_usage),
                ("durable", durable_results, durable_usage),
                *((label, *floors[label]) for label, _, _ in FLOORS),
            ):
                if (measured := base.get(rate)) is not None:
                    bp, _ = measured
                    bs = summarize_ms(bp.latencies)
                    own, pg, _ = cpu_per_scan_ms(base_usage[rate], bp)
                    line += (
                        f" | {label} p50 {bs['p50']:.2f} p99 {bs['p99']:.2f} ms, unanswered "
                        f"{bp.missing}, machine busy {100 * base_usage[rate].machine_busy:.0f}%, "
                        f"CPU per request {own:.2f} / {pg:.2f} ms"
                    )
            section.notes.append(line)
        section.notes.append(
            f"{os.cpu_count()} cores shared by the load generator, Mosquitto, PostgreSQL and "
            "the controller: CPU per scan times the rate, summed, against the cores, says how "
            "much of the latency is waiting for a core. CPU per scan is given as "
            + " / ".join(CPU_LABELS)
            + "; it falls as the rate rises, because a busier batch shares each database "
            "round trip and each process wake-up among more scans. A baseline's CPU per "
            "request is its own / its PostgreSQL's"
        )
        section.notes.append(
            f"{STATIONS} stations, {UNITS}-unit tasks; refusals (red lights) {pickers.mispicks}, "
            f"scans skipped while a picker waited for the next light {pickers.waited}"
        )
    return section
