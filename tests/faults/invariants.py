"""What must hold after any mix of crashes, read from the database and the load's logs.

- Every event the broker accepted has its effect, exactly once: its ``msg_id`` is in
  the inbox, and per device the scan outcomes recorded (pick, mispick, ...) number
  exactly the events processed - an outcome is written in the same transaction as
  the inbox row, so a lost effect or a second one shows up as a count mismatch.
- Units: a task never holds more picked units than it asks for; the picked units of
  each station equal the picks recorded for its scanner; a finished task's units are
  on its order line and in the stock ledger.
- Stock: for every SKU and location, on hand = opening balance + the ledger's moves
  (receipts, picks, restocks, write-offs), reserved = the active reservations, and
  neither is negative nor reserved above on hand.
- Orders: every order's events are numbered 1..n without gaps, each a legal
  transition from the previous one (``wcs.domain.states``), ending in the order's
  state; task progress agrees with the state.
- The office's own log: every confirmed order exists once under its key, every
  confirmed cancel left its order cancelled, and receipts booked are between the
  confirmed ones and the confirmed plus unanswered ones.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import asyncpg

from tests.faults.orders import OfficeLog
from wcs.domain.states import INITIAL, OrderState, find_transition

# What one scan at a pick station leaves behind: exactly one of these activity rows.
SCAN_OUTCOMES = (
    "pick",
    "mispick",
    "tote_bound",
    "tote_busy",
    "tote_no_batch",
    "tote_not_needed",
    "scan_no_station",
    "scan_ignored",
    "refused",
    "failed",
)


@dataclass
class Verdict:
    events_sent: int = 0
    events_applied: int = 0
    lost: int = 0
    duplicated: int = 0
    violations: list[str] = field(default_factory=list)
    picks: int = 0
    mispicks: int = 0
    # Refused scans by cause (wcs.domain.floor.pick: wrong_item, ahead, past_end, ...).
    refusals: Counter[str] = field(default_factory=Counter)
    orders_checked: int = 0
    # Order events written per controller instance ("controller:c1" ...).
    actors: Counter[str] = field(default_factory=Counter)

    def violation(self, text: str) -> None:
        self.violations.append(text)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and not self.violations


def dsn(db_url: str) -> str:
    return db_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def inbox_keys(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT msg_id FROM processed_messages")
    return {r[0] for r in rows}


async def check(
    db_url: str,
    opening: Mapping[tuple[str, str], int],
    sent: Mapping[str, set[str]],
    office: OfficeLog,
) -> Verdict:
    """``sent``: device -> msg_ids the broker accepted (PUBACKs and the witness)."""
    verdict = Verdict()
    conn = await asyncpg.connect(dsn(db_url))
    try:
        await _events(conn, sent, verdict)
        await _units(conn, verdict)
        await _stock(conn, opening, verdict)
        await _orders(conn, verdict)
        await _office(conn, office, verdict)
    finally:
        await conn.close()
    return verdict


async def _events(conn: asyncpg.Connection, sent: Mapping[str, set[str]], v: Verdict) -> None:
    inbox = await inbox_keys(conn)
    by_device: dict[str, int] = Counter(key.split("/", 1)[0] for key in inbox)
    outcomes = await conn.fetch(
        "SELECT device_id, kind, count(*) AS n FROM activity"
        " WHERE kind = ANY($1::text[]) AND device_id IS NOT NULL GROUP BY device_id, kind",
        list(SCAN_OUTCOMES),
    )
    effects: dict[str, int] = Counter()
    for row in outcomes:
        effects[row["device_id"]] += row["n"]
        if row["kind"] == "pick":
            v.picks += row["n"]
        elif row["kind"] == "mispick":
            v.mispicks += row["n"]
        elif row["kind"] == "failed":
            v.violation(f"{row['n']} event(s) from {row['device_id']} failed inside the controller")
    causes = await conn.fetch(
        "SELECT coalesce(detail->>'cause', 'unknown') AS cause, count(*) AS n FROM activity"
        " WHERE kind = 'mispick' GROUP BY 1"
    )
    v.refusals.update({row["cause"]: row["n"] for row in causes})
    for device, ids in sorted(sent.items()):
        v.events_sent += len(ids)
        missing = [m for m in ids if f"{device}/{m}" not in inbox]
        v.events_applied += len(ids) - len(missing)
        if missing:
            v.lost += len(missing)
            v.violation(
                f"{device}: {len(missing)} acknowledged event(s) never applied, e.g. {missing[:3]}"
            )
        unknown = by_device.get(device, 0) - (len(ids) - len(missing))
        if unknown > 0:
            v.violation(f"{device}: {unknown} event(s) applied that the broker never accepted")
    for device in sorted(set(by_device) | set(effects)):
        processed, done = by_device.get(device, 0), effects.get(device, 0)
        if done > processed:
            v.duplicated += done - processed
            v.violation(f"{device}: {done} scan outcomes for {processed} events (a second effect)")
        elif done < processed:
            v.lost += processed - done
            v.violation(f"{device}: {processed} events in the inbox but {done} outcomes")


async def _units(conn: asyncpg.Connection, v: Verdict) -> None:
    over = await conn.fetch(
        "SELECT id, order_id, qty, qty_picked FROM pick_tasks WHERE qty_picked > qty LIMIT 5"
    )
    if over:
        v.duplicated += len(over)
        v.violation(f"tasks with more units picked than asked: {[dict(r) for r in over]}")
    unfinished = await conn.fetchval(
        "SELECT count(*) FROM pick_tasks WHERE state = 'done' AND qty_picked <> qty"
    )
    if unfinished:
        v.violation(f"{unfinished} task(s) done with a unit count other than asked")
    per_station = await conn.fetch(
        "SELECT t.ptl_device AS device, sum(t.qty_picked) AS units FROM pick_tasks t"
        " GROUP BY t.ptl_device"
    )
    picked = {r["device"]: int(r["units"] or 0) for r in per_station}
    recorded = await conn.fetch(
        "SELECT device_id, sum((detail->>'qty')::int) AS units FROM activity"
        " WHERE kind = 'pick' GROUP BY device_id"
    )
    scanned = {r["device_id"]: int(r["units"] or 0) for r in recorded}
    for ptl, units in sorted(picked.items()):
        scanner = "scan-" + (ptl or "").rsplit("-", 1)[-1]
        if units != scanned.get(scanner, 0):
            v.violation(
                f"{ptl}: {units} units on its tasks but {scanned.get(scanner, 0)} picks recorded"
            )
    lines = await conn.fetch(
        "SELECT l.id, l.qty_picked, coalesce(sum(t.qty_picked) FILTER"
        " (WHERE t.state = 'done'), 0) AS done FROM order_lines l"
        " LEFT JOIN pick_tasks t ON t.line_id = l.id GROUP BY l.id, l.qty_picked"
        " HAVING l.qty_picked <> coalesce(sum(t.qty_picked) FILTER (WHERE t.state = 'done'), 0)"
        " LIMIT 5"
    )
    if lines:
        v.violation(f"order lines whose picked count disagrees with their tasks: {lines}")


async def _stock(
    conn: asyncpg.Connection, opening: Mapping[tuple[str, str], int], v: Verdict
) -> None:
    moves: dict[tuple[str, str], int] = defaultdict(int)
    picked_out: dict[tuple[str, str], int] = defaultdict(int)
    for row in await conn.fetch(
        "SELECT sku, location, kind, sum(qty) AS q FROM stock_moves GROUP BY sku, location, kind"
    ):
        key = (row["sku"], row["location"])
        moves[key] += int(row["q"])
        if row["kind"] == "pick":
            picked_out[key] -= int(row["q"])
    reserved: dict[tuple[str, str], int] = defaultdict(int)
    for row in await conn.fetch(
        "SELECT sku, location, sum(qty) AS q FROM reservations WHERE state = 'active'"
        " GROUP BY sku, location"
    ):
        reserved[(row["sku"], row["location"])] = int(row["q"])
    tasks_out: dict[tuple[str, str], int] = defaultdict(int)
    for row in await conn.fetch(
        "SELECT sku, location, sum(qty_picked) AS q FROM pick_tasks WHERE state = 'done'"
        " GROUP BY sku, location"
    ):
        tasks_out[(row["sku"], row["location"])] = int(row["q"])
    piles = await conn.fetch("SELECT sku, location, on_hand, reserved FROM stock")
    bad: list[str] = []
    for row in piles:
        key = (row["sku"], row["location"])
        on_hand, held = int(row["on_hand"]), int(row["reserved"])
        expected = opening.get(key, 0) + moves.get(key, 0)
        if on_hand != expected:
            bad.append(f"{key}: on hand {on_hand}, ledger says {expected}")
        if held != reserved.get(key, 0):
            bad.append(f"{key}: reserved {held}, active reservations {reserved.get(key, 0)}")
        if not 0 <= held <= on_hand:
            bad.append(f"{key}: reserved {held} outside 0..on hand {on_hand}")
        if picked_out.get(key, 0) != tasks_out.get(key, 0):
            bad.append(
                f"{key}: {picked_out.get(key, 0)} units picked in the ledger, "
                f"{tasks_out.get(key, 0)} on finished tasks"
            )
    known = {(r["sku"], r["location"]) for r in piles}
    bad += [f"{key}: ledger moves for a pile that does not exist" for key in set(moves) - known]
    if bad:
        v.violation(f"stock not conserved at {len(bad)} pile(s): {bad[:5]}")


async def _orders(conn: asyncpg.Connection, v: Verdict) -> None:
    heads = {
        r["id"]: (r["state"], r["seq"])
        for r in await conn.fetch("SELECT id, state, seq FROM orders")
    }
    chains: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in await conn.fetch(
        "SELECT order_id, seq, from_state, to_state FROM order_events ORDER BY order_id, seq"
    ):
        chains[row["order_id"]].append(row)
    bad: list[str] = []
    known_states = set(OrderState)
    for order_id, (state, seq) in heads.items():
        events = chains.get(order_id, [])
        numbers = [e["seq"] for e in events]
        if numbers != list(range(1, len(events) + 1)) or seq != len(events):
            bad.append(f"{order_id}: event seq {numbers[:12]} for head seq {seq}")
            continue
        previous: str | None = None
        for e in events:
            src, dst = e["from_state"], e["to_state"]
            if src != previous:
                bad.append(f"{order_id}#{e['seq']}: from {src} but the order was {previous}")
            legal = (src is None and dst == INITIAL) or (
                src is not None and find_transition(src, dst) is not None
            )
            if not legal:
                bad.append(f"{order_id}#{e['seq']}: illegal {src} -> {dst}")
            previous = dst
        if state != previous or state not in known_states:
            bad.append(f"{order_id}: state {state}, last event says {previous}")
    v.orders_checked = len(heads)
    for row in await conn.fetch(
        "SELECT actor, count(*) AS n FROM order_events WHERE actor LIKE 'controller:%'"
        " GROUP BY actor"
    ):
        v.actors[row["actor"]] = row["n"]
    progress = await conn.fetch(
        "SELECT o.id, o.state, sum(t.qty_picked) AS units,"
        " bool_and(t.state = 'done') AS all_done FROM orders o"
        " JOIN pick_tasks t ON t.order_id = o.id GROUP BY o.id, o.state"
    )
    for row in progress:
        state, units, all_done = row["state"], int(row["units"] or 0), row["all_done"]
        if state == OrderState.PICK_PLANNED and units:
            bad.append(f"{row['id']}: pick_planned with {units} unit(s) picked")
        elif state == OrderState.PICKING and (not units or all_done):
            bad.append(f"{row['id']}: picking with {units} unit(s), all tasks done={all_done}")
        elif state == OrderState.PICKED and not all_done:
            bad.append(f"{row['id']}: picked with tasks still open")
    if bad:
        v.violation(f"{len(bad)} order history problem(s): {bad[:6]}")


async def _office(conn: asyncpg.Connection, office: OfficeLog, v: Verdict) -> None:
    keys = sorted(set(office.orders) | office.orders_unanswered)
    rows = await conn.fetch(
        "SELECT idempotency_key, id, state FROM orders WHERE idempotency_key = ANY($1::text[])",
        keys,
    )
    found: dict[str, list[str]] = defaultdict(list)
    state_of = {}
    for row in rows:
        found[row["idempotency_key"]].append(row["id"])
        state_of[row["id"]] = row["state"]
    for key, order_id in office.orders.items():
        if found.get(key) != [order_id]:
            v.violation(f"intake {key} answered {order_id}, database holds {found.get(key)}")
    for key in office.orders_unanswered:
        if len(found.get(key, [])) > 1:
            v.violation(f"intake {key} created {len(found[key])} orders")
    for order_id in office.cancelled:
        if state_of.get(order_id) != OrderState.CANCELLED:
            v.violation(f"cancel of {order_id} confirmed, order is {state_of.get(order_id)}")
    booked = await conn.fetchval(
        "SELECT coalesce(sum(qty), 0) FROM stock_moves WHERE kind = 'receipt'"
    )
    low = sum(q for _, _, q in office.receipts_booked)
    high = low + sum(q for _, _, q in office.receipts_unanswered)
    if not low <= booked <= high:
        v.violation(f"{booked} units received in the ledger, the desk booked {low}..{high}")
