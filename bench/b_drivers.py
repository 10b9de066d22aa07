"""Driver hop: scanner bytes on a pty -> ``wcs drivers`` -> MQTT ``evt/scan`` received.

``wcs drivers`` runs in its own process (as on a floor PC) with one scanner on a pty;
this process plays the scanner (writes lines on the pty master) and the controller
(subscribes to ``evt/scan``). Figures, all on the same broker in the same run:

- throughput: lines written in batches (sleeping between batches) until all are
  received, lines/s from the first write to the last message;
- latency: one line at a time, paced, from the write on the pty to the message's
  arrival; beside it the baseline of a bare MQTT publish -> receive (QoS 1) between
  two clients on the same broker, so the difference is what the driver hop adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
import tty
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt

from bench.report import BenchOptions, Section, summarize_ms
from wcs.children import spawn_async
from wcs.contract import Topics
from wcs.mqtt.client import make_client
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.settings import MqttEndpoint

NAME = "drivers: scanner pty -> MQTT"


@contextlib.contextmanager
def broker_url(opts: BenchOptions) -> Iterator[str]:
    if opts.mqtt_url:
        yield opts.mqtt_url
        return
    with PrivateMosquitto() as broker:
        yield broker.url


class PtyScanner:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                await asyncio.sleep(0.0005)

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


class Receiver:
    """Subscribes to the scans; notes when each code arrived."""

    def __init__(self, endpoint: MqttEndpoint, topic: str) -> None:
        self.endpoint = endpoint
        self.topic = topic
        self.arrived: dict[bytes, float] = {}
        self.count = 0
        self.changed = asyncio.Event()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        async with make_client(self.endpoint) as client:
            await client.subscribe(self.topic, qos=1)
            task = asyncio.create_task(self._loop(client), name="bench-receiver")
            try:
                yield self
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            now = time.perf_counter()
            payload = message.payload
            # "code":"..." is all we need; a full JSON parse would tax the measurement.
            start = payload.find(b'"code":"') + 8
            code = payload[start : payload.find(b'"', start)]
            self.arrived.setdefault(code, now)
            self.count += 1
            self.changed.set()

    async def wait_for(self, code: bytes, within: float = 10.0) -> float:
        deadline = time.perf_counter() + within
        while code not in self.arrived:
            self.changed.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"scan {code!r} never arrived")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return self.arrived[code]


@contextlib.asynccontextmanager
async def driver_process(url: str, site: str, pty: PtyScanner) -> AsyncIterator[None]:
    with tempfile.TemporaryDirectory(prefix="wcs-bench-") as tmp:
        floor = Path(tmp) / "floor.yaml"
        floor.write_text(
            f"site: {site}\ndevices:\n"
            f'  - {{id: scan-b, kind: scanner, zone: pack, link: {{url: "{pty.path}"}}}}\n',
            encoding="utf-8",
        )
        env = {**os.environ, "WCS_SITE": site, "WCS_MQTT_URL": url, "WCS_LOG_LEVEL": "WARNING"}
        wcs = Path(sys.executable).with_name("wcs")
        process = await spawn_async(
            str(wcs), "drivers", "--floor", str(floor), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            yield
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def wait_online(endpoint: MqttEndpoint, site: str, within: float = 20.0) -> None:
    topic = Topics(site).dev_status("scan-b")
    async with make_client(endpoint) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(within):
            async for message in client.messages:
                if b'"online"' in bytes(message.payload):
                    return


async def measure(url: str, opts: BenchOptions) -> Section:
    endpoint = MqttEndpoint.parse(url)
    site = "bench" + uuid.uuid4().hex[:8]
    samples = 200 if opts.quick else 2000
    lines = 2000 if opts.quick else 20_000
    batch, gap_s, outstanding = 100, 0.002, 1000
    section = Section(NAME)

    pty = PtyScanner()
    try:
        async with driver_process(url, site, pty):
            await wait_online(endpoint, site)
            receiver = Receiver(endpoint, Topics(site).dev_evt("scan-b", "scan"))
            bare_topic = f"{Topics(site).root}/bench/baseline"
            bare = Receiver(endpoint, bare_topic)
            async with receiver.running(), bare.running(), make_client(endpoint) as publisher:
                # Warm-up: the first scans pay for imports and connection setup.
                for n in range(50):
                    await pty.write(f"W{n:07d}\r\n".encode())
                    await publisher.publish(bare_topic, b'{"code":"W%07d"}' % n, qos=1)
                await receiver.wait_for(b"W0000049")
                await bare.wait_for(b"W0000049")

                # Driver hop and bare MQTT samples interleaved: both see the same machine.
                hop: list[float] = []
                base: list[float] = []
                for n in range(samples):
                    code = b"L%07d" % n
                    sent = time.perf_counter()
                    await pty.write(code + b"\r\n")
                    hop.append(await receiver.wait_for(code) - sent)
                    await asyncio.sleep(gap_s)
                    sent = time.perf_counter()
                    await publisher.publish(bare_topic, b'{"code":"' + code + b'"}', qos=1)
                    base.append(await bare.wait_for(code) - sent)
                    await asyncio.sleep(gap_s)

                before = receiver.count
                started = time.perf_counter()
                for first in range(0, lines, batch):
                    # Closed loop: at most `outstanding` lines between the pty and the
                    # subscriber, so the driver's offline buffer is never what is measured.
                    while first - (receiver.count - before) > outstanding:
                        receiver.changed.clear()
                        await receiver.changed.wait()
                    chunk = b"".join(
                        f"T{n:07d}\r\n".encode() for n in range(first, min(lines, first + batch))
                    )
                    await pty.write(chunk)
                    await asyncio.sleep(0.001)
                last = await receiver.wait_for(f"T{lines - 1:07d}".encode(), within=120)
                await asyncio.sleep(0.2)
                got = sum(1 for n in range(lines) if f"T{n:07d}".encode() in receiver.arrived)
                elapsed = last - started
                received = receiver.count - before
    finally:
        pty.close()

    b, h = summarize_ms(base), summarize_ms(hop)
    section.add("throughput: scan lines pty -> broker -> subscriber", lines / elapsed, "lines/s")
    section.add("throughput: lines received / written", f"{got} / {lines}", "",
                f"all {lines}", got == lines)  # fmt: skip
    section.add("throughput: messages received (incl. QoS 1 repeats)", float(received), "msgs")

    for key in ("p50", "p99"):
        section.add(f"latency pty -> evt/scan {key}", h[key], "ms")
        section.add(f"baseline MQTT publish -> receive {key}", b[key], "ms")
        section.add(f"added by the driver hop {key}", h[key] - b[key], "ms")
    section.add("latency pty -> evt/scan max", h["max"], "ms")
    section.notes.append(
        f"{samples} paced samples each, interleaved ({gap_s * 1000:g} ms apart); baseline: "
        "QoS 1 publish -> receive between two clients of this process; driver in its own process "
        f"(`wcs drivers`), broker {'given' if opts.mqtt_url else 'private Mosquitto'}; "
        f"throughput in batches of {batch} lines."
    )
    return section


def run(opts: BenchOptions) -> Section:
    with broker_url(opts) as url:
        return asyncio.run(measure(url, opts))
