"""The generated broker configuration, enforced by a real Mosquitto.

Ordering makes the negative checks exact instead of timed: MQTT delivers one
publisher's messages to one subscriber in order, so once a later, allowed message
has arrived, an earlier, forbidden one would have arrived before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from controller.session import instance_client_id, session_id
from tests.certificates import certificates
from tests.ports import free_port
from wcs.broker_config import BrokerOptions, Listener, TlsFiles, Written, write_broker_config
from wcs.children import spawn
from wcs.contract.topics import Topics
from wcs.floor import Floor
from wcs.mqtt.client import make_client
from wcs.mqtt.mosquitto import PrivateMosquitto, find_mosquitto
from wcs.settings import MqttEndpoint, Settings

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
    device_port: int

    def endpoint(
        self, username: str | None, password: str | None = None, *, port: int | None = None
    ) -> MqttEndpoint:
        """Services on the service listener, devices on theirs (unless ``port``)."""
        if username is not None and password is None:
            password = self.written.passwords[username]
        if port is None:
            device = username is not None and username.startswith("dev-")
            port = self.device_port if device else self.broker.port
        return MqttEndpoint(host=self.broker.host, port=port, username=username, password=password)


def _options(
    port: int,
    device_port: int,
    tls: TlsFiles | None = None,
    tls_port: int = 8883,
    device_tls_port: int = 8884,
    persistence: Path | None = None,
) -> BrokerOptions:
    return BrokerOptions(
        listener=Listener("127.0.0.1", port),
        device_listener=Listener("127.0.0.1", device_port),
        tls=tls,
        tls_listener=Listener("127.0.0.1", tls_port),
        device_tls_listener=Listener("127.0.0.1", device_tls_port),
        persistence_dir=persistence,
        log_dest="stdout",  # the private broker logs to its own file as well
    )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    tmp = tmp_path_factory.mktemp("broker")
    port, device_port = free_port(), free_port()
    written = write_broker_config(FLOOR, tmp / "conf", _options(port, device_port))
    with PrivateMosquitto(config_file=written.config, port=port) as broker:
        yield Secured(broker, written, device_port)


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


async def test_device_accounts_log_in_only_on_the_device_listener(secured: Secured) -> None:
    on_services = secured.endpoint("dev-scan-a", port=secured.broker.port)
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed|[Bb]ad user"):
        async with make_client(on_services):
            pass
    on_devices = secured.endpoint("controller", port=secured.device_port)
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed|[Bb]ad user"):
        async with make_client(on_devices):
            pass


async def _drain(client: aiomqtt.Client, count: int, within: float = 5.0) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(within):
        async for message in client.messages:
            got.append(bytes(message.payload))  # type: ignore[arg-type]
            if len(got) == count:
                break
    return got


@pytest.mark.parametrize(
    "ctl_id",
    [session_id(SITE, "pick-1"), instance_client_id(SITE, "ctl-a")],
    ids=["station-session", "instance-connection"],
)
async def test_a_device_account_cannot_take_the_controllers_session(
    secured: Secured, ctl_id: str
) -> None:
    """The controller's client ids are predictable (one per station, one per instance).
    A device account presenting one gets its own account name as client id instead:
    the controller stays connected, and what its persistent session holds while it is
    away stays there."""
    events = T.dev_evt("scan-a", "scan")
    controller = secured.endpoint("controller")
    async with make_client(controller, identifier=ctl_id, clean_session=False) as ctl:
        await ctl.subscribe(T.all_events(), qos=1)
        # Live: a device logs in with the controller's id; the controller keeps its link.
        async with (
            make_client(secured.endpoint("dev-scan-a"), identifier=ctl_id) as intruder,
            make_client(secured.endpoint("drivers")) as host,
        ):
            await host.publish(events, b"while both are connected", qos=1)
            assert await _drain(ctl, 1) == [b"while both are connected"]
            await intruder.publish(events, b"intruder's own event", qos=1)
            assert await _drain(ctl, 1) == [b"intruder's own event"]
    # Away: three events queue in the controller's session.
    async with make_client(secured.endpoint("drivers")) as host:
        for n in range(3):
            await host.publish(events, f"queued {n}".encode(), qos=1)
    # A device tries to resume it, or to wipe it with a clean session: neither reaches it.
    for clean in (False, True):
        async with make_client(
            secured.endpoint("dev-scan-a"), identifier=ctl_id, clean_session=clean
        ) as intruder:
            with pytest.raises(TimeoutError):
                await _drain(intruder, 1, within=1.0)
    async with make_client(controller, identifier=ctl_id, clean_session=False) as ctl:
        assert await _drain(ctl, 3) == [b"queued 0", b"queued 1", b"queued 2"]
        await ctl.unsubscribe(T.all_events())


async def test_tls_with_a_private_ca_and_client_certificates(tmp_path: Path) -> None:
    files = certificates(tmp_path)
    port, device_port, tls_port, device_tls_port = (free_port() for _ in range(4))
    tls = TlsFiles(files["server"], files["server-key"], files["ca"], require_certificate=True)
    options = _options(port, device_port, tls, tls_port, device_tls_port)
    written = write_broker_config(FLOOR, tmp_path / "conf", options)
    text = written.config.read_text()
    assert f"listener {port} 127.0.0.1" in text and f"listener {tls_port} 127.0.0.1" in text
    password = written.passwords["controller"]
    base = f"mqtts://controller:{password}@127.0.0.1:{tls_port}"
    with PrivateMosquitto(config_file=written.config, port=port):
        # Our clients, as configured by the settings: the private CA and our certificate.
        settings = Settings(
            mqtt_url=base,
            mqtt_ca_file=files["ca"],
            mqtt_cert_file=files["client"],
            mqtt_key_file=files["client-key"],
        )
        async with make_client(settings.mqtt) as client:
            await client.publish(T.order_state("o-tls"), b"{}", qos=1)
        # Without a client certificate the broker refuses the handshake.
        bare = Settings(mqtt_url=base, mqtt_ca_file=files["ca"])
        with pytest.raises(aiomqtt.MqttError):
            async with make_client(bare.mqtt):
                pass
        # Without the private CA we refuse the broker (its certificate is not trusted).
        untrusted = Settings(
            mqtt_url=base, mqtt_cert_file=files["client"], mqtt_key_file=files["client-key"]
        )
        with pytest.raises(aiomqtt.MqttError):
            async with make_client(untrusted.mqtt):
                pass
        # A device on its TLS listener: its certificate, its account.
        device = Settings(
            mqtt_url=f"mqtts://dev-scan-a:{written.passwords['dev-scan-a']}@127.0.0.1:"
            f"{device_tls_port}",
            mqtt_ca_file=files["ca"],
            mqtt_cert_file=files["client"],
            mqtt_key_file=files["client-key"],
        )
        async with make_client(device.mqtt) as client:
            await client.publish(T.dev_evt("scan-a", "scan"), b"{}", qos=1)


def test_tls_settings_name_what_is_wrong(tmp_path: Path) -> None:
    from pydantic import ValidationError

    pem = tmp_path / "x.pem"
    pem.write_text("x")
    for values, message in (
        ({"mqtt_url": "mqtt://h:1883", "mqtt_ca_file": pem}, "need a mqtts://"),
        ({"mqtt_url": "mqtts://h:8883", "mqtt_cert_file": pem}, "go together"),
        ({"mqtt_url": "mqtts://h:8883", "mqtt_ca_file": tmp_path / "no"}, "WCS_MQTT_CA_FILE"),
    ):
        with pytest.raises(ValidationError, match=message):
            Settings(**values)  # type: ignore[arg-type]


def test_the_broker_reads_its_files_as_its_own_user(tmp_path: Path) -> None:
    """Started as root, Mosquitto drops to its user before reading the password and
    ACL files: they must be that user's (a root-owned 0640 file stops it cold)."""
    import os
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("the broker drops privileges only when started as root")
    # A directory the broker's user can reach (pytest's are private to root).
    base = Path(tempfile.mkdtemp(prefix="wcs-broker-own-"))
    try:
        base.chmod(0o755)
        port, device_port = free_port(), free_port()
        written = write_broker_config(FLOOR, base / "conf", _options(port, device_port))
        (base / "conf").chmod(0o755)
        config = base / "run.conf"
        config.write_text(written.config.read_text().replace("log_dest stdout", "log_dest stderr"))
        broker = spawn(
            [find_mosquitto(), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            endpoint = MqttEndpoint(
                host="127.0.0.1", port=port, username="controller",
                password=written.passwords["controller"],
            )  # fmt: skip

            async def connect() -> None:
                for _ in range(100):
                    try:
                        async with make_client(endpoint):
                            return
                    except aiomqtt.MqttError as exc:
                        if broker.poll() is not None or "authori" in str(exc).lower():
                            raise
                        await asyncio.sleep(0.05)

            asyncio.run(connect())
            assert broker.poll() is None
        finally:
            broker.terminate()
            broker.wait(10)
        assert broker.stderr is not None
        assert "Unable to open" not in broker.stderr.read().decode(errors="replace")
    finally:
        shutil.rmtree(base, ignore_errors=True)
