"""A lean durable responder: the floor under any controller that commits before it answers.

``python -m bench.durable --host H --port P --database URL``: every QoS 1 message on
``bench/req/<k>`` is stored in PostgreSQL, keyed by its payload, and published back on
``bench/rep/<k>`` once the row is committed; a payload stored before is not answered
again (one effect per message, as the controller's inbox does).

It does the least a durable answer needs: group commit with two committers, each
micro-batch one autocommit ``INSERT`` (one round trip, its own transaction, flushed to
the WAL before the reply goes out). Beside the bare echo it shows what durability
itself costs on the machine, and so how much of the controller's latency is its own
work: its round trips per batch and the decisions between them.

``--rows pick`` (on a database holding the controller bench's floor) writes instead
what the controller writes for a pick scan, with no decision and no state: the inbox
key, the activity row and the task's new count for every request, and for every fourth
(the task's last unit) the rows of a finished task: order line, stock and its move,
reservation, tote, the next task lit, the order's move with its event and outbox
message, marked sent. One statement per table per micro-batch, one transaction.
``--rows pick-one`` writes the same rows in one statement per micro-batch. They are
the floor under the controller's own figures: what the rows a scan must leave cost
PostgreSQL and a lean client, apart from deciding them.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable

import asyncpg
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from wcs.mqtt.client import set_paho_nodelay

TABLE = "bench_durable"
COMMITTERS = 2

_STORE = (
    f"INSERT INTO {TABLE} (msg_key, topic_key, payload)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])"
    " ON CONFLICT (msg_key) DO NOTHING RETURNING topic_key, payload"
)


class PickRows:
    """The rows of a pick scan, per micro-batch (``--rows pick`` and ``pick-one``).

    A request's number (the digits after the last ``-`` of its payload) names its
    task; every fourth is a task's last unit. As in the controller, a station's
    requests all go to one committer (``lane``): no row is written by both, so no
    batch waits for the other's locks."""

    INBOX = (
        "INSERT INTO processed_messages (msg_id, topic, at)"
        " SELECT k, 'bench/req', now() FROM unnest($1::text[]) AS k"
        " ON CONFLICT DO NOTHING RETURNING msg_id"
    )
    ACTIVITY = (
        "INSERT INTO activity (at, kind, ok, order_id, device_id, station, detail)"
        " SELECT now(), 'pick', true, o, 'scan-bench', NULL, NULL FROM unnest($1::text[]) AS o"
    )
    TASKS = (
        "UPDATE pick_tasks t SET qty_picked = coalesce(v.q, t.qty_picked), state = v.s,"
        " updated_at = now()"
        " FROM unnest($1::bigint[], $2::int[], $3::text[]) AS v(id, q, s) WHERE t.id = v.id"
    )
    LINES = "UPDATE order_lines SET qty_picked = qty_picked + 1 WHERE id = ANY($1::bigint[])"
    SHELF = (
        "UPDATE stock s SET on_hand = on_hand - 0, reserved = reserved - 0, updated_at = now()"
        " FROM unnest($1::text[], $2::text[]) AS v(sku, loc)"
        " WHERE s.sku = v.sku AND s.location = v.loc"
    )
    MOVES = (
        "INSERT INTO stock_moves (sku, location, kind, qty, order_id, actor, at)"
        " SELECT sku, loc, 'pick', -1, o, 'bench', now()"
        " FROM unnest($1::text[], $2::text[], $3::text[]) AS v(sku, loc, o)"
    )
    RESERVATIONS = "UPDATE reservations SET state = state WHERE id = ANY($1::bigint[])"
    TOTES = (
        "UPDATE totes SET state = state, updated_at = now()"
        " WHERE order_id = ANY($1::text[]) AND state IN ('picking', 'bound')"
    )
    ORDERS = (
        "UPDATE orders SET seq = seq + 1, updated_at = now()"
        " WHERE id = ANY($1::text[]) RETURNING id, seq"
    )
    EVENTS = (
        "INSERT INTO order_events (order_id, seq, from_state, to_state, actor, reason, at)"
        " SELECT o, q, 'pick_planned', 'pick_planned', 'bench', NULL, now()"
        " FROM unnest($1::text[], $2::int[]) AS v(o, q)"
    )
    OUTBOX = (
        "INSERT INTO outbox (topic, payload, qos, retain, created_at, deferred_until)"
        " SELECT 'bench/order/' || o, '{}', 1, false, now(), NULL"
        " FROM unnest($1::text[]) AS o RETURNING id"
    )
    SENT = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"

    # All of it as one statement: one round trip per micro-batch (PostgreSQL's
    # data-modifying CTEs), the outbox rows written as sent.
    ONE = (
        "WITH inbox AS (INSERT INTO processed_messages (msg_id, topic, at)"
        " SELECT k, 'bench/req', now() FROM unnest($1::text[]) AS k"
        " ON CONFLICT DO NOTHING RETURNING msg_id),"
        " act AS (INSERT INTO activity (at, kind, ok, order_id, device_id, station, detail)"
        " SELECT now(), 'pick', true, o, 'scan-bench', NULL, NULL FROM unnest($2::text[]) AS o),"
        " task AS (UPDATE pick_tasks t SET qty_picked = coalesce(v.q, t.qty_picked),"
        " state = v.s, updated_at = now()"
        " FROM unnest($3::bigint[], $4::int[], $5::text[]) AS v(id, q, s) WHERE t.id = v.id),"
        " line AS (UPDATE order_lines SET qty_picked = qty_picked + 1"
        " WHERE id = ANY($6::bigint[])),"
        " shelf AS (UPDATE stock s SET on_hand = on_hand - 0, reserved = reserved - 0,"
        " updated_at = now() FROM unnest($7::text[], $8::text[]) AS v(sku, loc)"
        " WHERE s.sku = v.sku AND s.location = v.loc),"
        " mv AS (INSERT INTO stock_moves (sku, location, kind, qty, order_id, actor, at)"
        " SELECT sku, loc, 'pick', -1, o, 'bench', now()"
        " FROM unnest($7::text[], $8::text[], $9::text[]) AS v(sku, loc, o)),"
        " res AS (UPDATE reservations SET state = state WHERE id = ANY($10::bigint[])),"
        " tote AS (UPDATE totes SET state = state, updated_at = now()"
        " WHERE order_id = ANY($9::text[]) AND state IN ('picking', 'bound')),"
        " moved AS (UPDATE orders SET seq = seq + 1, updated_at = now()"
        " WHERE id = ANY($9::text[]) RETURNING id, seq),"
        " ev AS (INSERT INTO order_events (order_id, seq, from_state, to_state, actor, reason, at)"
        " SELECT id, seq, 'pick_planned', 'pick_planned', 'bench', NULL, now() FROM moved),"
        " ob AS (INSERT INTO outbox (topic, payload, qos, retain, created_at, published_at)"
        " SELECT 'bench/order/' || id, '{}', 1, false, now(), now() FROM moved)"
        " SELECT msg_id FROM inbox"
    )

    def __init__(self, tasks: list[asyncpg.Record], *, one: bool = False) -> None:
        self.tasks = tasks
        self.one = one
        stations = sorted({t["batch_id"] for t in tasks})
        self._lanes = {batch: i % COMMITTERS for i, batch in enumerate(stations)}

    def lane(self, payload: bytes) -> int:
        """The committer of the request's station."""
        task = self.tasks[int(payload.rsplit(b"-", 1)[1]) % len(self.tasks)]
        return self._lanes[task["batch_id"]]

    def _plan(
        self, keys: list[str]
    ) -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
        """The tasks the keys scan, those they finish, and the next task lit for each
        finished one at its station (unless it is scanned in the same batch)."""
        numbers = [int(key.rsplit("-", 1)[1]) for key in keys]
        tasks = [self.tasks[n % len(self.tasks)] for n in numbers]
        ends = [t for n, t in zip(numbers, tasks, strict=True) if n % 4 == 3]
        scanned = {t["id"] for t in tasks}
        following = (self.tasks[(n + 1) % len(self.tasks)] for n in numbers if n % 4 == 3)
        lit = [
            t
            for t, done in zip(following, ends, strict=True)
            if t["batch_id"] == done["batch_id"] and t["id"] not in scanned
        ]
        return tasks, ends, lit

    async def store(
        self, conn: asyncpg.Connection, batch: list[tuple[str, bytes]]
    ) -> list[tuple[str, bytes]]:
        """Write the batch's rows; the requests to answer (those not seen before)."""
        if self.one:
            return await self._in_one(conn, batch)
        return await self._per_table(conn, batch)

    async def _in_one(
        self, conn: asyncpg.Connection, batch: list[tuple[str, bytes]]
    ) -> list[tuple[str, bytes]]:
        """Answers the new keys only, but writes the batch's rows either way (the bench
        never repeats a key; the inbox is here for its cost)."""
        keys = [payload.decode(errors="replace") for _, payload in batch]
        tasks, ends, lit = self._plan(keys)
        fresh = {
            r[0]
            for r in await conn.fetch(
                self.ONE,
                keys,
                [t["order_id"] for t in tasks],
                [t["id"] for t in tasks] + [t["id"] for t in lit],
                [1] * len(tasks) + [None] * len(lit),
                ["lit"] * (len(tasks) + len(lit)),
                [t["line_id"] for t in ends],
                [t["sku"] for t in ends],
                [t["location"] for t in ends],
                [t["order_id"] for t in ends],
                [t["reservation_id"] for t in ends],
            )
        }
        return [item for item, key in zip(batch, keys, strict=True) if key in fresh]

    async def _per_table(
        self, conn: asyncpg.Connection, batch: list[tuple[str, bytes]]
    ) -> list[tuple[str, bytes]]:
        keys = [payload.decode(errors="replace") for _, payload in batch]
        async with conn.transaction():
            fresh = {r[0] for r in await conn.fetch(self.INBOX, keys)}
            done = [item for item, key in zip(batch, keys, strict=True) if key in fresh]
            if not done:
                return []
            tasks, ends, lit = self._plan([key for key in keys if key in fresh])
            await conn.execute(self.ACTIVITY, [t["order_id"] for t in tasks])
            await conn.execute(
                self.TASKS,
                [t["id"] for t in tasks] + [t["id"] for t in lit],
                [1] * len(tasks) + [None] * len(lit),
                ["lit"] * (len(tasks) + len(lit)),
            )
            if ends:
                orders = [t["order_id"] for t in ends]
                await conn.execute(self.LINES, [t["line_id"] for t in ends])
                await conn.execute(
                    self.SHELF, [t["sku"] for t in ends], [t["location"] for t in ends]
                )
                await conn.execute(
                    self.MOVES, [t["sku"] for t in ends], [t["location"] for t in ends], orders
                )
                await conn.execute(self.RESERVATIONS, [t["reservation_id"] for t in ends])
                await conn.execute(self.TOTES, orders)
                moved = await conn.fetch(self.ORDERS, orders)
                await conn.execute(self.EVENTS, [r[0] for r in moved], [r[1] for r in moved])
                sent = await conn.fetch(self.OUTBOX, orders)
                await conn.execute(self.SENT, [r[0] for r in sent])
        return done


class Responder:
    """Requests arrive on paho's thread; committers in the event loop store and answer.

    One row per request: both committers take whatever is pending. A pick scan's
    rows: each committer takes its own stations' requests (``PickRows.lane``)."""

    def __init__(self, publish: Callable[[str, bytes], object], rows: PickRows | None) -> None:
        self.publish = publish
        self.rows = rows
        lanes = COMMITTERS if rows is not None else 1
        self.pending: list[list[tuple[str, bytes]]] = [[] for _ in range(lanes)]
        self.ready = [asyncio.Event() for _ in range(lanes)]

    def add(self, item: tuple[str, bytes]) -> None:
        """``item`` is (topic key, payload)."""
        lane = self.rows.lane(item[1]) if self.rows is not None else 0
        self.pending[lane].append(item)
        self.ready[lane].set()

    async def commit_loop(self, conn: asyncpg.Connection, n: int) -> None:
        lane = n % len(self.pending)
        ready = self.ready[lane]
        while True:
            while not self.pending[lane]:
                ready.clear()
                await ready.wait()
            batch, self.pending[lane] = self.pending[lane], []
            if self.rows is not None:
                for key, payload in await self.rows.store(conn, batch):
                    self.publish(f"bench/rep/{key}", payload)
                continue
            rows = await conn.fetch(
                _STORE,
                [payload.decode(errors="replace") for _, payload in batch],
                [key for key, _ in batch],
                [payload for _, payload in batch],
            )
            for row in rows:
                self.publish(f"bench/rep/{row['topic_key']}", row["payload"])


async def serve(host: str, port: int, dsn: str, rows: str | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    conns = [await asyncpg.connect(dsn) for _ in range(COMMITTERS)]
    await conns[0].execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE}"
        " (msg_key text PRIMARY KEY, topic_key text NOT NULL, payload bytea NOT NULL)"
    )
    pick = None
    if rows is not None:
        pick = PickRows(
            await conns[0].fetch(
                "SELECT id, batch_id, order_id, line_id, reservation_id, sku, location"
                " FROM pick_tasks ORDER BY id"
            ),
            one=rows == "pick-one",
        )
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-durable")
    responder = Responder(lambda topic, body: client.publish(topic, body, qos=1), pick)

    subscribed = asyncio.Event()

    def on_connect(c: mqtt.Client, *_: object) -> None:
        set_paho_nodelay(c)
        c.subscribe("bench/req/+", qos=1)

    def on_subscribe(*_: object) -> None:
        loop.call_soon_threadsafe(subscribed.set)

    def on_message(_c: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        item = (message.topic.rsplit("/", 1)[1], bytes(message.payload))
        loop.call_soon_threadsafe(responder.add, item)

    client.on_connect = on_connect
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.connect(host, port)
    client.loop_start()
    await subscribed.wait()
    print("ready", flush=True)
    tasks = [
        asyncio.create_task(responder.commit_loop(conn, n), name="durable-committer")
        for n, conn in enumerate(conns)
    ]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client.loop_stop()
        client.disconnect()
        for conn in conns:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--database", required=True, help="postgresql:// URL")
    parser.add_argument(
        "--rows",
        choices=["pick", "pick-one"],
        help="write a pick scan's rows instead of one row (needs the controller bench's floor)",
    )
    args = parser.parse_args()
    dsn = args.database.replace("postgresql+asyncpg://", "postgresql://", 1)
    asyncio.run(serve(args.host, args.port, dsn, args.rows))


if __name__ == "__main__":
    main()
