"""A whole floor served at once: SimFloor, run_floor and ``wcs sim``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
import serial
import yaml
from pymodbus.client import AsyncModbusTcpClient

from device_sim.floor import SimFloor, SimOptions
from device_sim.printer import PrinterOptions
from device_sim.ptl import PtlOptions
from device_sim.runner import run_floor
from device_sim.scale import ScaleOptions
from tests.integration.device_sim.wire import command, port_closed, read_until
from tests.ports import free_port
from wcs.children import spawn_async
from wcs.errors import ConfigError
from wcs.floor import ModbusLink, SerialLink, TcpLink, load_floor
from wcs.settings import Settings

SAMPLE = Path(__file__).parents[3] / "floors" / "sample.yaml"


def floor_on_free_ports(tmp_path: Path) -> Path:
    """The sample floor, moved to ports nobody else uses."""
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    for device in data["devices"]:
        link = device["link"]
        if "url" in link:
            link["url"] = f"socket://127.0.0.1:{free_port()}"
        else:
            link["port"] = free_port()
    path = tmp_path / "floor.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def endpoints(path: Path) -> list[tuple[str, int]]:
    out = []
    for device in load_floor(path).devices:
        link = device.link
        if isinstance(link, SerialLink):
            host, port = link.url.removeprefix("socket://").split(":")
            out.append((host, int(port)))
        else:
            out.append((link.host, link.port))
    return out


async def test_sim_floor_serves_every_device_of_the_sample_floor() -> None:
    async with SimFloor.from_file(SAMPLE, SimOptions(ephemeral_ports=True)) as sim:
        served = sim.floor
        assert [d.id for d in served.devices] == [d.id for d in load_floor(SAMPLE).devices]
        assert {s.kind for s in sim} == {"scanner", "scale", "printer", "ptl", "diverter"}
        for device in served.devices:
            link = device.link
            if isinstance(link, ModbusLink):
                client = AsyncModbusTcpClient(link.host, port=link.port, timeout=0.5, retries=0)
                assert await client.connect()
                try:
                    response = await client.read_input_registers(0, count=1, device_id=link.unit)
                    assert not response.isError(), device.id
                    if device.kind == "ptl":
                        assert response.registers == [8]
                finally:
                    client.close()
            elif isinstance(link, TcpLink):
                reader, writer = await asyncio.open_connection(link.host, link.port)
                writer.write(b"~HS")
                await writer.drain()
                async with asyncio.timeout(1):
                    assert (await reader.readuntil(b"\x03\r\n")).startswith(b"\x02030,0,0,")
                writer.close()
                await writer.wait_closed()
            else:
                assert link.url.startswith("socket://127.0.0.1:")
        scale = sim.scale("scale-p1")
        assert scale.options.protocol == "mt-sics"
        assert sim.diverter("div-qc").lanes[2] == "pack:P1"
        assert sim.diverter("div-out").default_lane == 2
        with pytest.raises(ConfigError, match="not a scale"):
            sim.scale("prn-p1")
        with pytest.raises(ConfigError, match="not on this simulated floor"):
            sim["nope"]


async def test_serial_devices_on_ptys_with_per_device_options(tmp_path: Path) -> None:
    options = SimOptions(
        ephemeral_ports=True,
        serial_over="pty",
        pty_dir=tmp_path,
        devices={"scale-p2": ScaleOptions(settle_s=0, serial_number="P2SCALE")},
    )
    async with SimFloor.from_file(SAMPLE, options) as sim:
        url = sim.floor.device("scale-p2").link.url  # type: ignore[union-attr]
        assert url == str(tmp_path / "scale-p2")
        port = serial.Serial(url, timeout=0)
        try:
            sim.scale("scale-p2").place(321.0)
            assert await command(port, b"S") == b"S S      321.0 g\r\n"
            assert await command(port, b"@") == b'I4 A "P2SCALE"\r\n'
        finally:
            port.close()
        scanner_url = sim.floor.device("scan-qc").link.url  # type: ignore[union-attr]
        port = serial.Serial(scanner_url, timeout=0)
        try:
            await sim.scanner("scan-qc").scan("T000042")
            assert await read_until(port, b"\n") == b"]C1T000042\r\n"
        finally:
            port.close()


async def test_options_of_the_wrong_kind_are_refused() -> None:
    options = SimOptions(ephemeral_ports=True, devices={"ptl-a": PrinterOptions()})
    with pytest.raises(ConfigError, match="expected PtlOptions"):
        async with SimFloor.from_file(SAMPLE, options):
            pass


async def test_a_busy_port_is_a_clear_error_and_nothing_stays_up(tmp_path: Path) -> None:
    path = floor_on_free_ports(tmp_path)
    taken_host, taken_port = endpoints(path)[-1]
    blocker = await asyncio.start_server(lambda r, w: w.close(), taken_host, taken_port)
    try:
        with pytest.raises(ConfigError, match="cannot serve"):
            async with SimFloor.from_file(path, SimOptions()):
                pass
    finally:
        blocker.close()
        await blocker.wait_closed()
    for host, port in endpoints(path)[:-1]:
        assert await port_closed(host, port)


async def test_run_floor_starts_serves_and_stops(tmp_path: Path) -> None:
    path = floor_on_free_ports(tmp_path)
    stop = asyncio.Event()
    options = SimOptions(ptl=PtlOptions(heartbeat_timeout_s=None))
    task = asyncio.create_task(
        run_floor(path, Settings(), options=options, stop=stop), name="test-run-floor"
    )
    try:
        async with asyncio.timeout(5):
            while any([await port_closed(h, p) for h, p in endpoints(path)]):
                assert not task.done(), task
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        async with asyncio.timeout(5):
            await task
    for host, port in endpoints(path):
        assert await port_closed(host, port)


async def test_wcs_sim_command_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    path = floor_on_free_ports(tmp_path)
    env = {**os.environ, "WCS_LOG_JSON": "true"}
    proc = await spawn_async(
        sys.executable,
        "-m",
        "cli",
        "sim",
        "--floor",
        str(path),
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        async with asyncio.timeout(20):
            while any([await port_closed(h, p) for h, p in endpoints(path)]):
                if proc.returncode is not None:
                    assert proc.stderr is not None
                    log = (await proc.stderr.read()).decode()
                    pytest.fail(f"wcs sim exited early ({proc.returncode}): {log}")
                await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            _, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = stderr.decode()
    assert proc.returncode == 0, log
    assert log.count('"event": "serving"') == len(endpoints(path))
    assert "simulated floor stopped" in log
    for host, port in endpoints(path):
        assert await port_closed(host, port)
