"""A real uvicorn server on a free port, in a thread, with the app's full lifespan."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from api.app import create_app
from tests.ports import free_port
from wcs.settings import MqttEndpoint, Settings

ADMIN = "test-admin-token-0123456789"


@dataclass
class Served:
    base_url: str
    settings: Settings

    def client(self, token: str | None = ADMIN, **kw: object) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def serve(settings: Settings) -> Iterator[Served]:
    # A free port can be taken by another process before uvicorn binds it: then the
    # server thread ends at once, and a new port is tried.
    for _attempt in range(3):
        port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if server.started:
            break
        if thread.is_alive():
            raise RuntimeError("test API server did not start")
    else:
        raise RuntimeError("test API server did not start: no free port could be bound")
    try:
        yield Served(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def api(db_url: str, engine: object, mqtt_endpoint: MqttEndpoint, site: str) -> Iterator[Served]:
    settings = Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
    )
    yield from serve(settings)


@pytest.fixture
def pg_api(
    pg_only_url: str, pg_engine: object, mqtt_endpoint: MqttEndpoint, site: str
) -> Iterator[Served]:
    settings = Settings(
        database_url=pg_only_url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
    )
    yield from serve(settings)
