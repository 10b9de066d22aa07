"""A real SMTP server (aiosmtpd) and a real HTTP receiver for the SMS webhook, both
served on the test's own event loop (no threads), with scripted failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as SmtpServerProtocol
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.http_wire import read_request
from tests.integration.delivery.conftest import (  # noqa: F401 (fixtures)
    carrier_http,
    fake_carrier,
    fake_carrier_process,
    tokens,
)
from wcs.persistence.tables import notifications
from wcs.settings import NotifySettings
from wcs.timeutil import utcnow


@dataclass
class Inbox:
    """What the SMTP server accepted; ``replies`` are answered to DATA before any 250."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    refuse_rcpt: set[str] = field(default_factory=set)
    data_calls: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.data_calls += 1
        if self.replies:
            return self.replies.pop(0)
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        parsed = message_from_bytes(raw, policy=email_policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.arrived.set()
        return "250 2.0.0 queued"

    def ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if str(m["To"]) == address]

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SmtpServerProtocol(box, hostname="mail.test", loop=loop), "127.0.0.1", 0
    )
    box.port = server.sockets[0].getsockname()[1]
    try:
        yield box
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Receiver:
    """A small HTTP server taking the SMS webhook's POSTs; ``statuses`` are answered
    first, then 200. ``hang_next`` requests are read but never answered."""

    port: int = 0
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    hang_next: int = 0
    handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            _, headers, body = await read_request(reader)
            self.requests.append((headers, json.loads(body)))
            if self.hang_next:
                self.hang_next -= 1
                await asyncio.sleep(3600)
            status = self.statuses.pop(0) if self.statuses else 200
            reply = b'{"ok": true}' if status == 200 else b'{"error": "scripted"}'
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode()
                + reply
            )
            await writer.drain()
        finally:
            self.handlers.discard(task)
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    server = await asyncio.start_server(rec.handle, "127.0.0.1", 0)
    rec.port = server.sockets[0].getsockname()[1]
    try:
        yield rec
    finally:
        server.close()
        for task in list(rec.handlers):  # those hanging on purpose
            task.cancel()
        await asyncio.gather(*rec.handlers, return_exceptions=True)
        await server.wait_closed()


def notify_settings(inbox: Inbox, **changes: Any) -> NotifySettings:
    base: dict[str, Any] = {
        "enabled": False,
        "smtp_host": "127.0.0.1",
        "smtp_port": inbox.port,
        "smtp_from": "Shop <no-reply@shop.test>",
        "smtp_timeout_s": 5,
        "customer_service_email": "cs@shop.test",
        "public_url": "http://wcs.test",
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.2,
        "poll_s": 0.05,
        "max_attempts": 4,
    }
    base.update(changes)
    return NotifySettings(**base)


async def add_notification(
    engine: AsyncEngine,
    order_id: str,
    *,
    kind: str,
    audience: str,
    state: str,
    attempts: int = 1,
    last_error: str | None = None,
) -> None:
    """A notification row as the notifier leaves it, written straight to the table."""
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            insert(notifications).values(
                key=f"{order_id}/{kind}/{audience}",
                order_id=order_id,
                kind=kind,
                audience=audience,
                channel="email",
                recipient="someone@example.org",
                lang="en",
                state=state,
                attempts=attempts,
                last_error=last_error,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
                sent_at=now if state == "sent" else None,
            )
        )
