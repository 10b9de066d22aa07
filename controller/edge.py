"""The edge between the wire and the floor domain, for one owned station.

An inbound message (device event, status, acknowledgement, a request from the API, or
a tick of the controller's own) becomes a domain event, with the facts the decision
needs read first; ``decide`` answers the station's next state and its effects; the
unit buffers the effects, and the ones that ask for a fact (the next batch, a
re-reservation, an SSCC serial) are answered here with a follow-up event. Nothing in
this module decides a floor rule.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, update

from controller import reads
from controller.stations import FloorPlan, StationSpec
from controller.stock import REQUESTS as STOCK_REQUESTS
from controller.stock import STOCK_ASKS, StockDesk
from controller.store import Unit
from wcs.contract.payloads import (
    Ack,
    ArrivalEvent,
    ConfirmEvent,
    DeviceStatus,
    ScanEvent,
    WeightEvent,
)
from wcs.domain import gs1
from wcs.domain.floor import conveyor, pack, pick, qc
from wcs.domain.floor import effects as fx
from wcs.errors import ValidationFailed
from wcs.floor import printer_dpi
from wcs.ids import new_id
from wcs.persistence.tables import device_commands, floor_requests
from wcs.services.devices import record_device_status
from wcs.settings import Settings

State = pick.PickStation | qc.QcBench | pack.PackStation | conveyor.ConveyorPoint | None


@dataclass
class Inbound:
    """One message on its way through the controller."""

    station: str
    kind: str  # evt, status, ack, request, tick
    device: str | None
    payload: Any  # the parsed contract model, a request row, or a domain event (tick)
    topic: str = ""
    raw: bytes = b""
    mid: int = 0
    generation: int = 0
    received: float = 0.0
    done: asyncio.Future[Any] | None = None  # resolved after commit (ticks, tests)

    @property
    def inbox_key(self) -> str | None:
        msg_id = getattr(self.payload, "msg_id", None)
        return f"{self.device}/{msg_id}" if msg_id and self.device else None

    @property
    def msg_id(self) -> str | None:
        return getattr(self.payload, "msg_id", None)


@dataclass
class Owned:
    """A station this instance holds: its lease, its session, its state."""

    spec: StationSpec
    epoch: int
    state: State
    committer: int
    # Logged commands awaiting their ack: cmd_id -> (device, name, subject).
    pending: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    session: Any = None  # controller.session.StationSession
    lease_until: float = 0.0  # monotonic time the lease is good until
    leaving: bool = False  # handing over: take no more of its messages
    in_flight: int = 0  # its messages queued or in a batch
    # A batch of it failed without a clear outcome (a commit whose answer was lost is
    # durable all the same): its next batch reloads the state from the database.
    doubtful: bool = False

    @property
    def id(self) -> str:
        return self.spec.id


class Refused(ValidationFailed):
    """A request the station cannot apply (answered with the reason, not retried)."""


class Edge:
    def __init__(self, settings: Settings, plan: FloorPlan) -> None:
        self.settings = settings
        self.plan = plan
        self._tote = re.compile(settings.controller.tote_pattern)
        # Shelf life on a label is judged by the site's own date.
        self.zone = ZoneInfo(settings.monitoring.timezone)
        pack_cfg = settings.pack
        printers = [d for d in plan.floor.devices if d.kind == "printer"]
        self.label = pack.LabelSetup(
            {d.id: printer_dpi(plan.floor, d.id) for d in printers},
            tuple(pack_cfg.ship_from),
            len(pack_cfg.gs1_company_prefix),
        )
        self.tolerance = pack.Tolerance(
            pack_cfg.weight_tolerance_pct, pack_cfg.weight_tolerance_min_g
        )
        self.stock = StockDesk(settings, plan)  # counts and replenishment moves

    def resume(self, state: State) -> object | None:
        """The event that puts a station's devices right after its link came (back) up."""
        if isinstance(state, pick.PickStation):
            return pick.Resume()
        if isinstance(state, pack.PackStation):
            return pack.Resume()
        return None

    def is_tote(self, code: str) -> bool:
        return self._tote.fullmatch(code) is not None

    # --- taking a station over -------------------------------------------------------

    async def load(self, unit: Unit, spec: StationSpec) -> State:
        conn = unit.conn
        match spec.kind:
            case "pick":
                shelf_life = self.settings.controller.min_shelf_life_days
                station = await reads.load_pick(conn, spec, self.plan, shelf_life)
                return replace(station, stock=await self.stock.load(unit, spec.id))
            case "qc":
                return await reads.load_qc(conn, spec, self.settings.controller.qc_require_operator)
            case "pack":
                return await reads.load_pack(conn, spec, self.tolerance, self.label)
            case "conveyor":
                assert spec.diverter is not None
                routes = frozenset(spec.diverter.lanes.values())
                return conveyor.ConveyorPoint(spec.id, spec.diverter.id, routes)
        return None

    # --- one message -----------------------------------------------------------------

    async def apply(
        self, unit: Unit, owned: Owned, state: State, item: Inbound
    ) -> tuple[State, Any]:
        """The station's state after ``item``, and the answer for a request (else None)."""
        unit.station = owned.id
        unit.cause = item.msg_id
        unit.topic, unit.raw = item.topic, item.raw
        payload = item.payload
        if item.kind == "status":
            return await self._status(unit, owned, state, item.device or "", payload), None
        if item.kind == "ack":
            return await self._ack(unit, owned, state, item.device or "", payload), None
        if item.kind == "request":
            return await self._request(unit, owned, state, payload)
        if item.kind == "tick":
            return await self._decide(unit, state, payload), None
        device = item.device or ""
        kind = owned.spec.kind
        match payload:
            case ConfirmEvent() if kind == "pick":
                return await self._decide(
                    unit, state, pick.Confirm(device, payload.slot, payload.qty)
                ), None
            case ConfirmEvent():
                unit.apply(
                    [fx.Record("stray_confirm", False, None, device, {"slot": payload.slot})]
                )
            case ArrivalEvent() if kind == "conveyor":
                await unit.flush()
                order_id, order_state, tote, stations = await reads.arrival_facts(
                    unit.conn, payload.tote, self.plan
                )
                event = conveyor.Arrival(
                    device, payload.tote, payload.point, order_id, order_state, tote, stations
                )
                return await self._decide(unit, state, event), None
            case ArrivalEvent():
                unit.apply(
                    [fx.Record("arrival_not_diverter", False, None, device, {"code": payload.tote})]
                )
            case WeightEvent() if kind == "pack":
                return await self._decide(
                    unit, state, pack.Weight(device, payload.grams, payload.stable)
                ), None
            case WeightEvent():
                unit.apply(
                    [fx.Record("weight_no_station", False, None, device, {"grams": payload.grams})]
                )
            case ScanEvent():
                return await self._scan(
                    unit, owned, state, device, payload.code, payload.symbology
                ), None
        return state, None

    async def _scan(
        self, unit: Unit, owned: Owned, state: State, device: str, code: str, symbology: str | None
    ) -> State:
        kind = owned.spec.kind
        conn = unit.conn
        if kind == "pick":
            if self.is_tote(code):
                await unit.flush()
                holder, _ = await reads.tote_holder(conn, code)
                return await self._decide(unit, state, pick.ToteScan(device, code, holder))
            today = unit.now.astimezone(self.zone).date()
            return await self._decide(unit, state, pick.ItemScan(device, code, symbology, today))
        if kind == "qc":
            if self.is_tote(code):
                await unit.flush()
                return await self._decide(
                    unit, state, await reads.tote_at_bench(conn, device, code)
                )
            return await self._decide(unit, state, qc.ItemScan(device, code, symbology))
        if kind == "pack":
            if self.is_tote(code):
                await unit.flush()
                event = await reads.tote_at_pack(conn, device, code, new_id("p"))
                return await self._decide(unit, state, event)
            # The SSCC wherever it stands in the label's element strings; a GS1 code
            # that is wrong says why.
            read = gs1.read(code, symbology)
            if not isinstance(read, gs1.Gs1Scan) or read.sscc is None:
                reason = read.reason if isinstance(read, gs1.Gs1Refusal) else "not an SSCC"
                return await self._decide(unit, state, pack.UnknownScan(device, code, reason))
            return await self._decide(
                unit, state, pack.LabelScan(device, read.sscc, unit.now.isoformat())
            )
        what = "scan_no_station" if kind == "floor" else "scan_ignored"
        detail: dict[str, Any] = {"code": code[:64]}
        if kind != "floor":
            detail["station"] = owned.id
        unit.apply([fx.Record(what, False, None, device, detail)])
        return state

    async def _decide(self, unit: Unit, state: State, event: Any) -> State:
        """Run the station's decide, buffer the effects, answer the ones that ask."""
        follow: list[Any] = []
        effects: list[fx.Effect]
        match state:
            case pick.PickStation():
                state, effects = pick.decide(state, event)
            case qc.QcBench():
                state, effects, _ = qc.decide(state, event)
            case pack.PackStation():
                state, effects = pack.decide(state, event)
            case conveyor.ConveyorPoint():
                state, effects = conveyor.decide(state, event)
            case _:
                return state
        unit.apply(effects)
        await self.stock.write(unit, effects)
        for effect in effects:
            match effect:
                case fx.Reallocate():
                    assert isinstance(state, pick.PickStation) and state.batch is not None
                    await unit.flush()
                    follow.append(
                        await reads.reallocate(unit.conn, state.batch, effect, self.plan, unit.now)
                    )
                case fx.NextBatch():
                    await unit.flush()
                    started = await reads.next_batch(unit.conn, effect.station, self.plan)
                    if started is not None:
                        follow.append(started)
                case fx.NextSscc():
                    prefix = self.settings.pack.gs1_company_prefix
                    number = await reads.next_sscc(unit.conn, prefix)
                    follow.append(pack.SsccDrawn(effect.package_id, number))
                case _ if isinstance(effect, STOCK_ASKS):
                    assert isinstance(state, pick.PickStation)
                    answer = await self.stock.answer(unit, state.id, effect)
                    if answer is not None:
                        follow.append(answer)
        for event_ in follow:
            state = await self._decide(unit, state, event_)
        return state

    # --- statuses and acks -----------------------------------------------------------

    async def _status(
        self, unit: Unit, owned: Owned, state: State, device: str, status: DeviceStatus
    ) -> State:
        await unit.flush()
        floor_station = owned.spec.station.id if owned.spec.station is not None else None
        if device in owned.spec.borrowed:
            floor_station = None  # its own station records it
        else:
            changed = await record_device_status(
                unit.conn,
                device,
                status.kind,
                status.zone,
                status.state,
                status.detail,
                at=status.ts,
                station=floor_station,
            )
            if changed:
                kind = "device_fault" if status.state == "fault" else f"device_{status.state}"
                detail: dict[str, Any] = {"detail": status.detail}
                if floor_station:
                    detail["station"] = floor_station
                unit.apply([fx.Record(kind, status.state == "online", None, device, detail)])
        if (
            isinstance(state, pick.PickStation)
            and status.state == "online"
            and device in state.slots
        ):
            # A panel shows anything after a reconnect: put its whole picture back.
            return await self._decide(unit, state, pick.Repaint(device))
        if isinstance(state, pack.PackStation):
            return await self._decide(unit, state, pack.DeviceState(device, status.state))
        return state

    async def _ack(self, unit: Unit, owned: Owned, state: State, device: str, ack: Ack) -> State:
        entry = owned.pending.get(ack.cmd_id)
        if entry is None:
            # Lights and clears are not logged (a takeover repaints them); only a failure
            # of one is worth a line. A logged command of another station is its own.
            if not ack.ok and device not in owned.spec.borrowed:
                unit.apply(
                    [
                        fx.Record(
                            "command_failed",
                            False,
                            None,
                            device,
                            {"cmd_id": ack.cmd_id, "error": ack.error},
                        )
                    ]
                )
            return state
        _, name, subject = entry
        result = await unit.conn.execute(
            update(device_commands)
            .where(
                and_(device_commands.c.cmd_id == ack.cmd_id, device_commands.c.acked_at.is_(None))
            )
            .values(acked_at=unit.now, ok=ack.ok, error=ack.error)
        )
        unit.acked.append((owned.id, ack.cmd_id))
        if result.rowcount == 0:
            return state  # a repeated ack: the first one already had its effect
        if not ack.ok:
            unit.apply(
                [
                    fx.Record(
                        f"{name}_failed",
                        False,
                        None,
                        device,
                        {"error": ack.error, "subject": subject},
                    )
                ]
            )
        if name == "print" and subject and isinstance(state, pack.PackStation):
            return await self._decide(
                unit, state, pack.PrintAck(subject, device, ack.ok, ack.error)
            )
        return state

    # --- requests --------------------------------------------------------------------

    async def _request(self, unit: Unit, owned: Owned, state: State, row: Any) -> tuple[State, Any]:
        """Apply a request row; its result (or refusal) is written with the batch."""
        from wcs.errors import WcsError

        body = dict(row.body or {})
        kind = row.kind
        unit.cause = None
        await unit.flush()  # a refusal rolls back to here: nothing buffered may cross it
        savepoint = await unit.conn.begin_nested()
        mark = unit.mark()
        try:
            state, result = await self._request_kind(
                unit, owned, state, kind, row.order_id, body, row.actor
            )
            await unit.flush()
        except WcsError as exc:
            await savepoint.rollback()
            unit.rewind(mark)
            outcome = {"error": exc.code, "detail": exc.message, "status": _status_of(exc)}
            await self._answer(unit, row.id, "refused", outcome)
            return state, outcome
        await savepoint.commit()
        await self._answer(unit, row.id, "done", result)
        return state, result

    async def _answer(self, unit: Unit, request_id: str, state: str, result: Any) -> None:
        await unit.conn.execute(
            update(floor_requests)
            .where(and_(floor_requests.c.id == request_id, floor_requests.c.state == "pending"))
            .values(state=state, result=result, done_at=unit.now)
        )

    async def _request_kind(
        self,
        unit: Unit,
        owned: Owned,
        state: State,
        kind: str,
        order_id: str | None,
        body: dict[str, Any],
        actor: str,
    ) -> tuple[State, Any]:
        from wcs.domain.waves import WavePolicy
        from wcs.services import qc as qc_service
        from wcs.services.orders import cancel_in
        from wcs.services.waves import release_in

        conn = unit.conn
        if kind in STOCK_REQUESTS:
            return await self.stock.request(unit, owned.id, state, kind, body, actor, self._decide)
        reason = body.get("reason") or "cancelled"
        if kind == "cancel" and order_id:
            if isinstance(state, pick.PickStation) and any(
                t.order_id == order_id for t in state.tasks
            ):
                state = await self._decide(unit, state, pick.Cancel(order_id, reason))
                return state, {"order_id": order_id, "state": "cancelled"}
            await unit.flush()
            event = await cancel_in(
                conn, unit.topics, order_id, actor=actor, reason=body.get("reason")
            )
            return state, {"order_id": order_id, "state": event.to_state}
        if kind == "qc_verdict" and order_id:
            photo = (str(body["photo"]), str(body["photo_sha256"])) if body.get("photo") else None
            on_bench = isinstance(state, qc.QcBench) and state.check is not None
            if on_bench and state.check.order_id == order_id:  # type: ignore[union-attr]
                verdict = qc.Verdict(
                    order_id, bool(body["packaging_ok"]), bool(body["appearance_ok"]),
                    body.get("note"),
                )  # fmt: skip
                new_state, effects, outcome = qc.decide(state, verdict)  # type: ignore[arg-type]
                unit.apply(effects)
                await unit.flush()
                if photo is not None:
                    await qc_service.attach_photo(conn, order_id, photo)
                return new_state, {"order_id": order_id, "qc": outcome}
            await unit.flush()
            outcome_ = await qc_service.operator_result_in(
                conn, unit.topics, order_id, packaging_ok=bool(body["packaging_ok"]),
                appearance_ok=bool(body["appearance_ok"]), note=body.get("note"), actor=actor,
                require_operator=self.settings.controller.qc_require_operator, photo=photo,
            )  # fmt: skip
            return state, {"order_id": order_id, "qc": outcome_}
        if kind == "qc_resolve" and order_id:
            await unit.flush()
            new = await qc_service.resolve_in(
                conn, unit.topics, order_id, action=str(body["action"]), actor=actor
            )
            return state, {"order_id": order_id, "state": new}
        if kind == "wave":
            await unit.flush()
            wave = await release_in(
                conn,
                unit.topics,
                self.plan.floor,
                actor=actor,
                policy=WavePolicy(max_orders=int(body.get("max_orders") or 200)),
            )
            return state, wave_result(wave)
        raise Refused(f"station {owned.id} cannot apply a {kind!r} request")


def _status_of(exc: Exception) -> int:
    from wcs.errors import Conflict, IllegalTransition, NotFound

    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, IllegalTransition | Conflict):
        return 409
    return 422


def wave_result(wave: Any) -> dict[str, Any]:
    return {
        "wave_id": wave.id,
        "distance_m": round(wave.distance_m, 1),
        "baseline_s_shape_m": round(wave.baseline_m, 1),
        "batches": [
            {
                "id": b.id,
                "station": b.station,
                "orders": b.orders,
                "stops": b.stops,
                "distance_m": round(b.distance_m, 1),
            }
            for b in wave.batches
        ],
        "held": wave.held,
        "at_risk": wave.at_risk,
    }
