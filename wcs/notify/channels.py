"""Delivery channels: e-mail over SMTP (aiosmtplib) and an SMS/webhook adapter (httpx).

A channel sends one ``Outgoing`` and either returns the provider's reference or
raises one of three errors; aiosmtplib, httpx and socket errors never leave here::

    WcsError
    └── NotifyError
        ├── TemporaryFailure   not delivered; try again later (server away, 4xx reply)
        ├── PermanentFailure   not delivered and never will be as it is (5xx, bad address)
        └── OutcomeUnknown     handed over, then the link broke before the answer

``handover`` is awaited right before the point of no return (SMTP ``DATA``, the HTTP
request): until then a failure proves the message was not delivered. The webhook
sends the notification key as ``Idempotency-Key``, so repeating a request whose
outcome is unknown is safe (``resend_safe``); SMTP has no such thing, so the worker
never repeats an e-mail on its own after an unknown outcome.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

import aiosmtplib
import httpx

from wcs.errors import WcsError
from wcs.settings import NotifySettings
from wcs.timeutil import utcnow

Handover = Callable[[], Awaitable[None]]


class NotifyError(WcsError):
    code = "notify"


class TemporaryFailure(NotifyError):
    code = "notify_temporary"


class PermanentFailure(NotifyError):
    code = "notify_permanent"


class OutcomeUnknown(NotifyError):
    code = "notify_unknown"


@dataclass(frozen=True, slots=True)
class Outgoing:
    key: str
    kind: str
    order_id: str
    recipient: str
    lang: str
    subject: str
    text: str
    html: str | None
    sms: str
    message_id: str


class Channel(Protocol):
    name: str
    resend_safe: bool

    @property
    def configured(self) -> bool: ...

    async def send(self, message: Outgoing, handover: Handover) -> str: ...


def email_message(message: Outgoing, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.recipient
    mail["Subject"] = message.subject
    mail["Message-ID"] = message.message_id
    mail["Date"] = format_datetime(utcnow())
    mail["X-WCS-Notification"] = message.key
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    # After the content: setting the content clears every Content-* header.
    mail["Content-Language"] = message.lang
    return mail


def _smtp_code_error(code: int, text: str, what: str) -> NotifyError:
    detail = f"SMTP server refused {what}: {code} {text}".strip()
    if 400 <= code < 500:
        return TemporaryFailure(detail, smtp_code=code)
    return PermanentFailure(detail, smtp_code=code)


class SmtpChannel:
    """One SMTP session per message: notifications are few, and a session per message
    keeps a stalled connection from holding up the next one."""

    name = "email"
    resend_safe = False

    def __init__(self, settings: NotifySettings) -> None:
        self._s = settings
        # starttls and tls: the server checked against a private CA, our certificate.
        self._tls = settings.smtp_tls.context()

    @property
    def configured(self) -> bool:
        return bool(self._s.smtp_host)

    def _client(self) -> aiosmtplib.SMTP:
        s = self._s
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_s,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            tls_context=self._tls,
        )

    async def send(self, message: Outgoing, handover: Handover) -> str:
        mail = email_message(message, self._s.smtp_from)
        sender = mail["From"].addresses[0].addr_spec
        smtp = self._client()
        try:
            await self._prepare(smtp, sender, message.recipient)
            await handover()
            try:
                response = await smtp.data(mail.as_bytes())
            except aiosmtplib.SMTPResponseException as exc:
                # The server answered: it did not take the message.
                raise _smtp_code_error(exc.code, exc.message, "the message") from None
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise OutcomeUnknown(
                    f"SMTP link broke while the message was being accepted ({exc}); "
                    f"look for Message-ID {message.message_id} in the mail server's log",
                    message_id=message.message_id,
                ) from None
            return response.message or "250"
        finally:
            with contextlib.suppress(Exception):
                await smtp.quit()

    async def _prepare(self, smtp: aiosmtplib.SMTP, sender: str, recipient: str) -> None:
        s = self._s
        try:
            await smtp.connect()
            if s.smtp_username and s.smtp_password:
                await smtp.login(s.smtp_username, s.smtp_password)
            await smtp.mail(sender)
            await smtp.rcpt(recipient)
        except aiosmtplib.SMTPRecipientRefused as exc:
            raise _smtp_code_error(exc.code, exc.message, f"recipient {recipient}") from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise TemporaryFailure(
                f"SMTP login refused ({exc.code}); check WCS_NOTIFY__SMTP_USERNAME/PASSWORD"
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _smtp_code_error(exc.code, exc.message, "the sender or session") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(
                f"cannot reach the SMTP server {s.smtp_host}:{s.smtp_port} ({exc})"
            ) from None


def webhook_client(settings: NotifySettings) -> httpx.AsyncClient:
    """The HTTP client of the SMS webhook: its TLS files (a private CA, our client
    certificate) or the system's trust store."""
    tls = settings.webhook_tls.context()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.smtp_timeout_s), verify=tls if tls is not None else True
    )


class WebhookChannel:
    """Text messages through an HTTP gateway: ``POST webhook_url`` with a JSON body.

    Body: ``{"v": 1, "key", "kind", "order_id", "to", "lang", "text"}``; headers
    ``Idempotency-Key: <key>`` and, when configured, ``Authorization: Bearer <token>``.
    2xx is accepted; 408, 425, 429 and 5xx are temporary; any other answer permanent.
    """

    name = "sms"
    resend_safe = True
    TEMPORARY = frozenset({408, 425, 429})

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient) -> None:
        self._s = settings
        self._client = client

    @property
    def configured(self) -> bool:
        return bool(self._s.webhook_url)

    async def send(self, message: Outgoing, handover: Handover) -> str:
        url = self._s.webhook_url
        if not url:
            raise TemporaryFailure("no SMS webhook configured (WCS_NOTIFY__WEBHOOK_URL)")
        headers = {"Idempotency-Key": message.key}
        if self._s.webhook_token:
            headers["Authorization"] = f"Bearer {self._s.webhook_token}"
        body = {
            "v": 1,
            "key": message.key,
            "kind": message.kind,
            "order_id": message.order_id,
            "to": message.recipient,
            "lang": message.lang,
            "text": message.sms,
        }
        await handover()
        try:
            response = await self._client.post(url, json=body, headers=headers)
        except httpx.ConnectError as exc:
            raise TemporaryFailure(f"cannot reach the SMS webhook {url} ({exc})") from None
        except httpx.HTTPError as exc:
            raise OutcomeUnknown(
                f"SMS webhook {url} did not answer ({type(exc).__name__}); "
                "repeating is safe, it carries the same Idempotency-Key"
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return response.headers.get("x-request-id") or f"http {status}"
        detail = f"SMS webhook answered {status}: {response.text[:200]}"
        if status >= 500 or status in self.TEMPORARY:
            raise TemporaryFailure(detail, status=status)
        raise PermanentFailure(detail, status=status)
