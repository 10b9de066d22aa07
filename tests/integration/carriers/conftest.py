"""The fake carrier as a real separate process, and a webhook receiver for its pushes."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ports import free_port
from wcs.children import spawn

WEBHOOK_SECRET = "test-webhook-secret-5f1c"
NO_FAULTS = {
    "fail_next": 0,
    "fail_status": 503,
    "retry_after_s": -1,
    "delay_next": 0,
    "delay_s": 0,
    "fail_rate": 0,
}


def wait_until_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"carrier process exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"carrier process at {url} did not come up:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def start_process(args: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = spawn(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_healthy(url, proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc


@dataclass
class FakeCarrier:
    url: str

    def faults(self, **change: float) -> dict[str, Any]:
        response = httpx.put(f"{self.url}/admin/faults", json=change, timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def set_webhook(self, url: str | None) -> None:
        httpx.put(f"{self.url}/admin/webhook", json={"url": url}, timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/admin/stats", timeout=5).json()
        return result


@pytest.fixture(scope="module")
def carrier_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCarrier]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("carrier") / "carrier.log"
    args = [
        sys.executable,
        "-m",
        "wcs.carriers.fake_server",
        "--port",
        str(port),
        "--seed",
        "7",
        "--webhook-secret",
        WEBHOOK_SECRET,
    ]
    proc = start_process(args, url, log)
    try:
        yield FakeCarrier(url)
    finally:
        stop(proc)


@pytest.fixture
def carrier(carrier_process: FakeCarrier) -> Iterator[FakeCarrier]:
    """The shared carrier process, with no faults and no webhook for this test."""
    carrier_process.faults(**NO_FAULTS)
    carrier_process.set_webhook(None)
    yield carrier_process
    carrier_process.faults(**NO_FAULTS)
    carrier_process.set_webhook(None)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    url: str
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A plain HTTP server that records every POST; shut down and joined afterwards."""
    receiver = WebhookReceiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            receiver.arrived.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver")
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
