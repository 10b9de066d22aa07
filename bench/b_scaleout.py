"""Scale-out: two controllers sharing the floor vs one, in the same run.

Setup per side: a scratch PostgreSQL database seeded like the controller benchmark
(50 pick stations, PTL panel + scanner each, batches released, totes bound), one
private Mosquitto shared by both sides, and ``wcs controller`` processes in the share
group ``controllers`` (MQTT 5 shared subscriptions) - one process on one side, two on
the other. Both sides run the same code path; only the number of processes differs.

Load: closed loop. The 50 pickers scan the item their panel shows; each keeps at
most ``window`` scans unanswered (never more than the units the panel still shows),
and an answer is the first command naming the scan as its cause. Raising the window
raises the offered load until the controllers saturate; the saturation throughput
of a side is the best answered-scans rate over the windows tried. Latency is from
publish to that first command.

Each step also meters CPU: the machine's busy share (``/proc/stat``) and the CPU
seconds the controller processes and this database's PostgreSQL backends spent per
answered scan (``/proc/<pid>/stat``). When the machine is saturated, more controller
processes cannot raise throughput however well the work divides; the CPU per scan
says what a machine with more cores would sustain.

Honest caveats, printed with the results: this machine's two cores run the load
generator, Mosquitto, PostgreSQL and the controllers together, and other work may
run beside them; so ratios and medians of repeated steps are quoted, not absolutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import yaml

from bench.b_controller import STATIONS, barcode, floor_doc, panels_online, process, seed
from bench.brokers import bench_broker
from bench.load import no_collector_pauses, read_in_callback
from bench.meter import Meter, Usage
from bench.report import BenchOptions, Section, summarize_ms
from bench.support import scratch_postgres
from wcs.contract.payloads import ScanEvent
from wcs.contract.topics import Topics
from wcs.mqtt.client import make_client
from wcs.settings import MqttEndpoint

NAME = "scale-out: two controllers (MQTT 5 shared subscription) vs one, same run"
TARGET_RATIO = 1.6


@dataclass
class Step:
    window: int
    seconds: float
    answered: int = 0
    mispicks: int = 0
    unanswered: int = 0
    latencies: list[float] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)  # CPU while the step ran

    @property
    def rate(self) -> float:
        return self.answered / self.seconds


@dataclass
class Station:
    slot: int | None = None
    shown: int = 0
    sent: dict[str, float] = field(default_factory=dict)  # msg_id -> publish time


class ClosedLoop:
    """50 pickers, each with at most ``window`` scans unanswered."""

    def __init__(self, topics: Topics, run: str) -> None:
        self.topics = topics
        self.run = run
        self.stations = {k: Station() for k in range(1, STATIONS + 1)}
        self.window = 1
        self.step: Step | None = None
        self._n = 0
        self._wake = asyncio.Event()

    def on_command(self, device: str, body: dict[str, object], at: float) -> None:
        k = int(device.rsplit("-", 1)[1])
        station = self.stations[k]
        slot, qty, color = body.get("slot"), body.get("qty"), body.get("color")
        if isinstance(slot, int) and isinstance(qty, int):
            if color == "green":
                station.slot, station.shown = slot, qty
            elif color == "red" and self.step is not None:
                self.step.mispicks += 1
        elif station.slot == slot:
            station.slot, station.shown = None, 0  # cleared
        cause = body.get("cause")
        if isinstance(cause, str):
            started = station.sent.pop(cause, None)
            if started is not None and self.step is not None:
                self.step.answered += 1
                self.step.latencies.append(at - started)
        self._wake.set()

    def _due(self) -> list[tuple[str, bytes, str, int]]:
        out = []
        for k, station in self.stations.items():
            while station.slot is not None and len(station.sent) < min(self.window, station.shown):
                self._n += 1
                msg_id = f"{self.run}-{self._n}"
                payload = ScanEvent(
                    msg_id=msg_id, code=barcode(k, station.slot), symbology="]E0"
                ).to_json()
                station.sent[msg_id] = time.perf_counter()
                out.append((self.topics.dev_evt(f"scan-{k}", "scan"), payload, msg_id, k))
        return out

    async def drive(self, client: aiomqtt.Client, step: Step, meter: Meter | None = None) -> Step:
        with no_collector_pauses():
            return await self._drive(client, step, meter)

    async def _drive(self, client: aiomqtt.Client, step: Step, meter: Meter | None) -> Step:
        publish = client.publish
        if meter is not None:
            await meter.start()
        self.window, self.step = step.window, step
        ends = time.perf_counter() + step.seconds
        pending: set[asyncio.Task[None]] = set()
        while time.perf_counter() < ends:
            self._wake.clear()
            for topic, payload, _, _ in self._due():
                task = asyncio.create_task(publish(topic, payload, qos=1))
                pending.add(task)
                task.add_done_callback(pending.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.05)
        self.step = None
        if meter is not None:
            step.usage = await meter.stop()
        step.unanswered = sum(len(s.sent) for s in self.stations.values())
        # Let the stragglers land before the next step; they do not count.
        settle = time.perf_counter() + 3.0
        while any(s.sent for s in self.stations.values()) and time.perf_counter() < settle:
            await asyncio.sleep(0.05)
        for s in self.stations.values():
            s.sent.clear()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return step


async def measure(
    endpoint: MqttEndpoint,
    topics: Topics,
    run: str,
    windows: list[int],
    seconds: float,
    meter: Meter | None = None,
) -> list[Step]:
    loop = ClosedLoop(topics, run)
    steps: list[Step] = []
    async with make_client(endpoint, max_queued_incoming=None) as client:
        await client.subscribe(f"{topics.root}/dev/+/cmd/+", qos=1)

        def command(topic: str, payload: bytes, at: float) -> None:
            info = topics.parse(topic)
            loop.on_command(info.device_id or "", json.loads(payload), at)

        with read_in_callback(client, command):
            await panels_online(client, topics)
            async with asyncio.timeout(60):
                while any(s.slot is None for s in loop.stations.values()):
                    await asyncio.sleep(0.05)
            await loop.drive(client, Step(window=1, seconds=2.0))  # warm-up
            for window in windows:
                steps.append(await loop.drive(client, Step(window, seconds), meter))
    return steps


@contextlib.contextmanager
def controllers(count: int, env: dict[str, str], floor_path: Path) -> Iterator[list[int]]:
    """``count`` controller processes in the share group; yields their pids."""
    with contextlib.ExitStack() as stack:
        pids = []
        for n in range(1, count + 1):
            cmd = [sys.executable, "-m", "cli", "controller", "--floor", str(floor_path)]
            proc = stack.enter_context(process(cmd, {**env, "WCS_CONTROLLER__INSTANCE": f"c{n}"}))
            pids.append(proc.pid)
        yield pids


def side(
    count: int,
    mqtt_url: str,
    pg_url: str | None,
    orders_per_station: int,
    windows: list[int],
    seconds: float,
) -> list[Step]:
    site = f"so{count}"
    topics = Topics(site)
    with scratch_postgres(pg_url) as db_url, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(seed(db_url, orders_per_station))
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
            "WCS_CONTROLLER__SHARED_SUBSCRIPTION": "true",
        }
        with controllers(count, env, floor_path) as pids:
            endpoint = MqttEndpoint.parse(mqtt_url)
            meter = Meter(pids, db_url)
            return asyncio.run(measure(endpoint, topics, f"s{count}", windows, seconds, meter))


def run(opts: BenchOptions) -> Section:
    section = Section(NAME)
    windows = [1, 4] if opts.quick else [1, 2, 4]
    seconds = 3.0 if opts.quick else 8.0
    rounds = 1 if opts.quick else 2
    orders = 80 if opts.quick else 300
    results: dict[int, list[list[Step]]] = {1: [], 2: []}
    with bench_broker(opts) as mqtt_url:
        # Alternate the sides so drift on a shared machine hits both alike.
        for _ in range(rounds):
            for count in (1, 2):
                results[count].append(side(count, mqtt_url, opts.pg_url, orders, windows, seconds))
    best: dict[int, float] = {}
    for count in (1, 2):
        label = "1 controller" if count == 1 else "2 controllers"
        per_window = {w: [r[i] for r in results[count]] for i, w in enumerate(windows)}
        rates = {w: statistics.median(s.rate for s in steps) for w, steps in per_window.items()}
        top = max(rates, key=lambda w: rates[w])
        best[count] = rates[top]
        latencies = [x for s in per_window[1] for x in s.latencies]
        at_top = [x for s in per_window[top] for x in s.latencies]
        section.add(f"{label}: saturation throughput", best[count], "scans/s")
        section.add(f"{label}: p99 at 1 scan in flight per station", _p(latencies, "p99"), "ms")
        section.add(f"{label}: p99 at saturation (window {top})", _p(at_top, "p99"), "ms")
        top_steps = per_window[top]
        answered = sum(s.answered for s in top_steps)
        section.add(
            f"{label}: machine busy at saturation",
            100 * statistics.median(s.usage.machine_busy for s in top_steps),
            "% of all cores",
        )
        section.add(
            f"{label}: controller CPU per scan",
            1000 * sum(s.usage.processes_cpu_s for s in top_steps) / max(1, answered),
            "ms",
        )
        section.add(
            f"{label}: PostgreSQL CPU per scan",
            1000 * sum(s.usage.postgres_cpu_s for s in top_steps) / max(1, answered),
            "ms",
        )
        for w, steps in per_window.items():
            lat = [x for s in steps for x in s.latencies]
            busy = statistics.median(s.usage.machine_busy for s in steps)
            section.notes.append(
                f"{label}, window {w} ({w * STATIONS} in flight max): "
                f"{rates[w]:.0f} scans/s (median of {len(steps)}), "
                f"p50 {_p(lat, 'p50'):.2f} ms, p99 {_p(lat, 'p99'):.2f} ms, "
                f"machine busy {100 * busy:.0f}%, "
                f"mispicks {sum(s.mispicks for s in steps)}, "
                f"unanswered at step end {sum(s.unanswered for s in steps)}"
            )
    ratio = best[2] / best[1] if best[1] else 0.0
    section.add(
        "2 controllers / 1: saturation throughput",
        ratio,
        "x",
        f">= {TARGET_RATIO}",
        ratio >= TARGET_RATIO,
    )
    section.notes.append(
        "both sides share this machine's 2 cores with Mosquitto, PostgreSQL and the load "
        "generator; numbers are medians of alternating rounds and move with other work"
    )
    return section


def _p(samples: list[float], key: str) -> float:
    return summarize_ms(samples)[key] if samples else float("nan")
