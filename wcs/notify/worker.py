"""The notifier: ``async with Notifier(engine, settings) as notifier`` runs the named
task ``notifier`` until the block is left.

One round: take over rows a dead notifier left in ``sending``, expand new requests
and customer notices into notifications, claim the due ones and send them, a few at
a time. Only the holder of the ``notifier`` lease works, so any number of API
processes (and a standalone ``wcs notify``) can run one and exactly one sends.
Failures of the database or a channel are logged once while they last, then the
round is tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.ids import new_id
from wcs.notify import policy, store
from wcs.notify.channels import (
    Channel,
    NotifyError,
    OutcomeUnknown,
    Outgoing,
    PermanentFailure,
    SmtpChannel,
    TemporaryFailure,
    WebhookChannel,
    webhook_client,
)
from wcs.persistence.db import OUTAGE_ERRORS
from wcs.persistence.leases import Lease
from wcs.retry import Outage
from wcs.settings import Settings
from wcs.tasks import background, every
from wcs.timeutil import utcnow

log = logging.getLogger(__name__)

BeforeMark = Callable[[store.Claimed], Awaitable[None]]


@dataclass
class NotifierStats:
    rounds: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    unconfirmed: int = 0
    recovered: int = 0
    active: bool = False
    outcomes: dict[str, int] = field(default_factory=dict)


class Notifier:
    LEASE = "notifier"

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        before_mark: BeforeMark | None = None,
    ) -> None:
        """``before_mark`` runs after a channel accepted a message and before that is
        recorded: the one moment a crash leaves the outcome unknown (tests stop the
        notifier there)."""
        self._engine = engine
        self._settings = settings
        self._n = settings.notify
        self._before_mark = before_mark
        self._holder = new_id("notify-")
        self._lease = Lease(
            engine,
            self.LEASE,
            ttl=timedelta(seconds=max(3 * self._n.poll_s, 15.0)),
            holder=self._holder,
        )
        self._outage = Outage("notifier", log, expected=OUTAGE_ERRORS)
        self._wake = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self._http: httpx.AsyncClient | None = None
        self._channels: dict[str, Channel] = {}
        self.stats = NotifierStats()

    @property
    def channels(self) -> Mapping[str, Channel]:
        return self._channels

    @property
    def failures(self) -> int:
        """Rounds that failed (the database or a bug; a refused message is not one)."""
        return self._outage.total

    def wake(self) -> None:
        self._wake.set()

    async def __aenter__(self) -> Notifier:
        await self.open()
        await self._stack.enter_async_context(
            background("notifier", self._lease.run(self._every_poll))
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
        await self.close()

    async def open(self) -> None:
        """Channels only (for ``run_once`` without the background task)."""
        self._http = webhook_client(self._n)
        self._channels = {"email": SmtpChannel(self._n), "sms": WebhookChannel(self._n, self._http)}
        for name, channel in self._channels.items():
            if not channel.configured:
                log.info(
                    "notification channel %s is not configured; its messages wait until it is",
                    name,
                )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await store.release_claims(self._engine, self._holder)
        await self._lease.give_up()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _every_poll(self) -> None:
        try:
            await every(self._n.poll_s, self._round, self._outage, wake=self._wake)
        finally:
            self.stats.active = False  # the lease is gone, or we are stopping

    async def run_once(self) -> bool:
        """One round if this notifier holds the lease; True when it sent a full batch
        (there may be more due right away)."""
        if not await self._lease.take():
            self.stats.active = False
            return False
        return await self._round()

    async def _round(self) -> bool:
        """One round, the lease held."""
        self.stats.active = True
        self.stats.rounds += 1
        resend_safe = {name for name, ch in self._channels.items() if ch.resend_safe}
        again, unknown = await store.recover(self._engine, resend_safe)
        self.stats.recovered += again
        self.stats.unconfirmed += unknown
        if unknown:
            log.warning(
                "%d notification(s) were handed over by a notifier that then stopped; "
                "listed as unconfirmed for a person to check",
                unknown,
            )
        on = {name for name, ch in self._channels.items() if ch.configured}
        while await store.expand(self._engine, self._settings, on, limit=self._n.batch):
            pass
        due = await store.claim_due(
            self._engine, self._settings, self._holder, on, limit=self._n.batch
        )
        if due:
            # One order's messages go one after the other, in the order they happened;
            # different orders' messages go side by side.
            per_order: dict[str, list[store.Claimed]] = {}
            for item in due:
                per_order.setdefault(item.order_id, []).append(item)
            gate = asyncio.Semaphore(self._n.concurrency)

            async def in_turn(items: list[store.Claimed]) -> None:
                async with gate:
                    for item in items:
                        await self._deliver(item)

            async with asyncio.TaskGroup() as group:
                for order_id, items in per_order.items():
                    group.create_task(in_turn(items), name=f"notify-{order_id}")
        return len(due) >= self._n.batch

    async def _deliver(self, item: store.Claimed) -> None:
        channel = self._channels[item.channel]
        message = Outgoing(
            key=item.key,
            kind=item.kind,
            order_id=item.order_id,
            recipient=item.recipient,
            lang=item.lang,
            subject=item.subject,
            text=item.body,
            html=item.body_html,
            sms=item.sms,
            message_id=item.message_id,
        )

        async def handover() -> None:
            await store.mark_handover(self._engine, item.id, self._holder)

        try:
            reference = await channel.send(message, handover)
        except PermanentFailure as exc:
            await self._dead(item, exc)
            return
        except TemporaryFailure as exc:
            await self._later(item, exc)
            return
        except OutcomeUnknown as exc:
            if channel.resend_safe:
                await self._later(item, exc)
            else:
                self.stats.unconfirmed += 1
                await store.mark_failed(
                    self._engine, item.id, self._holder, exc.message, state="unconfirmed"
                )
            return
        except NotifyError as exc:  # a new kind of failure: keep the row, try later
            await self._later(item, exc)
            return
        if self._before_mark is not None:
            await self._before_mark(item)
        await store.mark_sent(self._engine, item.id, self._holder, reference)
        self.stats.sent += 1

    async def _later(self, item: store.Claimed, exc: NotifyError) -> None:
        if item.attempts >= self._n.max_attempts:
            await self._dead(item, exc, f"gave up after {item.attempts} attempts: ")
            return
        delay = policy.backoff_s(item.attempts, self._n.backoff_base_s, self._n.backoff_cap_s)
        self.stats.retried += 1
        log.info(
            "notification %s (%s) failed, attempt %d; next in %.0fs: %s",
            item.id,
            item.channel,
            item.attempts,
            delay,
            exc.message,
        )
        await store.mark_failed(
            self._engine,
            item.id,
            self._holder,
            exc.message,
            state="pending",
            next_attempt_at=utcnow() + timedelta(seconds=delay),
        )

    async def _dead(self, item: store.Claimed, exc: NotifyError, prefix: str = "") -> None:
        self.stats.dead += 1
        log.warning("notification %s (%s) is undeliverable: %s", item.id, item.key, exc.message)
        await store.mark_failed(
            self._engine, item.id, self._holder, prefix + exc.message, state="dead"
        )


async def run_standalone(settings: Settings) -> None:
    """``wcs notify``: the notifier on its own, until interrupted."""
    from wcs.persistence.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        async with Notifier(engine, settings):
            await asyncio.Event().wait()
    finally:
        await engine.dispose()
