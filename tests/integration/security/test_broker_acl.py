"""The generated broker configuration, enforced by a real Mosquitto.

Ordering makes the negative checks exact instead of timed: MQTT delivers one
publisher's messages to one subscriber in order, so once a later, allowed message
has arrived, an earlier, forbidden one would have arrived before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from wcs.broker_config import BrokerOptions, Listener, TlsFiles, Written, write_broker_config
from wcs.contract.topics import Topics
from wcs.floor import Floor
from wcs.mqtt.client import make_client
from wcs.mqtt.mosquitto import PrivateMosquitto, free_port
from wcs.settings import MqttEndpoint

pytestmark = pytest.mark.broker

SITE = "wh7"
T = Topics(SITE)
FLOOR = Floor.model_validate(
    {
        "site": SITE,
        "devices": [
            {"id": "scan-a", "kind": "scanner", "zone": "pick", "link": {"url": "loop://"}},
            {"id": "scan-b", "kind": "scanner", "zone": "pick", "link": {"url": "loop://"}},
            {"id": "ptl:1", "kind": "ptl", "zone": "pick", "link": {"type": "modbus"},
             "slots": {1: "A-01-01-1"}},
        ],
    }
)  # fmt: skip


@dataclass
class Secured:
    broker: PrivateMosquitto
    written: Written

    def endpoint(self, username: str | None, password: str | None = None) -> MqttEndpoint:
        if username is not None and password is None:
            password = self.written.passwords[username]
        return MqttEndpoint(
            host=self.broker.host, port=self.broker.port, username=username, password=password
        )


def _options(
    tmp_path: Path, port: int, tls: TlsFiles | None = None, tls_port: int = 0
) -> BrokerOptions:
    return BrokerOptions(
        listener=Listener("127.0.0.1", port),
        tls=tls,
        tls_listener=Listener("127.0.0.1", tls_port or 8883),
        persistence_dir=None,
        log_dest="stdout",  # the private broker logs to its own file as well
    )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    tmp = tmp_path_factory.mktemp("broker")
    port = free_port()
    written = write_broker_config(FLOOR, tmp / "conf", _options(tmp, port))
    with PrivateMosquitto(config_file=written.config, port=port) as broker:
        yield Secured(broker, written)


class Inbox:
    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.topics: list[str] = []
        self._changed = asyncio.Event()

    async def run(self) -> None:
        async for message in self.client.messages:
            self.topics.append(message.topic.value)
            self._changed.set()

    async def until(self, topic: str, within: float = 5.0) -> list[str]:
        async with asyncio.timeout(within):
            while topic not in self.topics:
                self._changed.clear()
                await self._changed.wait()
        return self.topics


@contextlib.asynccontextmanager
async def listening(
    endpoint: MqttEndpoint, *filters: str, protocol: int = 3
) -> AsyncIterator[Inbox]:
    async with make_client(endpoint, protocol=protocol) as client:  # type: ignore[arg-type]
        for topic_filter in filters:
            await client.subscribe(topic_filter, qos=1)
        inbox = Inbox(client)
        task = asyncio.create_task(inbox.run(), name="test-acl-inbox")
        try:
            yield inbox
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_device_publishes_only_its_own_events_and_status(secured: Secured) -> None:
    controller = secured.endpoint("controller")
    async with (
        listening(controller, f"{T.root}/dev/+/evt/+", f"{T.root}/dev/+/status") as seen,
        make_client(secured.endpoint("dev-scan-a")) as device,
    ):
        # As scan-b, as a command sender and on an order topic: all dropped by the broker.
        await device.publish(T.dev_evt("scan-b", "scan"), b"forged", qos=1)
        await device.publish(T.dev_status("scan-b"), b"forged", qos=1)
        await device.publish(T.dev_cmd("scan-b", "light"), b"forged", qos=1)
        await device.publish(T.order_state("o1"), b"forged", qos=1)
        await device.publish(T.dev_status("scan-a"), b"own status", qos=1)
        await device.publish(T.dev_evt("scan-a", "scan"), b"own event", qos=1)
        topics = await seen.until(T.dev_evt("scan-a", "scan"))
    assert topics == [T.dev_status("scan-a"), T.dev_evt("scan-a", "scan")]


async def test_device_reads_only_its_own_commands(secured: Secured) -> None:
    async with (
        # The device asks for every command on the site; the broker hands it its own.
        listening(secured.endpoint("dev-ptl%3A1"), f"{T.root}/dev/+/cmd/#") as device,
        make_client(secured.endpoint("controller")) as controller,
    ):
        await controller.publish(T.dev_cmd("scan-b", "light"), b"{}", qos=1)
        await controller.publish(T.dev_cmd("ptl:1", "light"), b"{}", qos=1)
        topics = await device.until(T.dev_cmd("ptl:1", "light"))
    assert topics == [T.dev_cmd("ptl:1", "light")]


async def test_controller_reads_all_events_and_commands_every_device(secured: Secured) -> None:
    async with (
        listening(secured.endpoint("controller"), f"{T.root}/dev/+/evt/+") as ctl,
        listening(secured.endpoint("drivers"), f"{T.root}/dev/+/cmd/+") as drivers,
        make_client(secured.endpoint("controller")) as controller,
        make_client(secured.endpoint("drivers")) as host,
        make_client(secured.endpoint("dev-scan-b")) as scan_b,
    ):
        # The controller cannot speak for a device either.
        await controller.publish(T.dev_evt("scan-a", "scan"), b"forged", qos=1)
        await scan_b.publish(T.dev_evt("scan-b", "weight"), b"b", qos=1)
        await host.publish(T.dev_evt("ptl:1", "confirm"), b"via drivers host", qos=1)
        await ctl.until(T.dev_evt("ptl:1", "confirm"))
        await ctl.until(T.dev_evt("scan-b", "weight"))
        for device in ("scan-a", "scan-b", "ptl:1"):
            await controller.publish(T.dev_cmd(device, "light"), b"{}", qos=1)
        await drivers.until(T.dev_cmd("ptl:1", "light"))
    assert T.dev_evt("scan-a", "scan") not in ctl.topics
    assert drivers.topics == [T.dev_cmd(d, "light") for d in ("scan-a", "scan-b", "ptl:1")]


async def test_shared_subscription_for_several_controllers(secured: Secured) -> None:
    shared = Topics.shared("controllers", T.all_events())
    async with (
        listening(secured.endpoint("controller"), shared, protocol=5) as ctl,
        make_client(secured.endpoint("dev-scan-a")) as device,
    ):
        await device.publish(T.dev_evt("scan-a", "scan"), b"e", qos=1)
        assert await ctl.until(T.dev_evt("scan-a", "scan")) == [T.dev_evt("scan-a", "scan")]


@pytest.mark.parametrize(
    ("username", "password"),
    [(None, None), ("controller", "wrong"), ("nobody", "x"), ("dev-scan-a", "")],
)
async def test_anonymous_and_wrong_passwords_are_refused(
    secured: Secured, username: str | None, password: str | None
) -> None:
    endpoint = secured.endpoint(username, password if username else None)
    if username is not None and password is not None:
        endpoint = endpoint.model_copy(update={"password": password})
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed|[Bb]ad user"):
        async with make_client(endpoint):
            pass


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl makes the test certificate"
    cert, key = tmp / "server.pem", tmp / "server.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_listener_with_credentials(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port, tls_port = free_port(), free_port()
    written = write_broker_config(
        FLOOR, tmp_path / "conf", _options(tmp_path, port, TlsFiles(cert, key), tls_port)
    )
    assert f"listener {port} 127.0.0.1" in written.config.read_text()
    context = ssl.create_default_context(cafile=str(cert))
    with PrivateMosquitto(config_file=written.config, port=port):

        def client(password: str) -> aiomqtt.Client:
            return aiomqtt.Client(
                "127.0.0.1", tls_port, username="dev-scan-a", password=password,
                tls_context=context,
            )  # fmt: skip

        async with client(written.passwords["dev-scan-a"]) as device:
            await device.subscribe(T.device_commands("scan-a"), qos=1)
            async with make_client(
                MqttEndpoint(host="127.0.0.1", port=port, username="controller",
                             password=written.passwords["controller"])
            ) as controller:  # fmt: skip
                await controller.publish(T.dev_cmd("scan-a", "weigh"), b"{}", qos=1)
            async with asyncio.timeout(5):
                message = await anext(aiter(device.messages))
            assert message.topic.value == T.dev_cmd("scan-a", "weigh")
        with pytest.raises(aiomqtt.MqttError):
            async with client("wrong"):
                pass
