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


class Responder:
    """Requests arrive on paho's thread; committers in the event loop store and answer."""

    def __init__(self, publish: Callable[[str, bytes], object]) -> None:
        self.publish = publish
        self.pending: list[tuple[str, bytes]] = []  # (topic key, payload)
        self.ready = asyncio.Event()

    def add(self, item: tuple[str, bytes]) -> None:
        self.pending.append(item)
        self.ready.set()

    async def commit_loop(self, conn: asyncpg.Connection) -> None:
        while True:
            while not self.pending:
                self.ready.clear()
                await self.ready.wait()
            batch, self.pending = self.pending, []
            rows = await conn.fetch(
                _STORE,
                [payload.decode(errors="replace") for _, payload in batch],
                [key for key, _ in batch],
                [payload for _, payload in batch],
            )
            for row in rows:
                self.publish(f"bench/rep/{row['topic_key']}", row["payload"])


async def serve(host: str, port: int, dsn: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    conns = [await asyncpg.connect(dsn) for _ in range(COMMITTERS)]
    await conns[0].execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE}"
        " (msg_key text PRIMARY KEY, topic_key text NOT NULL, payload bytea NOT NULL)"
    )
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-durable")
    responder = Responder(lambda topic, body: client.publish(topic, body, qos=1))

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
        asyncio.create_task(responder.commit_loop(conn), name="durable-committer") for conn in conns
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
    args = parser.parse_args()
    dsn = args.database.replace("postgresql+asyncpg://", "postgresql://", 1)
    asyncio.run(serve(args.host, args.port, dsn))


if __name__ == "__main__":
    main()
