"""No credential in any log line after induced server errors and timeouts.

A real ``wcs api`` process (the production logging path: uvicorn's loggers through
ours, a worker's own configuration) holds secrets in every setting that takes one,
and is made to fail: a token row whose roles the database returns corrupted (an
unhandled error while the caller's Authorization header is in the frames), a carrier
that accepts connections and never answers (booking timeouts), an SMTP server that
does the same (notification timeouts), and clients that give up mid-request. Then the
whole log is searched for every secret.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.integration.delivery.helpers import (
    FLOOR_PATH,
    drive,
    order_body,
    place_order,
    seed,
)
from tests.ports import free_port
from wcs.children import spawn
from wcs.persistence.db import make_engine
from wcs.persistence.migrate import upgrade
from wcs.services.auth import issue_token
from wcs.settings import MqttEndpoint


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def start_api(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return spawn(
            [sys.executable, "-m", "cli", "api", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_no_credential_in_the_log_after_errors_and_timeouts(
    tmp_path: Path, blackhole: int, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/wcs.db"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    try:
        victim = await issue_token(engine, "victim", ["supervisor"])
        staff = await issue_token(engine, "desk", ["customer_service", "dispatcher"])
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE api_tokens SET roles = 'not json' WHERE name = 'victim'")
            )
    finally:
        await engine.dispose()
    engine = make_engine(url)
    secret = {
        "admin": secrets.token_hex(24),
        "webhook": secrets.token_hex(24),
        "smtp": "smtp-" + secrets.token_hex(12),
        "sms": "sms-" + secrets.token_hex(12),
        "mqtt": "mqtt-" + secrets.token_hex(12),
        "carrier": "carrier-" + secrets.token_hex(12),
        "victim": victim,
        "staff": staff,
    }
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCS_")} | {
        "WCS_DATABASE_URL": url,
        "WCS_SITE": site,
        "WCS_ADMIN_TOKEN": secret["admin"],
        "WCS_CARRIER_WEBHOOK_SECRET": secret["webhook"],
        # A broker that takes no password: the URL still carries one, as production does.
        "WCS_MQTT_URL": f"mqtt://wcs:{secret['mqtt']}@{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        "WCS_EMBEDDED_BROKER": "false",
        "WCS_CARRIER_URL": f"http://wcs:{secret['carrier']}@127.0.0.1:{blackhole}",
        "WCS_NOTIFY__SMTP_HOST": "127.0.0.1",
        "WCS_NOTIFY__SMTP_PORT": str(blackhole),
        "WCS_NOTIFY__SMTP_USERNAME": "wcs",
        "WCS_NOTIFY__SMTP_PASSWORD": secret["smtp"],
        "WCS_NOTIFY__SMTP_TIMEOUT_S": "1",
        "WCS_NOTIFY__WEBHOOK_URL": f"http://127.0.0.1:{blackhole}/sms",
        "WCS_NOTIFY__WEBHOOK_TOKEN": secret["sms"],
        "WCS_LOG_LEVEL": "DEBUG",
    }
    log_path = tmp_path / "api.log"
    proc = start_api(port, env, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()
                assert proc.poll() is None, log_path.read_text()
                await asyncio.sleep(0.1)
            # The server closes a connection after an unhandled error: ask for a new one
            # each time rather than race it for the pooled one.
            victim_auth = {"Authorization": f"Bearer {victim}", "Connection": "close"}
            errors = 0
            for path in ("/api/v1/orders", "/api/v1/alerts", "/api/v1/tasks"):
                r = await client.get(path, headers=victim_auth)
                assert r.status_code == 500, r.text
                assert r.headers["content-type"] == "application/problem+json"
                errors += 1
            # Clients that give up while the server waits on a carrier that never answers.
            admin = {"Authorization": f"Bearer {secret['admin']}"}
            client.headers.update(admin)
            await seed(client, {"SKU-A": [("A-01-02-1", 10)]})
            for n in range(2):
                order = await place_order(client, order_body(f"log-{n}", [("SKU-A", 1)]))
                await drive(engine, site, order["id"], FLOOR_PATH)
                with pytest.raises(httpx.TimeoutException):
                    await client.post(
                        f"/api/v1/orders/{order['id']}/allocate", json={}, timeout=0.5
                    )
            staff_auth = {"Authorization": f"Bearer {staff}"}
            r = await client.get("/api/v1/orders?limit=1", headers=staff_auth)
            assert r.status_code == 200
            # The carrier's read timeout (5 s), the SMTP timeout (1 s): let them pass.
            await asyncio.sleep(7)
    finally:
        await engine.dispose()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    logged = log_path.read_text(errors="replace")
    assert logged.count("unhandled error") >= errors, logged[-3000:]
    assert "JSONDecodeError" in logged  # the tracebacks are there, without what they held
    leaked = {name: value for name, value in secret.items() if value in logged}
    assert not leaked, f"secrets in the log: {sorted(leaked)}"
    lines = [line for line in logged.splitlines() if line.strip()]
    assert all(line.startswith("timestamp=") for line in lines), [
        line for line in lines if not line.startswith("timestamp=")
    ][:5]
    # Without frames' locals, an error costs a few kilobytes of log, not hundreds.
    assert len(logged) < 20_000 * errors + 50_000, len(logged)
