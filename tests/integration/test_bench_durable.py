"""The controller benchmark's durable baseline: it answers only what it has committed,
once per request, and stops cleanly."""

from __future__ import annotations

import asyncio
import signal
import sys

import asyncpg

from wcs.children import spawn_async
from wcs.mqtt.client import make_client
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.settings import MqttEndpoint


async def test_replies_follow_the_commit_and_a_repeat_gets_none(pg_url: str) -> None:
    dsn = pg_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    with PrivateMosquitto() as broker:
        endpoint = MqttEndpoint.parse(broker.url)
        args = ["--host", endpoint.host, "--port", str(endpoint.port), "--database", pg_url]
        responder = await spawn_async(
            sys.executable, "-m", "bench.durable", *args, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert responder.stdout is not None
            ready = await responder.stdout.readline()
            assert ready.strip() == b"ready"
            db = await asyncpg.connect(dsn)
            replies: list[tuple[str, bytes, bool]] = []
            async with make_client(endpoint) as client:
                await client.subscribe("bench/rep/+", qos=1)
                for n in range(20):
                    await client.publish(f"bench/req/{n % 3}", f"r-{n}".encode(), qos=1)
                await client.publish("bench/req/9", b"r-4", qos=1)  # a repeat of r-4
                async with asyncio.timeout(15):
                    async for message in client.messages:
                        body = bytes(message.payload)  # type: ignore[arg-type]
                        # By the time a reply is read its row must be committed.
                        stored = await db.fetchval(
                            "SELECT count(*) FROM bench_durable WHERE msg_key = $1", body.decode()
                        )
                        replies.append((str(message.topic), body, stored == 1))
                        if len(replies) == 20:
                            break
                await asyncio.sleep(0.5)  # room for a wrong second answer to r-4
                assert client._queue.qsize() == 0  # aiomqtt's queue (pinned): none came
            rows = await db.fetchval("SELECT count(*) FROM bench_durable")
            await db.close()
        finally:
            responder.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                code = await responder.wait()
    assert code == 0
    assert rows == 20
    assert all(stored for _, _, stored in replies)
    assert sorted(body for _, body, _ in replies) == sorted(f"r-{n}".encode() for n in range(20))
    # r-4 came twice, on two topics: two committers may store either first, and the
    # one stored is the one answered, once.
    answered = {(topic, body) for topic, body, _ in replies}
    r4 = {(topic, body) for topic, body in answered if body == b"r-4"}
    assert r4 in ({("bench/rep/1", b"r-4")}, {("bench/rep/9", b"r-4")}), r4
    assert answered - r4 == {(f"bench/rep/{n % 3}", f"r-{n}".encode()) for n in range(20) if n != 4}
