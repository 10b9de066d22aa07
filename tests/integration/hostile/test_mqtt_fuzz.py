"""Hostile MQTT input against a running controller on a real broker and database.

Every message the controller cannot accept must produce exactly one ``dlq`` message
that says precisely why, be counted, change nothing, and leave the controller
serving: a good event afterwards still has its effect.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import FakeFloor, fake_floor, floor_for
from wcs.contract.payloads import MAX_PAYLOAD_BYTES
from wcs.contract.topics import Topics
from wcs.persistence.tables import devices, processed_messages
from wcs.settings import MqttEndpoint, Settings

pytestmark = pytest.mark.broker

TS = "2026-11-25T08:15:02.120Z"
# One device of the test floor per event kind, and a valid payload for it.
GOOD: dict[str, tuple[str, str, dict[str, Any]]] = {
    "scan": ("scan-pk", "ScanEvent", {"code": "T0001", "symbology": None}),
    "weight": ("scale-p1", "WeightEvent", {"grams": 812.5, "stable": True}),
    "confirm": ("ptl-1", "ConfirmEvent", {"slot": 1, "qty": 1}),
    "arrival": ("div-1", "ArrivalEvent", {"tote": "T0001", "point": "D1"}),
}
# A wrong type for a field each kind requires.
WRONG_TYPE = {
    "scan": ("code", 5),
    "weight": ("grams", "heavy"),
    "confirm": ("slot", "three"),
    "arrival": ("tote", ["T1"]),
}


@dataclass(frozen=True)
class Bad:
    topic: str
    payload: bytes
    error: str  # a substring the dead letter's error must contain


def body(kind: str, msg_id: str, **changes: Any) -> dict[str, Any]:
    return {"v": 1, "ts": TS, "msg_id": msg_id, **GOOD[kind][2], **changes}


def encoded(data: Any) -> bytes:
    return json.dumps(data).encode()


def hostile_cases(topics: Topics, rng: random.Random) -> list[Bad]:
    cases: list[Bad] = []
    for kind, (device, model, _) in GOOD.items():
        topic = topics.dev_evt(device, kind)
        field, wrong = WRONG_TYPE[kind]
        no_msg_id = body(kind, "x")
        del no_msg_id["msg_id"]
        noise = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
        cases += [
            Bad(topic, b"{not json", "payload is not valid JSON"),
            Bad(topic, b"", "payload is not valid JSON"),
            Bad(topic, b"\xff\xfe\x00" + noise, "payload is not valid JSON"),
            Bad(topic, b'{"v": 1, "msg_id": "\xff\xfe"}', "payload is not valid JSON"),
            Bad(topic, b"[" * 5000 + b"]" * 5000, "recursion limit"),
            Bad(topic, b"[1, 2, 3]", f"does not match {model}: payload: Input should be an object"),
            Bad(topic, b"null", f"does not match {model}"),
            Bad(topic, encoded(body(kind, "m", v=2)), "v: Input should be 1"),
            Bad(topic, encoded(body(kind, "m", v="1")), "v: Input should be 1"),
            Bad(topic, encoded(no_msg_id), "msg_id: Field required"),
            Bad(topic, encoded(body(kind, "m" * 129)), "msg_id: String should have at most 128"),
            Bad(topic, encoded(body(kind, "m", ts="yesterday")), "ts: Input should be a valid"),
            Bad(topic, encoded(body(kind, "m", **{field: wrong})), f"{field}: Input should be"),
            Bad(
                topic,
                encoded(body(kind, "m", pad="x" * MAX_PAYLOAD_BYTES)),
                f"limit is {MAX_PAYLOAD_BYTES}",
            ),
            Bad(
                topics.dev_evt("ghost", kind),
                encoded(body(kind, "g1")),
                "device 'ghost' is not on this floor",
            ),
        ]
    scan = topics.dev_evt("scan-pk", "scan")
    weight = topics.dev_evt("scale-p1", "weight")
    confirm = topics.dev_evt("ptl-1", "confirm")
    cases += [
        Bad(weight, b'{"v":1,"msg_id":"w","grams":1e400,"stable":true}', "finite number"),
        Bad(weight, b'{"v":1,"msg_id":"w","grams":NaN,"stable":true}', "grams"),
        Bad(weight, encoded(body("weight", "w", grams=1e12)), "grams: Input should be less"),
        Bad(confirm, encoded(body("confirm", "c", slot=-1)), "slot: Input should be greater"),
        Bad(confirm, b'{"v":1,"msg_id":"c","slot":1e30,"qty":1}', "slot:"),
        Bad(scan, encoded(body("scan", "s", symbology="C1")), "symbology: String should match"),
        Bad(scan, encoded(body("scan", "s", code="")), "code: String should have at least 1"),
        Bad(
            f"{topics.root}/dev/scan-pk/evt/teleport",
            encoded(body("scan", "t")),
            "is not part of the contract",
        ),
        # Acks and statuses come from devices too.
        Bad(topics.dev_ack("prn-p1"), b"\x00\x01\x02\x03", "payload is not valid JSON"),
        Bad(topics.dev_ack("prn-p1"), encoded({"v": 1}), "cmd_id: Field required"),
        Bad(
            topics.dev_ack("prn-p1"),
            encoded({"v": 1, "cmd_id": "c1", "ok": "maybe"}),
            "ok: Input should be a valid boolean",
        ),
        Bad(topics.dev_ack("ghost"), encoded({"v": 1, "cmd_id": "c1", "ok": True}), "ghost"),
        Bad(topics.dev_status("scan-pk"), b"online", "payload is not valid JSON"),
        Bad(
            topics.dev_status("scan-pk"),
            encoded({"v": 1, "state": "exploded", "kind": "scanner", "zone": "pick"}),
            "state: Input should be 'online', 'offline' or 'fault'",
        ),
        Bad(
            topics.dev_status("scan-pk"),
            encoded(
                {"v": 1, "state": "fault", "kind": "scanner", "zone": "pick", "detail": "d" * 600}
            ),
            "detail: String should have at most 500",
        ),
    ]
    return cases


def random_junk(topics: Topics, rng: random.Random, count: int) -> list[bytes]:
    """Seeded junk that can never be a valid event: truncated, mangled or non-object JSON."""
    out: list[bytes] = []
    for n in range(count):
        kind = rng.choice(list(GOOD))
        valid = encoded(body(kind, f"r{n}"))
        match n % 4:
            case 0:  # a valid event cut short: an object missing its closing brace
                out.append(valid[: rng.randrange(1, len(valid) - 1)])
            case 1:  # random bytes behind a byte no JSON document starts with
                out.append(b"\x07" + rng.randbytes(rng.randint(0, 2000)))
            case 2:  # JSON that is not an object
                value = rng.choice(
                    [
                        rng.random(),
                        rng.randint(-(2**70), 2**70),
                        "s" * rng.randint(0, 50),
                        [n],
                        True,
                    ]
                )
                out.append(encoded(value))
            case _:  # an object of random keys, none of them msg_id
                obj = {f"k{rng.randint(0, 9)}": rng.randbytes(4).hex() for _ in range(5)}
                out.append(encoded({"v": 1, **obj}))
    return out


@pytest.fixture
async def running(
    db_url: str, engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> AsyncIterator[tuple[Controller, FakeFloor]]:
    settings = Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        embedded_broker=False,
        controller={"wave_interval_s": 3600},  # type: ignore[arg-type]
    )
    async with (
        fake_floor(mqtt_endpoint, Topics(site)) as floor,
        Controller(settings, floor_for(site), engine=engine, housekeeping=False) as controller,
    ):
        yield controller, floor


async def settle(controller: Controller, floor: FakeFloor, expected: int) -> None:
    """Wait for ``expected`` dead letters, then a little longer for any extra one."""
    await floor.wait_dlq(expected, timeout=20)
    await asyncio.sleep(0.3)
    assert len(floor.dlq) == expected, floor.dlq[expected:]
    assert controller.stats.dlq == expected


async def good_events_still_work(
    controller: Controller, floor: FakeFloor, engine: AsyncEngine
) -> None:
    applied = controller.stats.applied
    await floor.status("scan-pk", "scanner", "pick", "fault", detail="after the storm")
    msg_id = await floor.event("scale-p1", "weight", grams=100.0, stable=True)
    async with asyncio.timeout(10):
        while controller.stats.applied < applied + 2:
            await asyncio.sleep(0.02)
    async with engine.connect() as conn:
        state = await conn.scalar(select(devices.c.state).where(devices.c.id == "scan-pk"))
        seen = await conn.scalar(
            select(func.count())
            .select_from(processed_messages)
            .where(processed_messages.c.msg_id == f"scale-p1/{msg_id}")
        )
    assert (state, seen) == ("fault", 1)
    assert all(not task.done() for task in controller._tasks), "a controller task died"


async def test_each_hostile_message_is_one_precise_dead_letter(
    running: tuple[Controller, FakeFloor], engine: AsyncEngine
) -> None:
    controller, floor = running
    cases = hostile_cases(controller.topics, random.Random(7))
    for n, case in enumerate(cases, start=1):
        await floor.raw(case.topic, case.payload)
        await floor.wait_dlq(n, timeout=10)
        dead = floor.dlq[n - 1]
        assert dead["topic"] == case.topic
        assert case.error in dead["error"], (case, dead["error"])
        assert len(dead["raw"]) <= 1024 * 4 + 16
    await settle(controller, floor, len(cases))
    assert controller.stats.refused == 0  # all refused at the door, none reached a handler
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(processed_messages)) == 0
    await good_events_still_work(controller, floor, engine)


async def test_a_flood_of_random_junk(
    running: tuple[Controller, FakeFloor], engine: AsyncEngine
) -> None:
    controller, floor = running
    rng = random.Random(20261125)
    junk = random_junk(controller.topics, rng, 400)
    topics = [controller.topics.dev_evt(GOOD[k][0], k) for k in GOOD]
    for payload in junk:
        await floor.raw(rng.choice(topics), payload)
    await settle(controller, floor, len(junk))
    prefixes = ("payload is not valid JSON", "payload does not match")
    assert all(d["error"].startswith(prefixes) for d in floor.dlq)
    assert controller.stats.received >= len(junk)
    await good_events_still_work(controller, floor, engine)
