"""The simulated scale seen from a host: MT-SICS and Toledo continuous byte for byte."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import serial

from device_sim.scale import ScaleOptions, ScaleSim
from tests.integration.device_sim.wire import (
    command,
    open_port,
    read_for,
    read_n,
    read_until,
)

FAST = ScaleOptions(settle_s=0.3, stable_timeout_s=1.0, serial_number="B123456789")


# Most exchanges run over a pty: the same bytes as over TCP, and closing a pty port is
# instant where pyserial's socket:// close sleeps 0.3 s.
@pytest.fixture
async def scale() -> AsyncIterator[ScaleSim]:
    async with ScaleSim.over_pty("scale-t", options=FAST) as sim:
        yield sim


@pytest.fixture
async def host(scale: ScaleSim) -> AsyncIterator[serial.SerialBase]:
    port = serial.Serial(scale.url, timeout=0)
    yield port
    port.close()


async def test_s_waits_for_the_load_to_settle(scale: ScaleSim, host: serial.SerialBase) -> None:
    loop = asyncio.get_running_loop()
    scale.place(1234.5, settle_s=0.3)
    started = loop.time()
    assert await command(host, b"S") == b"S S     1234.5 g\r\n"
    assert loop.time() - started >= 0.25


async def test_s_answers_busy_when_the_load_does_not_settle_in_time() -> None:
    async with ScaleSim.over_pty("scale-slow", options=ScaleOptions(stable_timeout_s=0.2)) as sim:
        port = serial.Serial(sim.url, timeout=0)
        try:
            sim.place(800.0, settle_s=5.0)
            assert await command(port, b"S") == b"S I\r\n"
        finally:
            port.close()


async def test_si_reports_dynamic_then_stable(scale: ScaleSim, host: serial.SerialBase) -> None:
    scale.place(1234.5, settle_s=0.3)
    moving = await command(host, b"SI")
    assert moving.startswith(b"S D ")
    assert moving.endswith(b" g\r\n")
    assert len(moving) == len(b"S D     1234.5 g\r\n")
    assert float(moving.split()[2]) != 1234.5  # still swinging, not the final value
    await scale.wait_for(lambda: scale.stable, 2)
    assert await command(host, b"SI") == b"S S     1234.5 g\r\n"


async def test_zero_tare_and_net_weights(scale: ScaleSim, host: serial.SerialBase) -> None:
    scale.place(3.2, settle_s=0)
    assert await command(host, b"Z") == b"Z A\r\n"
    assert await command(host, b"S") == b"S S        0.0 g\r\n"
    scale.place(503.2, settle_s=0)  # an empty carton on the zeroed platter
    assert await command(host, b"T") == b"T S      500.0 g\r\n"
    assert await command(host, b"S") == b"S S        0.0 g\r\n"
    scale.add(250.4, settle_s=0)
    assert await command(host, b"S") == b"S S      250.4 g\r\n"
    assert await command(host, b"TA") == b"TA A      500.0 g\r\n"
    assert await command(host, b"TAC") == b"TAC A\r\n"
    assert await command(host, b"S") == b"S S      750.4 g\r\n"
    scale.remove(settle_s=0)  # the platter is lighter than when it was zeroed
    assert await command(host, b"S") == b"S S       -3.2 g\r\n"


async def test_zero_refused_outside_the_zero_setting_range(
    scale: ScaleSim, host: serial.SerialBase
) -> None:
    scale.place(5000.0, settle_s=0)  # more than 4 % of 30 kg
    assert await command(host, b"Z") == b"Z +\r\n"


async def test_reset_answers_serial_and_clears_tare(
    scale: ScaleSim, host: serial.SerialBase
) -> None:
    scale.place(100.0, settle_s=0)
    assert await command(host, b"T") == b"T S      100.0 g\r\n"
    assert await command(host, b"@") == b'I4 A "B123456789"\r\n'
    assert await command(host, b"S") == b"S S      100.0 g\r\n"


async def test_reset_cancels_a_waiting_s(scale: ScaleSim, host: serial.SerialBase) -> None:
    scale.place(900.0, settle_s=0.25)
    host.write(b"S\r\n")
    await scale.wait_for(lambda: list(scale.commands) == ["S"], 1)
    host.write(b"@\r\n")
    # Only the reset is answered; the S that was waiting for stability is dropped.
    assert await read_until(host, b"\r\n") == b'I4 A "B123456789"\r\n'
    assert await read_for(host, 0.35) == b""
    assert scale.stable


async def test_unknown_commands_and_line_noise(scale: ScaleSim, host: serial.SerialBase) -> None:
    assert await command(host, b"XYZ") == b"ES\r\n"
    assert await command(host, b"S 1") == b"ES\r\n"
    assert await command(host, b"s") == b"ES\r\n"
    assert await command(host, b"\xff\x00S") == b"ET\r\n"


async def test_overload_and_underload(scale: ScaleSim, host: serial.SerialBase) -> None:
    scale.place(30_500.0, settle_s=0)
    assert await command(host, b"S") == b"S +\r\n"
    assert await command(host, b"SI") == b"S +\r\n"
    assert await command(host, b"T") == b"T +\r\n"
    scale.place(1000.0, settle_s=0)
    assert await command(host, b"Z") == b"Z A\r\n"
    scale.remove(settle_s=0)  # the zeroed load is lifted: far below zero
    assert await command(host, b"S") == b"S -\r\n"
    assert await command(host, b"SI") == b"S -\r\n"


@pytest.mark.parametrize(
    ("fault", "replies"),
    [
        ("busy", [b"S I\r\n", b"S I\r\n", b"Z I\r\n", b"T I\r\n"]),
        ("overload", [b"S +\r\n", b"S +\r\n", b"Z +\r\n", b"T +\r\n"]),
        ("underload", [b"S -\r\n", b"S -\r\n", b"Z -\r\n", b"T -\r\n"]),
    ],
)
async def test_forced_faults(
    scale: ScaleSim, host: serial.SerialBase, fault: str, replies: list[bytes]
) -> None:
    scale.place(200.0, settle_s=0)
    assert await command(host, b"S") == b"S S      200.0 g\r\n"
    scale.fault = fault  # type: ignore[assignment]
    got = [await command(host, c) for c in (b"S", b"SI", b"Z", b"T")]
    assert got == replies
    scale.fault = None
    # Nothing was zeroed or tared while the fault lasted.
    assert await command(host, b"S") == b"S S      200.0 g\r\n"


async def test_slow_replies(host: serial.SerialBase, scale: ScaleSim) -> None:
    scale.reply_delay_s = 0.3
    scale.place(10.0, settle_s=0)
    host.write(b"SI\r\n")
    assert await read_for(host, 0.15) == b""
    assert await read_until(host, b"\r\n") == b"S S       10.0 g\r\n"


async def test_kilograms_with_four_decimals() -> None:
    options = ScaleOptions(unit="kg", settle_s=0)
    async with ScaleSim.over_pty("scale-kg", options=options) as sim:
        port = serial.Serial(sim.url, timeout=0)
        try:
            sim.place(1234.5)
            assert await command(port, b"S") == b"S S     1.2345 kg\r\n"
        finally:
            port.close()


async def test_sir_streams_until_the_next_command(scale: ScaleSim, host: serial.SerialBase) -> None:
    scale.place(500.0, settle_s=0.3)
    host.write(b"SIR\r\n")
    stream = await read_for(host, 0.6)
    lines = stream.split(b"\r\n")[:-1]
    assert len(lines) >= 4  # every 0.1 s
    assert lines[0].startswith(b"S D ") and lines[-1] == b"S S      500.0 g"
    assert scale.streaming
    assert await command(host, b"TA") == b"TA A        0.0 g\r\n"
    assert not scale.streaming
    assert await read_for(host, 0.3) == b""  # the command ended the stream


async def test_reset_ends_a_stream(scale: ScaleSim, host: serial.SerialBase) -> None:
    host.write(b"SIR\r\n")
    await read_until(host, b"\r\n")
    host.write(b"@\r\n")
    tail = await read_until(host, b'"B123456789"\r\n')
    assert tail.endswith(b'I4 A "B123456789"\r\n')
    assert await read_for(host, 0.3) == b""


async def test_immediate_zero_and_tare(scale: ScaleSim, host: serial.SerialBase) -> None:
    scale.place(5.0, settle_s=0.5)
    assert await command(host, b"ZI") == b"ZI D\r\n"  # at once, moving or not
    await scale.wait_for(lambda: scale.stable, 2)
    assert await command(host, b"ZI") == b"ZI S\r\n"
    scale.add(300.0, settle_s=0.5)
    moving = await command(host, b"TI")
    assert moving.startswith(b"TI D ") and moving.endswith(b" g\r\n")
    await scale.wait_for(lambda: scale.stable, 2)
    assert await command(host, b"TI") == b"TI S      300.0 g\r\n"
    assert await command(host, b"S") == b"S S        0.0 g\r\n"
    scale.fault = "overload"
    assert await command(host, b"ZI") == b"ZI +\r\n"
    assert await command(host, b"TI") == b"TI +\r\n"


async def test_preset_tare(scale: ScaleSim, host: serial.SerialBase) -> None:
    scale.place(420.0, settle_s=0)
    assert await command(host, b"TA 120.0 g") == b"TA A      120.0 g\r\n"
    assert await command(host, b"S") == b"S S      300.0 g\r\n"
    assert await command(host, b"TA 0.12 kg") == b"TA L\r\n"  # not the shown unit
    assert await command(host, b"TA lots g") == b"TA L\r\n"
    assert await command(host, b"TA 99999 g") == b"TA L\r\n"  # over capacity
    assert await command(host, b"TA") == b"TA A      120.0 g\r\n"


async def test_echo_dialect() -> None:
    options = ScaleOptions(dialect="echo", settle_s=0.3, serial_number="B1")
    async with ScaleSim.over_pty("scale-echo", options=options) as sim:
        port = serial.Serial(sim.url, timeout=0)
        try:
            sim.place(200.0, settle_s=0.3)
            assert (await command(port, b"S")).startswith(b"S D ")  # at once, not waited
            assert (await command(port, b"SI")).startswith(b"SI D ")
            await sim.wait_for(lambda: sim.stable, 2)
            assert await command(port, b"SI") == b"SI S      200.0 g\r\n"
            assert await command(port, b"S") == b"S S      200.0 g\r\n"
            assert await command(port, b"ZI") == b"ZI A\r\n"
            port.write(b"SIR\r\n")
            assert (await read_until(port, b"\r\n")).startswith(b"SIR S ")
            assert await command(port, b"@") == b'@ A "B1"\r\n'
        finally:
            port.close()


@pytest.mark.parametrize(
    ("unit", "reply"),
    [("lb", b"S S     2.7216 lb\r\n"), ("oz", b"S S     43.546 oz\r\n")],
)
async def test_pounds_and_ounces(unit: str, reply: bytes) -> None:
    options = ScaleOptions(unit=unit, settle_s=0)  # type: ignore[arg-type]
    async with ScaleSim.over_pty(f"scale-{unit}", options=options) as sim:
        port = serial.Serial(sim.url, timeout=0)
        try:
            sim.place(1234.5)
            assert await command(port, b"S") == reply
        finally:
            port.close()


async def test_mt_sics_through_a_tcp_serial_server_with_garbage_and_disconnect() -> None:
    async with ScaleSim.over_tcp("scale-tcp", options=FAST) as scale:
        port = open_port(scale.url)
        try:
            await scale.wait_for_host(2)
            scale.place(42.0, settle_s=0)
            assert await command(port, b"S") == b"S S       42.0 g\r\n"
            assert await command(port, b"@") == b'I4 A "B123456789"\r\n'
            await scale.send_garbage(b"\x13\x00noise")
            assert await read_n(port, 7) == b"\x13\x00noise"
            await scale.disconnect()
            with pytest.raises(serial.SerialException):
                await read_for(port, 0.3)
        finally:
            port.close()
        await scale.reconnect()
        port = open_port(scale.url)
        try:
            await scale.wait_for_host(2)
            scale.place(7.0, settle_s=0)
            assert await command(port, b"S") == b"S S        7.0 g\r\n"
        finally:
            port.close()


def _parse_toledo(frame: bytes) -> dict[str, object]:
    """Independent decode of one continuous-output frame (STX..CR CHK)."""
    assert frame[0] == 0x02 and frame[16] == 0x0D and len(frame) == 18
    assert sum(frame) & 0x7F == 0, "checksum makes the 7-bit sum zero"
    swa, swb, swc = frame[1], frame[2], frame[3]
    decimals = (swa & 0x07) - 2
    return {
        "weight": int(frame[4:10]) / 10**decimals * (-1 if swb & 0x02 else 1),
        "tare": int(frame[10:16]) / 10**decimals,
        "net": bool(swb & 0x01),
        "out_of_range": bool(swb & 0x04),
        "motion": bool(swb & 0x08),
        "grams": bool(swc & 0x01),
        "print": bool(swc & 0x08),
        "always_one": bool(swa & 0x20 and swb & 0x20 and swc & 0x20),
    }


def _frame_at(buf: bytes, i: int) -> bool:
    return buf[i] == 0x02 and buf[i + 16] == 0x0D and sum(buf[i : i + 18]) & 0x7F == 0


async def _next_frame(port: serial.SerialBase) -> dict[str, object]:
    """The first complete frame received from now on.

    A checksum byte can itself look like STX or CR, so synchronise on a position where
    STX, CR and the checksum all agree rather than on a single marker byte.
    """
    port.reset_input_buffer()
    buf = b""
    async with asyncio.timeout(2):
        while True:
            buf += await read_n(port, 1)
            for i in range(max(len(buf) - 18, -1) + 1):
                if _frame_at(buf, i):
                    return _parse_toledo(buf[i : i + 18])


async def test_toledo_continuous_output() -> None:
    options = ScaleOptions(protocol="toledo-continuous", continuous_interval_s=0.02, settle_s=0.4)
    async with ScaleSim.over_pty("scale-toledo", options=options) as sim:
        port = serial.Serial(sim.url, timeout=0)
        try:
            sim.place(1234.5)
            moving = await _next_frame(port)
            assert moving["motion"] is True
            assert moving["grams"] is True and moving["always_one"] is True
            await sim.wait_for(lambda: sim.stable, 2)
            frame = await _next_frame(port)
            assert frame == {
                "weight": 1234.5,
                "tare": 0.0,
                "net": False,
                "out_of_range": False,
                "motion": False,
                "grams": True,
                "print": False,
                "always_one": True,
            }
            port.write(b"T\r")
            await sim.wait_for(lambda: sim.tare_g == 1234.5, 2)
            frame = await _next_frame(port)
            assert (frame["weight"], frame["tare"], frame["net"]) == (0.0, 1234.5, True)
            sim.place(30_001.0, settle_s=0)
            frame = await _next_frame(port)
            assert frame["out_of_range"] is True
        finally:
            port.close()
