"""``run_floor`` and ``wcs drivers``: a floor file in, every device's driver running."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from drivers.options import DriverOptions
from drivers.runner import run_floor
from tests.integration.drivers.support import FAST, Pty, Watch
from wcs.children import spawn_async
from wcs.errors import ConfigError
from wcs.settings import MqttEndpoint, load_settings


def floor_file(tmp_path: Path, site: str, scanner_url: str, printer_port: int) -> Path:
    path = tmp_path / "floor.yaml"
    path.write_text(
        f"""
site: {site}
devices:
  - {{id: scan-p1, kind: scanner, zone: pack, station: P1, link: {{url: "{scanner_url}"}}}}
  - {{id: prn-p1, kind: printer, zone: pack, station: P1,
     link: {{type: tcp, host: 127.0.0.1, port: {printer_port}}}, status_poll_s: 0.2}}
stations:
  - {{id: P1, kind: pack, scanner: scan-p1, printer: prn-p1}}
""",
        encoding="utf-8",
    )
    return path


async def printer_server() -> asyncio.Server:
    status = (
        b"\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n"
        b"\x02001,0,0,0,1,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n"
    )

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(status * data.count(b"~HS"))
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def test_run_floor_runs_every_device_and_stops_offline(
    tmp_path: Path, pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    server = await printer_server()
    port = server.sockets[0].getsockname()[1]
    settings = load_settings(
        site=site, mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}"
    )
    stop = asyncio.Event()
    floor = floor_file(tmp_path, site, pty.path, port)
    runner = asyncio.create_task(run_floor(floor, settings, options=FAST, stop=stop))
    try:
        await watch.status("scan-p1", "online")
        await watch.status("prn-p1", "online")
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert {"driver:scan-p1", "driver:prn-p1"} <= names
        await pty.write(b"]C100106141411234567897\r\n")
        (scan,) = await watch.expect("dev/scan-p1/evt/scan")
        assert scan["code"] == "00106141411234567897"
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
        server.close()
        await server.wait_closed()
    for device in ("scan-p1", "prn-p1"):
        status = await watch.status(device, "offline")
        assert status["detail"] == "driver stopped"


async def test_two_devices_on_one_port_is_a_config_error(
    tmp_path: Path, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    path = tmp_path / "floor.yaml"
    path.write_text(
        """
devices:
  - {id: scan-a, kind: scanner, zone: pack, link: {url: "socket://127.0.0.1:9"}}
  - {id: scan-b, kind: scanner, zone: pack, link: {url: "socket://127.0.0.1:9"}}
""",
        encoding="utf-8",
    )
    settings = load_settings(site=site, mqtt_url=f"mqtt://127.0.0.1:{mqtt_endpoint.port}")
    with pytest.raises(
        ConfigError, match=r"scan-a and scan-b both use port socket://127\.0\.0\.1:9"
    ):
        await run_floor(path, settings, options=DriverOptions())


async def test_cli_sigterm_publishes_offline(
    tmp_path: Path, pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    server = await printer_server()
    port = server.sockets[0].getsockname()[1]
    floor = floor_file(tmp_path, site, pty.path, port)
    env = {
        **os.environ,
        "WCS_SITE": site,
        "WCS_MQTT_URL": f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        "WCS_LOG_JSON": "true",
    }
    wcs = Path(sys.executable).with_name("wcs")
    process = await spawn_async(
        str(wcs),
        "drivers",
        "--floor",
        str(floor),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await watch.status("scan-p1", "online", within=15)
        await watch.status("prn-p1", "online", within=15)
        process.send_signal(signal.SIGTERM)
        try:
            assert await asyncio.wait_for(process.wait(), 15) == 0
        except TimeoutError:
            process.kill()
            await process.wait()
            assert process.stderr is not None
            log = (await process.stderr.read()).decode()
            pytest.fail(f"wcs drivers still running 15 s after SIGTERM: {log[-4000:]}")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        server.close()
        await server.wait_closed()
    assert process.stderr is not None
    logs = (await process.stderr.read()).decode()
    assert '"event": "drivers stopped"' in logs
    for device in ("scan-p1", "prn-p1"):
        assert (await watch.status(device, "offline"))["detail"] == "driver stopped"


async def test_killed_driver_is_announced_offline_by_its_will(
    tmp_path: Path, pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    server = await printer_server()
    floor = floor_file(tmp_path, site, pty.path, server.sockets[0].getsockname()[1])
    env = {
        **os.environ,
        "WCS_SITE": site,
        "WCS_MQTT_URL": f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
    }
    wcs = Path(sys.executable).with_name("wcs")
    process = await spawn_async(
        str(wcs), "drivers", "--floor", str(floor), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await watch.status("scan-p1", "online", within=15)
        process.kill()  # no goodbye: only the broker can tell
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        server.close()
        await server.wait_closed()
    status = await watch.status("scan-p1", "offline", within=10)
    assert status["detail"] == "driver connection lost"
    assert status["kind"] == "scanner" and status["zone"] == "pack"
