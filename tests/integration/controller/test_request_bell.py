"""A request wakes its station's owner as it is written (PostgreSQL's notifications), not
at the owner's next look; when the database drops the listening connection, the owner
listens again and looks for what came meanwhile."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import floor_for, settings_for
from wcs.persistence.notices import ALIVE_S
from wcs.services import floor_requests
from wcs.settings import MqttEndpoint

# Far beyond the test's waits: an answer within them came from the bell, not a look.
POLL_S = 600


async def _answered_in(engine: AsyncEngine) -> float:
    started = time.monotonic()
    request_id = await floor_requests.ask(engine, "wave", actor="sue", body={"max_orders": 5})
    answer = await floor_requests.wait(engine, request_id, 3 * ALIVE_S)
    assert answer.state == "done", answer
    return time.monotonic() - started


async def test_a_written_request_wakes_its_owner_and_a_dropped_listener_listens_again(
    pg_only_url: str, pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    settings = settings_for(
        pg_only_url,
        mqtt_endpoint,
        site,
        controller={"wave_interval_s": 3600, "auto_release": False, "request_poll_s": POLL_S},
    )
    async with Controller(settings, floor_for(site), engine=pg_engine, run_relay=False):
        await asyncio.sleep(0.5)  # the first look, at start, is over
        assert await _answered_in(pg_engine) < ALIVE_S
        # Every other connection to the database goes, the listener's with them (as in a
        # failover); requests written while nobody listens are found when it is back.
        async with pg_engine.connect() as conn:
            cut = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert cut
        # The closed connection is noticed at once (not at the next ALIVE_S question).
        assert await _answered_in(pg_engine) < ALIVE_S
        assert await _answered_in(pg_engine) < ALIVE_S
