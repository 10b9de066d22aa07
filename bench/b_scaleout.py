"""Scale-out: two controllers sharing the floor vs one, in the same run.

Setup per side: a scratch PostgreSQL database seeded like the controller benchmark
(50 pick stations, PTL panel + scanner each, batches released, totes bound), one
private Mosquitto shared by both sides, and ``wcs controller`` processes that share
the floor by station leases (design §2): one process on one side, two on the other,
each serving about half the stations with its own sessions. Both sides run the same
code path; only the number of processes differs. Measuring starts once the leases
are balanced.

Load: closed loop. The 50 pickers scan the item their panel shows; each keeps at
most ``window`` scans unanswered (never more than the units the panel still shows),
and an answer is the first command naming the scan as its cause. Raising the window
raises the offered load until the controllers saturate; the saturation throughput
of a side is the best answered-scans rate over the windows tried. Latency is from
publish to that first command. A red light (a refused scan) is counted as a mispick:
with one owner per station, commands for a station leave in order, so there should be
none.

Each step also meters CPU: the machine's busy share (``/proc/stat``) and the CPU
seconds the controller processes and this database's PostgreSQL backends spent per
answered scan (``/proc/<pid>/stat``). When the machine is saturated, more controller
processes cannot raise throughput however well the work divides; the CPU per scan
says what a machine with more cores would sustain, so the ratio of CPU per scan (two
vs one) is the figure that says whether splitting the floor costs anything.

Failover: on the two-controller side, one process is killed (SIGKILL) while the
pickers scan; the other takes its stations over when their leases run out. Printed:
how long until the other holds them, the longest a station went without an answer,
and the scans neither answered nor applied (a scan committed by the killed one just
before it died is applied but answered by the panel's repaint only, which names no
scan: those are looked up in the inbox).

Honest caveats, printed with the results: this machine's two cores run the load
generator, Mosquitto, PostgreSQL and the controllers together, and other work may
run beside them; so ratios and medians of repeated steps are quoted, not absolutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import asyncpg
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
from wcs.tasks import background

NAME = "scale-out: two controllers sharing the floor by station leases vs one, same run"
CPU_RATIO_MAX = 1.15  # CPU per scan, two controllers vs one
TAKEOVER_MAX_S = 5.0


@dataclass
class Step:
    window: int
    seconds: float
    answered: int = 0
    mispicks: int = 0
    unanswered: int = 0  # when the step ended
    unanswered_late: int = 0  # once the stragglers had time to land
    pending: set[tuple[int, str]] = field(default_factory=set)  # (station, msg_id) unanswered
    lock_samples: int = 0
    lock_waits: int = 0  # samples of pg_locks that saw a backend waiting
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
    answered_at: list[float] = field(default_factory=list)


@dataclass
class Failover:
    """One controller of two killed while the pickers scan."""

    stations: int = 0  # held by the one killed
    takeover_s: float = float("nan")  # from the kill until the other holds them all
    longest_gap_s: float = 0.0  # the longest a station went without an answer
    lost: int = 0  # scans neither answered nor in the inbox (10 s after the step)
    repainted: int = 0  # scans the panel's repaint answered (checked: in the inbox)
    answered: int = 0


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
        self.repainted: set[tuple[int, str]] = set()  # (station, msg_id) seen by a repaint

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
        if cause is None and color == "green" and station.sent:
            # The panel put back whole (its station was taken over): what the picker
            # scanned before shows in the count, so they go on as a person would. Those
            # scans are checked against the inbox at the end, not counted as answers.
            self.repainted.update((k, msg_id) for msg_id in station.sent)
            station.sent.clear()
        if isinstance(cause, str):
            started = station.sent.pop(cause, None)
            if started is not None:
                station.answered_at.append(at)
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

    async def drive(
        self,
        client: aiomqtt.Client,
        step: Step,
        meter: Meter | None = None,
        settle_s: float = 3.0,
        midway: Callable[[], object] | None = None,
    ) -> Step:
        with no_collector_pauses():
            return await self._drive(client, step, meter, settle_s, midway)

    async def _drive(
        self,
        client: aiomqtt.Client,
        step: Step,
        meter: Meter | None,
        settle_s: float,
        midway: Callable[[], object] | None,
    ) -> Step:
        publish = client.publish
        if meter is not None:
            await meter.start()
        self.window, self.step = step.window, step
        for s in self.stations.values():
            s.answered_at.clear()
        ends = time.perf_counter() + step.seconds
        half = ends - step.seconds / 2
        pending: set[asyncio.Task[None]] = set()
        while time.perf_counter() < ends:
            if midway is not None and time.perf_counter() >= half:
                midway()
                midway = None
            self._wake.clear()
            for topic, payload, _, _ in self._due():
                task = asyncio.create_task(publish(topic, payload, qos=1), name="bench-scan")
                pending.add(task)
                task.add_done_callback(pending.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.05)
        self.step = None
        if meter is not None:
            step.usage = await meter.stop()
        step.unanswered = sum(len(s.sent) for s in self.stations.values())
        # Let the stragglers land before the next step; they do not count.
        settle = time.perf_counter() + settle_s
        while any(s.sent for s in self.stations.values()) and time.perf_counter() < settle:
            await asyncio.sleep(0.05)
        step.unanswered_late = sum(len(s.sent) for s in self.stations.values())
        step.pending = {(k, m) for k, s in self.stations.items() for m in s.sent}
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
    db_url: str,
    meter: Meter | None = None,
    kill: Callable[[], str] | None = None,
) -> tuple[list[Step], Failover | None]:
    """The steps at each window; then, given ``kill``, a step that calls it half-way."""
    loop = ClosedLoop(topics, run)
    steps: list[Step] = []
    failover = None
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
                async with lock_watch(db_url) as locks:
                    step = await loop.drive(client, Step(window, seconds), meter)
                step.lock_samples, step.lock_waits = locks.samples, locks.waiting
                steps.append(step)
            if kill is not None:
                failover = Failover()
                watching: list[asyncio.Task[None]] = []

                def killed() -> None:
                    victim = kill()
                    watching.append(
                        asyncio.create_task(
                            watch_takeover(db_url, victim, failover), name="bench-takeover"
                        )
                    )

                # Long enough for the leases of the dead one to run out and be taken.
                step = Step(window=1, seconds=2 * (TAKEOVER_MAX_S + 2))
                await loop.drive(client, step, settle_s=10.0, midway=killed)
                await asyncio.gather(*watching)
                failover.longest_gap_s = longest_gap(loop, step)
                waiting = step.pending | loop.repainted
                applied = await in_inbox(db_url, [f"scan-{k}/{m}" for k, m in waiting])
                failover.lost = sum(1 for k, m in waiting if f"scan-{k}/{m}" not in applied)
                failover.repainted = len(loop.repainted)
                failover.answered = step.answered
    return steps, failover


def longest_gap(loop: ClosedLoop, step: Step) -> float:
    """The longest any station waited for an answer during the step (or since its last
    answer, when none came again before the step ended)."""
    ends = max((t for s in loop.stations.values() for t in s.answered_at), default=0.0)
    gap = 0.0
    for station in loop.stations.values():
        times = sorted(station.answered_at)
        if not times:
            return step.seconds
        gap = max(gap, ends - times[-1], *(b - a for a, b in itertools.pairwise(times)))
    return gap


@dataclass
class LockWaits:
    samples: int = 0
    waiting: int = 0  # samples that saw a backend waiting


@contextlib.asynccontextmanager
async def lock_watch(db_url: str) -> AsyncIterator[LockWaits]:
    """Samples PostgreSQL's lock table while the block runs: a backend waiting for a
    lock another holds is two writers meeting on one row, which one owner per station
    rules out."""
    seen = LockWaits()

    async def watch() -> None:
        conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            while True:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                    " WHERE NOT l.granted AND d.datname = current_database()"
                )
                seen.samples += 1
                seen.waiting += 1 if waiting else 0
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    async with background("bench-lock-watch", watch()):
        yield seen


async def in_inbox(db_url: str, keys: list[str]) -> set[str]:
    """Which of these events the controllers applied (their inbox rows)."""
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        rows = await conn.fetch(
            "SELECT msg_id FROM processed_messages WHERE msg_id = ANY($1::text[])", keys
        )
    finally:
        await conn.close()
    return {r["msg_id"] for r in rows}


async def watch_takeover(db_url: str, victim: str, failover: Failover) -> None:
    """How long the killed instance's stations stay under its name."""
    started = time.perf_counter()
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        async with asyncio.timeout(30):
            while True:
                left = await conn.fetchval(
                    "SELECT count(*) FROM stations WHERE holder = $1", victim
                )
                failover.stations = max(failover.stations, int(left))
                if not left:
                    failover.takeover_s = time.perf_counter() - started
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        return  # never taken over: takeover_s stays NaN and fails the target
    finally:
        await conn.close()


async def balanced(db_url: str, count: int) -> None:
    """Until ``count`` instances hold every station between them, about evenly."""
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    held: dict[str | None, int] = {}
    try:
        async with asyncio.timeout(60):
            while True:
                rows = await conn.fetch(
                    "SELECT holder, count(*) AS n FROM stations GROUP BY holder"
                )
                held = {r["holder"]: r["n"] for r in rows}
                shares = [n for holder, n in held.items() if holder is not None]
                if None not in held and len(shares) == count and max(shares) - min(shares) <= 1:
                    return
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise RuntimeError(f"stations not shared by {count} controllers in 60 s: {held}") from None
    finally:
        await conn.close()


@contextlib.contextmanager
def controllers(count: int, env: dict[str, str], floor_path: Path) -> Iterator[list[int]]:
    """``count`` controller processes sharing the floor; yields their pids."""
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
) -> tuple[list[Step], Failover | None]:
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
        }
        with controllers(count, env, floor_path) as pids:
            asyncio.run(balanced(db_url, count))
            endpoint = MqttEndpoint.parse(mqtt_url)
            meter = Meter(pids, db_url)

            def kill() -> str:
                os.kill(pids[-1], signal.SIGKILL)  # no hand-over: its leases must run out
                return f"c{count}"

            return asyncio.run(
                measure(
                    endpoint,
                    topics,
                    f"s{count}",
                    windows,
                    seconds,
                    db_url,
                    meter,
                    kill=kill if count > 1 else None,
                )
            )


def run(opts: BenchOptions) -> Section:
    section = Section(NAME)
    windows = [1, 4] if opts.quick else [1, 2, 4]
    seconds = 3.0 if opts.quick else 8.0
    rounds = 1 if opts.quick else 2
    orders = 80 if opts.quick else 300
    results: dict[int, list[list[Step]]] = {1: [], 2: []}
    failovers: list[Failover] = []
    with bench_broker(opts) as mqtt_url:
        # Alternate the sides so drift on a shared machine hits both alike.
        for _ in range(rounds):
            for count in (1, 2):
                steps, failover = side(count, mqtt_url, opts.pg_url, orders, windows, seconds)
                results[count].append(steps)
                if failover is not None:
                    failovers.append(failover)
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
                f"unanswered at step end {sum(s.unanswered for s in steps)} "
                f"({sum(s.unanswered_late for s in steps)} after 3 s), "
                f"lock waits seen {sum(s.lock_waits for s in steps)}"
            )
    ratio = best[2] / best[1] if best[1] else 0.0
    section.add("2 controllers / 1: saturation throughput", ratio, "x")
    cpu = {count: cpu_per_scan(results[count]) for count in (1, 2)}
    cpu_ratio = cpu[2] / cpu[1] if cpu[1] else float("inf")
    section.add(
        "2 controllers / 1: controller + PostgreSQL CPU per scan",
        cpu_ratio,
        "x",
        f"<= {CPU_RATIO_MAX}",
        cpu_ratio <= CPU_RATIO_MAX,
    )
    two = [s for r in results[2] for s in r]
    mispicks = sum(s.mispicks for s in two)
    section.add("2 controllers: mispicks (red lights)", mispicks, "", "0", mispicks == 0)
    waits = sum(s.lock_waits for s in two)
    section.add(
        "2 controllers: pg_locks samples with a lock wait",
        waits,
        f"of {sum(s.lock_samples for s in two)}",
        "0",
        waits == 0,
    )
    if failovers:
        taken = [f.takeover_s for f in failovers]
        took = float("nan") if any(math.isnan(t) for t in taken) else max(taken)
        gap = max(f.longest_gap_s for f in failovers)
        lost = sum(f.lost for f in failovers)
        section.add(
            "kill -9 of one of two: its stations held by the other after",
            took,
            "s",
            f"<= {TAKEOVER_MAX_S:.0f}",
            took <= TAKEOVER_MAX_S,
        )
        section.add("kill -9 of one of two: longest a station went unanswered", gap, "s")
        section.add(
            "kill -9 of one of two: scans neither answered nor applied",
            lost,
            "",
            "0",
            lost == 0,
        )
        section.notes.append(
            "failover: "
            + "; ".join(
                f"{f.stations} stations taken over in {f.takeover_s:.1f} s, {f.answered} "
                f"answered ({f.repainted} by the panel's repaint, each in the inbox), longest gap "
                f"{f.longest_gap_s:.1f} s, lost {f.lost}"
                for f in failovers
            )
        )
    section.notes.append(
        "both sides share this machine's 2 cores with Mosquitto, PostgreSQL and the load "
        "generator; numbers are medians of alternating rounds and move with other work"
    )
    return section


def cpu_per_scan(rounds: list[list[Step]]) -> float:
    """Controller + PostgreSQL CPU milliseconds per answered scan over every step."""
    steps = [s for r in rounds for s in r]
    used = sum(s.usage.processes_cpu_s + s.usage.postgres_cpu_s for s in steps)
    return 1000 * used / max(1, sum(s.answered for s in steps))


def _p(samples: list[float], key: str) -> float:
    return summarize_ms(samples)[key] if samples else float("nan")
