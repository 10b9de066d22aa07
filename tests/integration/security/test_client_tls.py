"""Our HTTPS and SMTP clients with a private CA and a client certificate, as the
settings configure them: the carrier's API, the SMS webhook and the SMTP server (TLS
and STARTTLS), each against a server of the test's own that takes TLS only and
requires a client certificate signed by the private CA."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from aiosmtpd.smtp import SMTP as SmtpServerProtocol
from aiosmtpd.smtp import Envelope, Session
from pydantic import ValidationError

from tests.certificates import certificates
from tests.http_wire import read_request
from wcs.carriers.client import CarrierClient, RetryPolicy
from wcs.children import run
from wcs.errors import CarrierUnavailable
from wcs.notify.channels import (
    NotifyError,
    Outgoing,
    SmtpChannel,
    TemporaryFailure,
    WebhookChannel,
    webhook_client,
)
from wcs.services.shipments import CarrierDesk
from wcs.settings import NotifySettings, Settings, describe_error

CLIENT_CN = "wcs-outbound"
ONCE = RetryPolicy(attempts=1)
STATUS = {"tracking_no": "TN1", "status": "in_transit", "events": []}
REFUSED = 20.0  # seconds a refusal may take at most


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return certificates(tmp_path_factory.mktemp("pki"), client=CLIENT_CN)


def server_context(files: dict[str, Path]) -> ssl.SSLContext:
    """TLS only, and a client certificate signed by the private CA required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files["ca"]))
    context.load_cert_chain(files["server"], files["server-key"])
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _common_name(peercert: Any) -> str:
    return next(v for rdn in peercert["subject"] for k, v in rdn if k == "commonName")


@dataclass
class HttpsServer:
    """Answers every request 200 with a carrier's shipment status; records each request
    line with the common name of the client's certificate."""

    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line, _, _ = await read_request(reader)
            self.requests.append((request_line, _common_name(writer.get_extra_info("peercert"))))
            body = json.dumps(STATUS).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()  # the TLS shutdown goes on in the transport


@pytest.fixture
async def https(pki: dict[str, Path]) -> AsyncIterator[HttpsServer]:
    box = HttpsServer()
    server = await asyncio.start_server(box.handle, "127.0.0.1", 0, ssl=server_context(pki))
    box.port = server.sockets[0].getsockname()[1]
    try:
        yield box
    finally:
        server.close()
        await server.wait_closed()


_FILES = {"ca": "ca", "cert": "client", "key": "client-key"}


def _tls_files(prefix: str, files: dict[str, Path], names: tuple[str, ...]) -> dict[str, Path]:
    """The settings ``{prefix}_ca_file`` etc. for the given ``names`` of ``_FILES``."""
    return {f"{prefix}_{name}_file": files[key] for name, key in _FILES.items() if name in names}


def _carrier(url: str, files: dict[str, Path], *names: str) -> Settings:
    return Settings(carrier_url=url, **_tls_files("carrier", files, names))  # type: ignore[arg-type]


async def test_carrier_client_with_the_private_ca_and_our_certificate(
    https: HttpsServer, pki: dict[str, Path]
) -> None:
    settings = _carrier(https.url, pki, "ca", "cert", "key")
    # As the controller and the API make it: one context for every carrier's client.
    async with CarrierDesk.from_settings(settings) as desk:
        status = await desk.client("parcelco").status("TN1")
    assert status.status == "in_transit"
    assert https.requests == [("GET /v1/shipments/TN1 HTTP/1.1", CLIENT_CN)]


@pytest.mark.parametrize(
    ("names", "refusal"),
    [
        # The server asks for a certificate we do not present. With TLS 1.3 our side of
        # the handshake is over before the server checks: the refusal is the request's
        # read failing (in TLS 1.2 the connection's).
        (("ca",), r"connection failed \((ReadError|ConnectError)"),
        # The server's certificate is not signed by a CA the system trusts.
        (("cert", "key"), "certificate verify failed"),
    ],
    ids=["without-client-certificate", "without-private-ca"],
)
async def test_carrier_client_refused_without_certificate_or_ca(
    https: HttpsServer, pki: dict[str, Path], names: tuple[str, ...], refusal: str
) -> None:
    settings = _carrier(https.url, pki, *names)
    client = CarrierClient(settings.carrier_url, retry=ONCE, tls=settings.carrier_tls.context())
    async with client, asyncio.timeout(REFUSED):
        with pytest.raises(CarrierUnavailable, match=refusal):
            await client.status("TN1")
    assert https.requests == []


def _message(recipient: str = "customer@example.com") -> Outgoing:
    return Outgoing(
        key="n-1",
        kind="shipped",
        order_id="o-1",
        recipient=recipient,
        lang="en",
        subject="Your order has shipped",
        text="It is on its way.",
        html=None,
        sms="Your order has shipped.",
        message_id="<n-1@wcs.test>",
    )


async def _handover() -> None:
    return None


def _notify(files: dict[str, Path], prefix: str, *names: str, **values: Any) -> NotifySettings:
    return NotifySettings(**values, **_tls_files(prefix, files, names))


async def test_sms_webhook_with_the_private_ca_and_our_certificate(
    https: HttpsServer, pki: dict[str, Path]
) -> None:
    notify = _notify(pki, "webhook", "ca", "cert", "key", webhook_url=f"{https.url}/sms")
    async with webhook_client(notify) as http:
        assert await WebhookChannel(notify, http).send(_message(), _handover) == "http 200"
    assert https.requests == [("POST /sms HTTP/1.1", CLIENT_CN)]


@pytest.mark.parametrize(
    ("names", "refusal"),
    [
        # Refused as the request is read (TLS 1.3): to us its outcome is unknown.
        (("ca",), r"did not answer \(ReadError\)|cannot reach"),
        (("cert", "key"), "certificate verify failed"),
    ],
    ids=["without-client-certificate", "without-private-ca"],
)
async def test_sms_webhook_refused_without_certificate_or_ca(
    https: HttpsServer, pki: dict[str, Path], names: tuple[str, ...], refusal: str
) -> None:
    notify = _notify(pki, "webhook", *names, webhook_url=f"{https.url}/sms")
    async with webhook_client(notify) as http, asyncio.timeout(REFUSED):
        with pytest.raises(NotifyError, match=refusal):
            await WebhookChannel(notify, http).send(_message(), _handover)
    assert https.requests == []


@dataclass
class Mailbox:
    port: int = 0
    received: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 2.0.0 queued"


@contextlib.asynccontextmanager
async def smtp_server(
    files: dict[str, Path], security: Literal["tls", "starttls"]
) -> AsyncIterator[Mailbox]:
    box = Mailbox()
    loop = asyncio.get_running_loop()
    context = server_context(files)
    sessions: list[SmtpServerProtocol] = []

    def session() -> SmtpServerProtocol:
        if security == "tls":
            sessions.append(SmtpServerProtocol(box, hostname="mail.test", loop=loop))
        else:
            sessions.append(
                SmtpServerProtocol(
                    box, hostname="mail.test", tls_context=context, require_starttls=True, loop=loop
                )
            )
        return sessions[-1]

    server = await loop.create_server(
        session, "127.0.0.1", 0, ssl=context if security == "tls" else None
    )
    box.port = server.sockets[0].getsockname()[1]
    try:
        yield box
    finally:
        server.close()
        await server.wait_closed()
        # A STARTTLS handshake the client broke off leaves aiosmtpd's session waiting
        # for its idle timeout: end it.
        handlers = [s._handler_coroutine for s in sessions if s._handler_coroutine is not None]
        for s in sessions:
            for transport in (s.transport, s._original_transport):
                if transport is not None:
                    transport.close()
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_smtp_with_the_private_ca_and_our_certificate(
    pki: dict[str, Path], security: Literal["tls", "starttls"]
) -> None:
    async with smtp_server(pki, security) as box:
        notify = _notify(pki, "smtp", "ca", "cert", "key", smtp_host="127.0.0.1",
                         smtp_port=box.port, smtp_security=security)  # fmt: skip
        async with asyncio.timeout(REFUSED):
            reply = await SmtpChannel(notify).send(_message(), _handover)
    assert "queued" in reply
    assert box.received == [("no-reply@localhost", ["customer@example.com"])]


@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize(
    ("names", "refusal"),
    [(("ca",), "cannot reach the SMTP server"), (("cert", "key"), "certificate verify failed")],
    ids=["without-client-certificate", "without-private-ca"],
)
async def test_smtp_refused_without_certificate_or_ca(
    pki: dict[str, Path],
    security: Literal["tls", "starttls"],
    names: tuple[str, ...],
    refusal: str,
) -> None:
    async with smtp_server(pki, security) as box:
        notify = _notify(pki, "smtp", *names, smtp_host="127.0.0.1", smtp_port=box.port,
                         smtp_security=security)  # fmt: skip
        async with asyncio.timeout(REFUSED):
            with pytest.raises(TemporaryFailure, match=refusal):
                await SmtpChannel(notify).send(_message(), _handover)
    assert box.received == []


# --- the settings name what is wrong ---------------------------------------------


@pytest.fixture
def bad_files(tmp_path: Path, pki: dict[str, Path]) -> dict[str, Path]:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    return {**pki, "garbage": garbage, "missing": tmp_path / "missing.pem"}


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ({"carrier_url": "http://c", "carrier_ca_file": "ca"},
         "WCS_CARRIER_CA_FILE need an https:// WCS_CARRIER_URL"),
        ({"carrier_url": "https://c", "carrier_cert_file": "client"},
         "WCS_CARRIER_CERT_FILE and WCS_CARRIER_KEY_FILE go together"),
        ({"carrier_url": "https://c", "carrier_ca_file": "missing"},
         "WCS_CARRIER_CA_FILE: .*missing.pem is not a readable file"),
        ({"carrier_url": "https://c", "carrier_ca_file": "garbage"},
         "WCS_CARRIER_CA_FILE: .*garbage.pem holds no PEM certificate "
         "\\(no certificate or crl found\\)"),
        ({"carrier_url": "https://c", "carrier_cert_file": "client", "carrier_key_file": "ca-key"},
         "WCS_CARRIER_CERT_FILE and WCS_CARRIER_KEY_FILE: .* are not a PEM certificate and its "
         "private key \\(key values mismatch\\)"),
        ({"notify": {"smtp_ca_file": "ca"}},
         "WCS_NOTIFY__SMTP_CA_FILE need WCS_NOTIFY__SMTP_SECURITY=starttls or tls"),
        ({"notify": {"smtp_security": "tls", "smtp_cert_file": "garbage",
                     "smtp_key_file": "client-key"}},
         "WCS_NOTIFY__SMTP_CERT_FILE and WCS_NOTIFY__SMTP_KEY_FILE: .*garbage.pem and "
         ".*client-key.pem are not a PEM certificate and its private key \\(unreadable PEM\\)"),
        ({"notify": {"webhook_url": "http://sms", "webhook_ca_file": "ca"}},
         "WCS_NOTIFY__WEBHOOK_CA_FILE need an https:// WCS_NOTIFY__WEBHOOK_URL"),
        ({"notify": {"webhook_url": "https://sms", "webhook_ca_file": "missing"}},
         "WCS_NOTIFY__WEBHOOK_CA_FILE: .*missing.pem is not a readable file"),
        ({"mqtt_url": "mqtts://h", "mqtt_ca_file": "garbage"},
         "WCS_MQTT_CA_FILE: .*garbage.pem holds no PEM certificate \\(no certificate or crl "
         "found\\)"),
    ],
)  # fmt: skip
def test_tls_settings_refused_in_one_line_naming_the_setting(
    bad_files: dict[str, Path], values: dict[str, Any], line: str
) -> None:
    def files(group: dict[str, Any]) -> dict[str, Any]:
        return {
            k: files(v) if isinstance(v, dict) else bad_files[v] if k.endswith("_file") else v
            for k, v in group.items()
        }

    with pytest.raises(ValidationError) as refused:
        Settings(**files(values))
    described = describe_error(refused.value)
    assert "\n" not in described
    assert re.fullmatch(line, described), described


def test_the_command_line_names_a_wrong_tls_file_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCS_")}
    env |= {
        "WCS_NOTIFY__SMTP_SECURITY": "starttls",
        "WCS_NOTIFY__SMTP_CERT_FILE": str(tmp_path / "client.pem"),
        "WCS_NOTIFY__SMTP_KEY_FILE": str(tmp_path / "client.key"),
    }
    done = run(
        [sys.executable, "-m", "cli", "api", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"configuration error: WCS_NOTIFY__SMTP_CERT_FILE: {tmp_path / 'client.pem'} "
        "is not a readable file"
    ]


def test_without_tls_files_the_libraries_keep_their_own_checks() -> None:
    # Nothing set: no context of ours, the library's default (the system's trust store).
    settings = Settings(carrier_url="https://carrier.example")
    assert settings.carrier_tls.context() is None
    assert settings.notify.smtp_tls.context() is None
    assert settings.notify.webhook_tls.context() is None
