"""The edge's side of stock work: counts, adjustments and replenishment moves.

A location belongs to the station whose PTL panel lights it (its pick station), else
to ``floor`` (reserve locations: counted over the API). This module answers the
floor domain's stock asks (``LookForWork`` with the station's facts, ``OpenWork``
with the new rows, ``Judge`` with the book), writes the stock effects
(``wcs.persistence.stockwork``), applies the API's count requests for the owner and,
for the floor's owner, opens the ABC schedule's counts of the piles no pick station
counts. No rule is decided here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from controller import reads
from controller.stations import FLOOR, FloorPlan
from controller.store import Unit
from wcs.domain.floor import counts, facework, pick
from wcs.domain.floor import effects as fx
from wcs.domain.floor.machines import BatchState, CountState, MoveState
from wcs.errors import NotFound, ValidationFailed
from wcs.persistence import inventory, stockwork
from wcs.persistence.tables import count_tasks, move_tasks, pick_batches, pick_faces
from wcs.settings import Settings

STOCK_EFFECTS = (fx.SaveCount, fx.SaveMove, fx.Adjust, fx.Transfer)
STOCK_ASKS = (fx.LookForWork, fx.OpenWork, fx.Judge)
REQUESTS = ("count_create", "count_key", "count_accept")

Decide = Callable[[Unit, Any, Any], Awaitable[Any]]


class StockDesk:
    def __init__(self, settings: Settings, plan: FloorPlan) -> None:
        cfg = settings.inventory
        self.policy = cfg.policy()
        self.counting = cfg.counts
        self.per_gap = cfg.counts_per_gap
        self.period = timedelta(seconds=cfg.count_period_s)
        self.alert_period = timedelta(seconds=cfg.adjusted_twice_s)
        self.plan = plan
        self.here: dict[str, list[str]] = {}
        for code, (panel, _) in plan.location_of.items():
            self.here.setdefault(plan.owner_of.get(panel, FLOOR), []).append(code)

    def station_of(self, location: str) -> str:
        slot = self.plan.location_of.get(location)
        return self.plan.owner_of.get(slot[0], FLOOR) if slot else FLOOR

    def slot(self, station: str, location: str) -> tuple[str, int] | None:
        slot = self.plan.location_of.get(location)
        return slot if slot is not None and self.station_of(location) == station else None

    # --- the floor's own piles ---------------------------------------------------------

    @property
    def schedule_every_s(self) -> float:
        """How often the floor's owner looks for due piles: a few times per shortest
        interval of the schedule, at most once a minute."""
        return min(60.0, max(0.5, self.policy.interval("A").total_seconds() / 4))

    async def schedule_floor(self, conn: AsyncConnection, now: datetime, actor: str) -> list[Any]:
        """The ABC schedule for the piles no pick station counts (reserve, and pick
        locations no panel lights): open the counts that are due, for ``floor``; a
        stock controller counts them over the API. Returns the rows opened."""
        if not self.counting:
            return []
        lit = self.plan.location_of
        here = [
            loc
            for loc in await stockwork.stocked_locations(conn, inventory.RESERVABLE_ZONES)
            if loc not in lit
        ]
        if not here:
            return []
        piles = await stockwork.piles(conn, here, stocked_only=True)
        picked = await stockwork.picked_since(conn, now - self.period)
        klass = counts.classes(picked, {p.sku for p in piles}, self.policy)
        due = counts.due(piles, klass, now, self.policy)
        return await stockwork.open_counts(
            conn,
            [fx.NewCount(p.sku, p.location, counts.ABC) for p in due],
            self.station_of,
            actor=actor,
            now=now,
        )

    # --- a pick station taken over ---------------------------------------------------

    async def load(self, unit: Unit, station: str) -> facework.StockWork:
        """The station's stock work as it left it: a move or count at hand resumes."""
        conn = unit.conn
        work: facework.Work | None = None
        move = (
            await conn.execute(
                select(move_tasks)
                .where(
                    and_(move_tasks.c.station == station, move_tasks.c.state == MoveState.ACTIVE)
                )
                .order_by(move_tasks.c.id)
                .limit(1)
            )
        ).first()
        if move is not None:
            work = stockwork.move_of(move, self.slot(station, move.dst))
        else:
            count = (
                await conn.execute(
                    select(count_tasks)
                    .where(
                        and_(
                            count_tasks.c.station == station,
                            count_tasks.c.state == CountState.COUNTING,
                        )
                    )
                    .order_by(count_tasks.c.id)
                    .limit(1)
                )
            ).first()
            if count is not None:
                work = stockwork.count_of(count, self.slot(station, count.location))
        faces = frozenset(
            (
                await conn.scalars(
                    select(pick_faces.c.location).where(
                        pick_faces.c.location.in_(self.here.get(station, []))
                    )
                )
            ).all()
        )
        codes = await reads.item_codes(conn, [work.sku] if work is not None else [])
        return facework.StockWork(
            self.policy, self.counting, self.per_gap, work=work, faces=faces, codes=codes
        )

    # --- effects ---------------------------------------------------------------------

    async def write(self, unit: Unit, effects: Sequence[fx.Effect]) -> None:
        mine = [e for e in effects if isinstance(e, STOCK_EFFECTS)]
        if not mine:
            return
        await unit.flush()  # stock the batch moved so far, before the books are read
        for effect in mine:
            match effect:
                case fx.SaveCount():
                    await stockwork.save_count(unit.conn, effect, unit.now)
                case fx.SaveMove():
                    await stockwork.save_move(unit.conn, effect, unit.now)
                case fx.Adjust():
                    await stockwork.adjust(
                        unit.conn, unit.topics, effect, actor=unit.actor, now=unit.now
                    )
                case fx.Transfer():
                    await stockwork.transfer(unit.conn, effect, actor=unit.actor, now=unit.now)

    async def answer(self, unit: Unit, station: str, ask: fx.Effect) -> Any:
        """The follow-up event for a stock ask."""
        await unit.flush()
        conn, now = unit.conn, unit.now
        match ask:
            case fx.LookForWork():
                facts = await stockwork.station_facts(
                    conn, station, self.here.get(station, ()), now=now, period=self.period
                )
                todo: list[facework.Work] = [
                    stockwork.move_of(m, self.slot(station, m.dst)) for m in facts.moves
                ]
                todo += [
                    stockwork.count_of(c, self.slot(station, c.location)) for c in facts.counts
                ]
                wanted = {f.sku for f in facts.faces} | {w.sku for w in todo}
                return facework.WorkRead(
                    now,
                    tuple(todo),
                    facts.faces,
                    facts.reserves,
                    facts.waiting,
                    facts.piles,
                    facts.picked,
                    await self._batch_waiting(unit, station),
                    await reads.item_codes(conn, sorted(wanted)),
                )
            case fx.OpenWork():
                new_counts = await stockwork.open_counts(
                    conn, ask.counts, self.station_of, actor=unit.actor, now=now
                )
                new_moves = await stockwork.open_moves(conn, ask.moves, station, now=now)
                mine = [c for c in new_counts if c.station == station]
                return facework.WorkOpened(
                    tuple(stockwork.count_of(c, self.slot(station, c.location)) for c in mine),
                    tuple(stockwork.move_of(m, self.slot(station, m.dst)) for m in new_moves),
                    await reads.item_codes(conn, sorted({r.sku for r in (*mine, *new_moves)})),
                )
            case fx.Judge():
                count = ask.count
                return facework.Keyed(count, ask.qty, ask.by, await self.book(unit, count))
        return None

    async def book(self, unit: Unit, count: counts.Count) -> counts.Book:
        return await stockwork.book(
            unit.conn, count.sku, count.location, now=unit.now, alert_period=self.alert_period
        )

    async def _batch_waiting(self, unit: Unit, station: str) -> bool:
        from sqlalchemy import or_

        found = await unit.conn.scalar(
            select(pick_batches.c.id)
            .where(
                and_(
                    or_(pick_batches.c.station == station, pick_batches.c.station.is_(None)),
                    pick_batches.c.state == BatchState.OPEN,
                )
            )
            .limit(1)
        )
        return found is not None

    # --- requests from the API -------------------------------------------------------

    async def request(
        self,
        unit: Unit,
        station: str,
        state: Any,
        kind: str,
        body: dict[str, Any],
        actor: str,
        decide: Decide,
    ) -> tuple[Any, dict[str, Any]]:
        """Apply a count request; the station's next state and the answer."""
        if kind == "count_create":
            location, sku = str(body["location"]), str(body["sku"])
            # The floor's owner opens counts for any station (an API without the floor
            # file asks it); a pick station only for its own locations.
            if station != FLOOR and self.station_of(location) != station:
                raise ValidationFailed(f"location {location} is not counted by station {station}")
            await unit.flush()
            rows = await stockwork.open_counts(
                unit.conn,
                [fx.NewCount(sku, location, counts.SUPERVISOR)],
                self.station_of,
                actor=actor,
                now=unit.now,
            )
            if not rows:
                existing = await unit.conn.scalar(
                    select(count_tasks.c.id).where(
                        and_(
                            count_tasks.c.sku == sku,
                            count_tasks.c.location == location,
                            count_tasks.c.state.in_(stockwork.OPEN_COUNTS),
                        )
                    )
                )
                return state, {"count_id": existing, "created": False}
            return state, {"count_id": int(rows[0].id), "created": True}
        count_id = int(body["count_id"])
        await unit.flush()
        found = await stockwork.load_count(unit.conn, count_id)
        if found is None:
            raise NotFound(f"no count {count_id}")
        count, _ = found
        book = await self.book(unit, count)
        if kind == "count_key":
            event: Any = facework.Keyed(count, int(body["qty"]), actor, book)
        else:
            qty = body.get("qty")
            event = facework.Accepted(count, actor, book, None if qty is None else int(qty))
        if isinstance(state, pick.PickStation) and state.stock is not None:
            state = await decide(unit, state, event)
        else:
            if isinstance(event, facework.Keyed):
                done, effects = counts.judge(count, event.qty, actor, book, self.policy)
            else:
                done, effects = counts.accept(count, actor, book, qty=event.qty)
            unit.apply(effects)
            await self.write(unit, effects)
            count = done
        after = await stockwork.load_count(unit.conn, count_id)
        assert after is not None
        return state, _count_answer(after[0])


def _count_answer(count: counts.Count) -> dict[str, Any]:
    """What the counter is told: whether the count closed, not the book."""
    outcome = {
        CountState.DONE: "closed",
        CountState.RECOUNT: "recount",
        CountState.REVIEW: "review",
    }.get(count.state, str(count.state))
    return {"count_id": count.id, "state": str(count.state), "outcome": outcome}
