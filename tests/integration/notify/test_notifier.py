"""The notifier against a real SMTP server and a real HTTP receiver, on SQLite and
PostgreSQL: retries, dead letters, the webhook channel, customer notices, recovery."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.notify.conftest import Inbox, Receiver, notify_settings
from tests.integration.persistence.helpers import new_order, seed_catalogue
from wcs.contract.topics import Topics
from wcs.links import Links
from wcs.notify import store
from wcs.notify.worker import Notifier
from wcs.persistence.db import transaction
from wcs.persistence.orders import transition
from wcs.persistence.tables import customer_notices, notifications
from wcs.services.notices import add_notice
from wcs.services.orders import submit_order
from wcs.settings import NotifySettings, Settings

TOPICS = Topics("wh1")
STOCK = {"SKU-N1": [("A-01-01-1", 5)]}


def settings_for(engine: AsyncEngine, notify: NotifySettings) -> Settings:
    return Settings(database_url=str(engine.url), site="wh1", notify=notify)


async def place(engine: AsyncEngine, key: str, lines: list[tuple[str, int]], **kw: Any) -> str:
    result = await submit_order(
        engine,
        TOPICS,
        new_order(key, lines, **kw),
        idempotency_key=key,
        request_hash=key,
        actor="test",
    )
    return result.order_id


async def rows(engine: AsyncEngine, order_id: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    select(notifications)
                    .where(notifications.c.order_id == order_id)
                    .order_by(notifications.c.id)
                )
            ).all()
        )


async def until(
    notifier: Notifier, done: Callable[[], Awaitable[bool]], timeout: float = 10.0
) -> None:
    """Run rounds until ``done`` (backoffs in these tests are tens of milliseconds)."""
    async with asyncio.timeout(timeout):
        while True:
            await notifier.run_once()
            if await done():
                return
            await asyncio.sleep(0.03)


async def states(engine: AsyncEngine, order_id: str) -> list[tuple[str, str]]:
    return [(r.channel, r.state) for r in await rows(engine, order_id)]


async def test_smtp_failures_are_retried_and_the_mail_arrives_once(
    engine: AsyncEngine, inbox: Inbox
) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-N1": [("A-01-01-1", 0)]})
    inbox.replies = ["451 4.3.0 try again later", "451 4.3.0 try again later"]
    order_id = await place(engine, "bo-1", [("SKU-N1", 2)])  # no stock: backordered
    notifier = Notifier(engine, settings_for(engine, notify_settings(inbox)))
    await notifier.open()
    try:
        await until(notifier, lambda: _all_in(engine, order_id, "sent"))
    finally:
        await notifier.close()
    (row,) = await rows(engine, order_id)
    assert (row.kind, row.channel, row.attempts) == ("backordered", "email", 3)
    assert inbox.data_calls == 3 and len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert mail["Message-ID"] == row.message_id
    assert mail["To"] == "li.wei@example.cn"
    # A Shanghai address without a stored preference reads Simplified Chinese.
    assert mail["Content-Language"] == "zh-CN" and "补货" in str(mail["Subject"])
    body = mail.get_body(("plain",))
    assert body is not None
    assert "SKU-N1 x2" in body.get_content()
    # The choice is made on a page reached by a signed link for this order only.
    found = re.search(r"http://wcs\.test/my/backorder/([A-Za-z0-9._-]+)", body.get_content())
    assert found is not None, body.get_content()
    link = Links(Settings(database_url=str(engine.url)).link_secret).read("backorder", found[1])
    assert link.order_id == order_id


async def _all_in(engine: AsyncEngine, order_id: str, state: str) -> bool:
    found = await rows(engine, order_id)
    return bool(found) and all(r.state == state for r in found)


async def test_dead_letter_after_max_attempts_then_a_retry_delivers(
    engine: AsyncEngine, inbox: Inbox
) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-N1": [("A-01-01-1", 0)]})
    inbox.replies = ["451 4.7.1 greylisted"] * 3
    order_id = await place(
        engine, "bo-2", [("SKU-N1", 1)], country="DE", city="Berlin", postal_code="10115"
    )
    notifier = Notifier(engine, settings_for(engine, notify_settings(inbox, max_attempts=3)))
    await notifier.open()
    try:
        await until(notifier, lambda: _all_in(engine, order_id, "dead"))
        (row,) = await rows(engine, order_id)
        assert row.attempts == 3 and inbox.data_calls == 3 and inbox.messages == []
        assert row.last_error.startswith("gave up after 3 attempts")
        assert "451" in row.last_error
        dead = await store.list_notifications(engine, states=["dead"])
        assert [d["id"] for d in dead] == [row.id]

        view = await store.retry(engine, row.id, "cs-agent")
        assert (view["state"], view["attempts"]) == ("pending", 0)
        await until(notifier, lambda: _all_in(engine, order_id, "sent"))
    finally:
        await notifier.close()
    assert len(inbox.messages) == 1 and inbox.messages[0]["Content-Language"] == "en"
    assert inbox.messages[0]["Message-ID"] == row.message_id


async def test_a_refused_recipient_is_dead_at_once(engine: AsyncEngine, inbox: Inbox) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-N1": [("A-01-01-1", 0)]})
    inbox.refuse_rcpt = {"gone@example.org"}
    order_id = await place(engine, "bo-3", [("SKU-N1", 1)], email="gone@example.org")
    notifier = Notifier(engine, settings_for(engine, notify_settings(inbox)))
    await notifier.open()
    try:
        await until(notifier, lambda: _all_in(engine, order_id, "dead"))
    finally:
        await notifier.close()
    (row,) = await rows(engine, order_id)
    assert row.attempts == 1 and "550" in row.last_error and inbox.data_calls == 0


async def test_invalid_order_mails_customer_service_with_the_reason(
    engine: AsyncEngine, inbox: Inbox
) -> None:
    await seed_catalogue(engine, TOPICS, STOCK)
    order_id = await place(engine, "bad-1", [("NO-SUCH-SKU", 1)])
    notifier = Notifier(engine, settings_for(engine, notify_settings(inbox)))
    await notifier.open()
    try:
        await until(notifier, lambda: _all_in(engine, order_id, "sent"))
    finally:
        await notifier.close()
    (mail,) = inbox.messages
    assert mail["To"] == "cs@shop.test" and order_id in str(mail["Subject"])
    # Staff read the language of the site (English), whatever the customer's country.
    assert mail["Content-Language"] == "en"
    body = mail.get_body(("plain",))
    assert body is not None and "NO-SUCH-SKU" in body.get_content()


async def test_webhook_channel_retries_with_the_same_idempotency_key(
    engine: AsyncEngine, inbox: Inbox, receiver: Receiver
) -> None:
    await seed_catalogue(engine, TOPICS, STOCK)
    receiver.statuses = [503]
    sms_only = await place(
        engine, "sms-1", [("SKU-N1", 1)], email=None, country="DE", postal_code="10115"
    )
    both = await place(engine, "sms-2", [("SKU-N1", 1)], country="DE", postal_code="10115")
    async with transaction(engine) as conn:
        for order_id in (sms_only, both):
            for state in (
                "pick_planned",
                "picking",
                "picked",
                "qc_passed",
                "packing",
                "packed",
                "allocated",
                "shipped",
                "out_for_delivery",
            ):
                await transition(conn, TOPICS, order_id, state, actor="test")
    notify = notify_settings(inbox, webhook_url=receiver.url, webhook_token="gw-token-1")
    notifier = Notifier(engine, settings_for(engine, notify))
    await notifier.open()
    try:
        await until(
            notifier,
            lambda: _both(_all_in(engine, sms_only, "sent"), _all_in(engine, both, "sent")),
        )
    finally:
        await notifier.close()
    # Without an address everything goes by text; with one, only the time-critical kind.
    assert sorted(await states(engine, sms_only)) == [("sms", "sent"), ("sms", "sent")]
    assert sorted(await states(engine, both)) == [
        ("email", "sent"),
        ("email", "sent"),
        ("sms", "sent"),
    ]
    keys = [h["idempotency-key"] for h, _ in receiver.requests]
    assert len(keys) == 4 and len(set(keys)) == 3  # the 503 was repeated under its key
    assert all(h["authorization"] == "Bearer gw-token-1" for h, _ in receiver.requests)
    bodies = {b["key"]: b for _, b in receiver.requests}
    ofd = bodies[f"order:{both}:12:sms"]
    assert ofd["to"] == "+8613800138000" and ofd["kind"] == "out_for_delivery"  # E.164
    assert ofd["lang"] == "en" and "out for delivery" in ofd["text"]
    assert len(inbox.messages) == 2  # shipped + out_for_delivery to the customer with e-mail


async def _both(a: Awaitable[bool], b: Awaitable[bool]) -> bool:
    first, second = await a, await b
    return first and second


async def test_webhook_without_answer_is_repeated_under_its_key(
    engine: AsyncEngine, inbox: Inbox, receiver: Receiver
) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-N1": [("A-01-01-1", 0)]})
    receiver.hang_next = 1
    order_id = await place(engine, "sms-3", [("SKU-N1", 1)], email=None)
    notify = notify_settings(inbox, webhook_url=receiver.url, smtp_timeout_s=0.5)
    notifier = Notifier(engine, settings_for(engine, notify))
    await notifier.open()
    try:
        await until(notifier, lambda: _all_in(engine, order_id, "sent"))
    finally:
        await notifier.close()
    (row,) = await rows(engine, order_id)
    assert row.attempts == 2
    assert [h["idempotency-key"] for h, _ in receiver.requests] == [row.key, row.key]


async def test_customer_notices_go_out_and_are_marked_sent(
    engine: AsyncEngine, inbox: Inbox
) -> None:
    await seed_catalogue(engine, TOPICS, STOCK)
    order_id = await place(engine, "late-1", [("SKU-N1", 1)], country="DE", postal_code="10115")
    async with transaction(engine) as conn:
        # A kind without its own template: the notice's own words go out.
        notice_id = await add_notice(
            conn, order_id, "parcel_held", "Your parcel FC9 is held at customs."
        )
    notifier = Notifier(engine, settings_for(engine, notify_settings(inbox)))
    await notifier.open()
    try:
        await until(notifier, lambda: _all_in(engine, order_id, "sent"))
    finally:
        await notifier.close()
    (row,) = await rows(engine, order_id)
    assert row.key == f"notice:{notice_id}:email" and row.kind == "parcel_held"
    (mail,) = inbox.messages
    body = mail.get_body(("plain",))
    assert body is not None and "FC9" in body.get_content()
    async with engine.connect() as conn:
        sent_at = await conn.scalar(
            select(customer_notices.c.sent_at).where(customer_notices.c.id == notice_id)
        )
    assert sent_at is not None


async def test_an_unconfigured_channel_keeps_its_messages_waiting(
    engine: AsyncEngine, inbox: Inbox
) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-N1": [("A-01-01-1", 0)]})
    order_id = await place(engine, "wait-1", [("SKU-N1", 1)])
    off = Notifier(engine, settings_for(engine, notify_settings(inbox, smtp_host=None)))
    await off.open()
    try:
        for _ in range(3):
            await off.run_once()
    finally:
        await off.close()
    assert await states(engine, order_id) == [("email", "pending")]
    on = Notifier(engine, settings_for(engine, notify_settings(inbox)))
    await on.open()
    try:
        await until(on, lambda: _all_in(engine, order_id, "sent"))
    finally:
        await on.close()
    assert len(inbox.messages) == 1


async def test_background_task_sends_when_woken_and_stops_cleanly(
    engine: AsyncEngine, inbox: Inbox
) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-N1": [("A-01-01-1", 0)]})
    async with Notifier(engine, settings_for(engine, notify_settings(inbox))) as notifier:
        assert any(t.get_name() == "notifier" for t in asyncio.all_tasks())
        order_id = await place(engine, "bg-1", [("SKU-N1", 1)])
        notifier.wake()
        await inbox.wait_for(1)
    assert not any(t.get_name() == "notifier" for t in asyncio.all_tasks())
    assert await states(engine, order_id) == [("email", "sent")]


async def test_the_order_language_decides_over_the_address(
    engine: AsyncEngine, inbox: Inbox
) -> None:
    """zh-CN with a German address, and a Chinese address without a language, both read
    Chinese; a German address without a language reads English (no German catalogue)."""
    await seed_catalogue(engine, TOPICS, {"SKU-N1": [("A-01-01-1", 0)]})
    berlin = {"country": "DE", "city": "Berlin", "postal_code": "10115"}
    zh_in_berlin = await place(engine, "lang-zh", [("SKU-N1", 1)], lang="zh-CN", **berlin)
    in_china = await place(engine, "lang-cn", [("SKU-N1", 1)])
    in_berlin = await place(engine, "lang-de", [("SKU-N1", 1)], **berlin)
    notifier = Notifier(engine, settings_for(engine, notify_settings(inbox)))
    await notifier.open()
    try:
        for order_id in (zh_in_berlin, in_china, in_berlin):
            await until(notifier, lambda o=order_id: _all_in(engine, o, "sent"))
    finally:
        await notifier.close()
    for order_id, lang in ((zh_in_berlin, "zh-CN"), (in_china, "zh-CN"), (in_berlin, "en")):
        (row,) = await rows(engine, order_id)
        assert (row.kind, row.lang) == ("backordered", lang)
    by_subject = {m["Subject"]: m for m in inbox.messages}
    assert "您的订单 lang-zh 正在等待补货" in by_subject
    assert "您的订单 lang-cn 正在等待补货" in by_subject
    assert "Your order lang-de is waiting for stock" in by_subject
    mail = by_subject["您的订单 lang-zh 正在等待补货"]
    assert mail["Content-Language"] == "zh-CN"
    body = mail.get_body(("plain",))
    assert body is not None and "请选择后续处理方式" in body.get_content()
