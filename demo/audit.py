"""After a shift: do the system's books agree with the floor, and with themselves?

- Stock: every shelf holds what the system's stock table says, and no pile is negative
  or over-reserved, except by drift nobody has found yet: a pile's book less its
  shelf is exactly what drifted away unseen (:meth:`device_sim.world.World.drift`)
  less what counts booked and short picks wrote off beyond the damaged units. Per
  article, what was received is on a shelf, in a tote, in a parcel, in the damage bin
  or lost, in the world and in the system's ledger alike (units in totes and parcels
  are the ``picked`` reservations).
- Orders: every order's event log counts 1, 2, 3 ... without a gap and ends at the
  order's current state and sequence number.

Each finding is one sentence; no findings means the books balance.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from device_sim.world import World
from wcs.persistence.tables import (
    count_tasks,
    order_events,
    orders,
    reservations,
    stock,
    stock_moves,
)


async def stock_findings(engine: AsyncEngine, world: World) -> list[str]:
    findings: list[str] = []
    async with engine.connect() as conn:
        piles = (
            await conn.execute(
                select(stock.c.sku, stock.c.location, stock.c.on_hand, stock.c.reserved)
            )
        ).all()
        moves = (
            await conn.execute(
                select(
                    stock_moves.c.sku,
                    stock_moves.c.location,
                    stock_moves.c.kind,
                    func.sum(stock_moves.c.qty),
                ).group_by(stock_moves.c.sku, stock_moves.c.location, stock_moves.c.kind)
            )
        ).all()
        picked = (
            await conn.execute(
                select(reservations.c.sku, func.sum(reservations.c.qty))
                .where(reservations.c.state == "picked")
                .group_by(reservations.c.sku)
            )
        ).all()
    books: dict[str, int] = {}
    for sku, location, on_hand, reserved in piles:
        books[location] = on_hand
        if on_hand < 0 or reserved < 0 or reserved > on_hand:
            findings.append(f"{sku} at {location}: on hand {on_hand}, reserved {reserved}")
        if world.shelves.get(location) is None and on_hand:
            findings.append(f"{sku} at {location}: {on_hand} on the books, no such shelf")
    ledger: defaultdict[str, Counter[str]] = defaultdict(Counter)
    here: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for sku, location, kind, qty in moves:
        ledger[sku][kind] += int(qty or 0)
        here[location][kind] += int(qty or 0)
    for location, shelf in sorted(world.shelves.items()):
        # Corrected by the system: counts booked, and short picks' write-offs beyond
        # the units the picker saw damaged (those left the shelf for the damage bin).
        corrected = here[location]["count"] + here[location]["shortage"]
        corrected += world.damaged_at[location]
        unseen = world.drifted[location]
        if books.get(location, 0) - shelf.units != corrected - unseen:
            findings.append(
                f"{shelf.sku} at {location}: the system says {books.get(location, 0)}, "
                f"the shelf holds {shelf.units}"
                + (f" ({unseen:+d} drifted, {corrected:+d} corrected)" if unseen else "")
            )
    in_totes = {sku: int(qty or 0) for sku, qty in picked}
    for sku, census in sorted(world.census().items()):
        if census.accounted != census.received:
            findings.append(
                f"{sku}: {census.received} units put away but {census.accounted} accounted for "
                f"(shelves {census.on_shelves}, totes {census.in_totes}, parcels "
                f"{census.in_parcels}, damaged {census.damaged}, lost {census.lost})"
            )
        if ledger[sku]["receipt"] != census.received:
            findings.append(
                f"{sku}: {ledger[sku]['receipt']} units booked in, {census.received} shelved"
            )
        if not world.drifted and -ledger[sku]["shortage"] != census.damaged:
            findings.append(
                f"{sku}: {-ledger[sku]['shortage']} units written off short, "
                f"{census.damaged} in the damage bin"
            )
        out = census.in_totes + census.in_parcels
        if in_totes.get(sku, 0) != out:
            findings.append(
                f"{sku}: {in_totes.get(sku, 0)} units picked on the books, "
                f"{out} in totes and parcels"
            )
    return findings


async def order_log_findings(engine: AsyncEngine) -> list[str]:
    findings: list[str] = []
    async with engine.connect() as conn:
        heads = {
            r.id: (r.state, r.seq)
            for r in await conn.execute(select(orders.c.id, orders.c.state, orders.c.seq))
        }
        rows = await conn.execute(
            select(order_events.c.order_id, order_events.c.seq, order_events.c.to_state).order_by(
                order_events.c.order_id, order_events.c.seq
            )
        )
        logs: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
        for order_id, seq, to_state in rows:
            logs[order_id].append((seq, to_state))
    for order_id, (state, seq) in sorted(heads.items()):
        log = logs.get(order_id, [])
        seqs = [s for s, _ in log]
        if seqs != list(range(1, len(seqs) + 1)):
            findings.append(f"order {order_id}: event numbers {seqs} have gaps or repeats")
        elif not log or log[-1] != (seq, state):
            last = log[-1] if log else None
            findings.append(f"order {order_id} is '{state}' #{seq} but its log ends at {last}")
    return findings


async def counted_findings(engine: AsyncEngine, world: World) -> tuple[int, list[str]]:
    """Every pile a count closed: its book equals its shelf. (piles counted, findings)"""
    async with engine.connect() as conn:
        counted = {
            (r.sku, r.location)
            for r in await conn.execute(
                select(count_tasks.c.sku, count_tasks.c.location).where(
                    count_tasks.c.state == "done"
                )
            )
        }
        books = {
            (r.sku, r.location): int(r.on_hand)
            for r in await conn.execute(select(stock.c.sku, stock.c.location, stock.c.on_hand))
        }
    findings = []
    for sku, location in sorted(counted):
        shelf = world.shelves.get(location)
        units = shelf.units if shelf is not None and shelf.sku == sku else 0
        if books.get((sku, location), 0) != units:
            findings.append(
                f"{sku} at {location} was counted, yet the system says "
                f"{books.get((sku, location), 0)} and the shelf holds {units}"
            )
    return len(counted), findings


async def audit(engine: AsyncEngine, world: World) -> list[str]:
    return [*await stock_findings(engine, world), *await order_log_findings(engine)]
