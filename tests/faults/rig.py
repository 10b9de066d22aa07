"""One fault drill, start to finish.

A private Mosquitto with persistence and a scratch database on the drills' private
PostgreSQL server (never the machine's: the drill restarts and kills it); the
floor of ``bench/b_controller.py`` seeded in mid-shift; ``wcs controller`` (one or
more, sharing the floor's stations by leases), ``wcs api`` and
``wcs drivers`` as real processes; simulated devices for a few stations; pickers and
an office generating load; faults injected at random moments. Then the load stops,
every process is brought back, the events still unacknowledged are published until
the broker takes them, the system is given time to settle, and the invariants of
``tests.faults.invariants`` are checked against the database and the load's logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.b_controller import STATIONS
from bench.support import api_process, scratch_postgres
from device_sim.floor import SimFloor, SimOptions
from tests.faults.faults import FaultLog, FaultPlan, Injector
from tests.faults.invariants import Verdict, check, dsn, inbox_keys
from tests.faults.layout import (
    controller_floor,
    direct_stations,
    seed_floor,
    sim_floor,
    stock_snapshot,
    write_floor,
)
from tests.faults.orders import Office, OfficeLog
from tests.faults.pickers import MqttPickers, SimPickers, Witness
from tests.faults.procs import Service, services
from wcs.contract.topics import Topics
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.persistence.private_postgres import PrivatePostgres
from wcs.settings import MqttEndpoint

ADMIN_TOKEN = "faults-admin-token-5b0c3e1f9a7d2468"
SETTLE_S = 120.0


@dataclass(frozen=True)
class DrillPlan:
    name: str
    seconds: float
    faults: FaultPlan
    controllers: int = 1
    scan_rate: float = 120.0  # offered by the MQTT pickers, per second
    office_rate: float = 4.0  # API requests per second
    sim_stations: tuple[int, ...] = (1, 2, 3)
    sim_pace_s: float = 0.4
    orders_per_station: int = 120
    seed: int = 1
    broker: str = "mosquitto"  # or "nats": NATS's MQTT gateway


@dataclass
class DrillReport:
    plan: DrillPlan
    verdict: Verdict
    faults: FaultLog
    office: OfficeLog
    duration_s: float
    republished: int = 0
    sim_triggered: int = 0
    sim_unheard: int = 0
    restarts: dict[str, int] = field(default_factory=dict)
    witness_deliveries: int = 0

    @property
    def clean(self) -> bool:
        return self.verdict.clean

    def row(self) -> dict[str, str]:
        v, done = self.verdict, self.faults.done
        return {
            "drill": self.plan.name,
            "controllers": str(self.plan.controllers),
            "s": f"{self.duration_s:.0f}",
            "ctl kills": str(done["controller_kill"]),
            "broker rst": str(done["broker_restart"]),
            "pg rst": str(done["pg_restart"]),
            "pg kills": str(done["pg_kill"]),
            "unplugs": str(done["device_unplug"]),
            "drv kills": str(done["drivers_kill"]),
            "events sent": str(v.events_sent),
            "applied": str(v.events_applied),
            "lost": str(v.lost),
            "duplicated": str(v.duplicated),
            "violations": str(len(v.violations)),
            "orders": str(v.orders_checked),
            "api ok": str(self.office.requests_ok),
        }


def table(reports: list[DrillReport]) -> str:
    rows = [r.row() for r in reports]
    if not rows:
        return "(no drills)"
    if len(rows) > 1:
        total = {h: str(sum(int(float(r[h])) for r in rows)) for h in rows[0] if h != "drill"}
        total["controllers"] = "-"
        rows.append({"drill": f"{len(rows)} runs", **total})
    heads = list(rows[0])
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in heads}
    line = " | ".join(h.rjust(widths[h]) for h in heads)
    rule = "-+-".join("-" * widths[h] for h in heads)
    body = [" | ".join(r[h].rjust(widths[h]) for h in heads) for r in rows]
    return "\n".join([line, rule, *body])


def describe(report: DrillReport) -> str:
    v = report.verdict
    lines = [
        f"drill {report.plan.name} (seed {report.plan.seed}): "
        f"{v.picks} picks, {v.mispicks} mispicks {dict(v.refusals)}, "
        f"{report.republished} scans re-published "
        f"without a PUBACK, {report.witness_deliveries} event deliveries seen for "
        f"{v.events_sent} events; simulated scanners fired {report.sim_triggered} "
        f"({report.sim_unheard} while no driver was attached: lost at the device); "
        f"process starts {report.restarts}; order events by {dict(v.actors)}",
        f"office: {len(report.office.orders)} orders taken "
        f"({len(report.office.orders_unanswered)} never answered), "
        f"{len(report.office.receipts_booked)} receipts "
        f"({len(report.office.receipts_unanswered)} unanswered), "
        f"{len(report.office.cancelled)} cancels, {report.office.errors} errors while away",
    ]
    if report.faults.pg_down_s:
        lines.append(
            "PostgreSQL back after restarts and kills: "
            + ", ".join(f"{s:.1f}s" for s in report.faults.pg_down_s)
        )
    lines += [f"  t={t:6.1f}s {kind}: {detail}" for t, kind, detail in report.faults.timeline]
    lines += [f"  VIOLATION: {text}" for text in v.violations]
    return "\n".join(lines)


async def _until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f}s for {what}")
        await asyncio.sleep(0.1)


def _broker(kind: str) -> PrivateMosquitto:
    if kind == "nats":
        from wcs.mqtt.nats import PrivateNats

        return PrivateNats()
    return PrivateMosquitto(persistence=True)


def run_drill(plan: DrillPlan, postgres: PrivatePostgres) -> DrillReport:
    """Run ``plan`` end to end; every process and server it starts is gone afterwards."""
    started = time.monotonic()
    site = "f" + uuid.uuid4().hex[:8]
    with (
        tempfile.TemporaryDirectory(prefix="wcs-faults-") as tmp,
        _broker(plan.broker) as broker,
        scratch_postgres(postgres.url) as db_url,
    ):
        work = Path(tmp)
        asyncio.run(seed_floor(db_url, plan.orders_per_station))
        opening = asyncio.run(stock_snapshot(db_url))
        doc = controller_floor(site, plan.sim_stations)
        floor_path = write_floor(work / "floor.yaml", doc)
        env = {
            "WCS_DATABASE_URL": db_url,
            "WCS_MQTT_URL": broker.url,
            "WCS_SITE": site,
            "WCS_EMBEDDED_BROKER": "false",
            "WCS_ADMIN_TOKEN": ADMIN_TOKEN,
            "WCS_LOG_LEVEL": "WARNING",
            "WCS_CONTROLLER__AUTO_RELEASE": "false",
            "WCS_CONTROLLER__WAVE_INTERVAL_S": "0.3",
            "WCS_NOTIFY__ENABLED": "false",
        }
        with api_process(env) as api_url, services(work, env) as group:
            controllers = [
                group.add(
                    f"controller-{n}",
                    ["controller", "--floor", str(floor_path)],
                    {"WCS_CONTROLLER__INSTANCE": f"c{n}"},
                )
                for n in range(1, plan.controllers + 1)
            ]
            drivers = group.add("drivers", ["drivers", "--floor", str(work / "drivers.yaml")])
            report = asyncio.run(
                _drill(
                    plan,
                    site,
                    db_url,
                    api_url,
                    broker,
                    postgres,
                    controllers,
                    drivers,
                    doc,
                    work,
                    opening,
                )
            )
            report.restarts = {s.name: s.starts for s in group.all}
    report.duration_s = time.monotonic() - started
    return report


async def _drill(
    plan: DrillPlan,
    site: str,
    db_url: str,
    api_url: str,
    broker: PrivateMosquitto,
    postgres: PrivatePostgres,
    controllers: list[Service],
    drivers: Service,
    doc: dict[str, object],
    work: Path,
    opening: dict[tuple[str, str], int],
) -> DrillReport:
    rng = random.Random(plan.seed)
    topics = Topics(site)
    endpoint = MqttEndpoint.parse(broker.url)
    witness = Witness(endpoint, topics)
    witness_task = asyncio.create_task(witness.run(), name="faults-witness")
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    try:
        async with asyncio.timeout(30):
            await witness.connected.wait()
        for controller in controllers:
            controller.start()
        await _until(lambda: len(witness.lit) == STATIONS, 60, "every station's first light")
        options = SimOptions(ephemeral_ports=True)
        async with SimFloor(sim_floor(doc, plan.sim_stations), options) as sim:  # type: ignore[arg-type]
            write_floor(work / "drivers.yaml", sim.floor)
            drivers.start()
            ptls = [sim.ptl(f"ptl-{k}") for k in plan.sim_stations]
            await _until(lambda: all(p.lit() for p in ptls), 60, "the simulated panels to light")
            pickers = MqttPickers(
                endpoint,
                topics,
                witness,
                direct_stations(plan.sim_stations),
                plan.scan_rate,
                run_id=f"r{plan.seed}",
            )
            sim_pickers = SimPickers(sim, plan.sim_stations, plan.sim_pace_s)
            office = Office(
                api_url,
                ADMIN_TOKEN,
                list(range(1, STATIONS + 1)),
                plan.office_rate,
                run_id=f"r{plan.seed}",
                seed=plan.seed,
            )
            injector = Injector(
                plan.faults,
                rng,
                controllers=controllers,
                broker=broker,
                drivers=drivers,
                sim=sim,
                sim_devices=[f"{kind}-{k}" for k in plan.sim_stations for kind in ("scan", "ptl")],
                postgres=postgres,
                pg_dsn=dsn(db_url),
            )
            tasks = [
                asyncio.create_task(pickers.run(stop), name="faults-pickers"),
                asyncio.create_task(sim_pickers.run(stop), name="faults-sim-pickers"),
                asyncio.create_task(office.run(stop), name="faults-office"),
            ]
            await injector.run(plan.seconds)
            stop.set()
            await asyncio.gather(*tasks)
            # Everything back up; then what is owed must arrive and be applied.
            if not broker.running:
                await asyncio.to_thread(broker.start)
            for service in [*controllers, drivers]:
                service.start()
            await pickers.flush(timeout=60)
            verdict = await _settle_and_check(db_url, opening, witness, pickers, office.log)
            await asyncio.to_thread(drivers.stop)
        return DrillReport(
            plan=plan,
            verdict=verdict,
            faults=injector.log,
            office=office.log,
            duration_s=0.0,
            republished=pickers.republished,
            sim_triggered=sim_pickers.triggered,
            sim_unheard=sim_pickers.unheard,
            witness_deliveries=witness.deliveries,
        )
    finally:
        stop.set()
        for task in [*tasks, witness_task]:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, witness_task, return_exceptions=True)


def _sent(witness: Witness, pickers: MqttPickers) -> dict[str, set[str]]:
    sent = {device: set(ids) for device, ids in witness.events.items()}
    for device, ids in pickers.acked.items():
        sent.setdefault(device, set()).update(ids)
    return sent


async def _settle_and_check(
    db_url: str,
    opening: dict[tuple[str, str], int],
    witness: Witness,
    pickers: MqttPickers,
    office: OfficeLog,
) -> Verdict:
    """Wait until every accepted event is in the inbox (or SETTLE_S passed), then check."""
    import asyncpg

    deadline = time.monotonic() + SETTLE_S
    stable_since = time.monotonic()
    last = -1
    while time.monotonic() < deadline:
        conn = await asyncpg.connect(dsn(db_url))
        try:
            inbox = await inbox_keys(conn)
        finally:
            await conn.close()
        sent = _sent(witness, pickers)
        owed = sum(1 for d, ids in sent.items() for m in ids if f"{d}/{m}" not in inbox)
        acked_unseen = sum(
            1 for d, ids in pickers.acked.items() for m in ids if m not in witness.events.get(d, ())
        )
        settled = len(inbox) == last and time.monotonic() - stable_since > 2.0
        if owed == 0 and acked_unseen == 0 and settled:
            break
        if len(inbox) != last:
            last, stable_since = len(inbox), time.monotonic()
        await asyncio.sleep(0.5)
    return await check(db_url, opening, _sent(witness, pickers), office)
