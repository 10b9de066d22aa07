"""Notifier decisions and templates, without I/O."""

from __future__ import annotations

from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import pytest

from wcs.i18n.catalogues import offered
from wcs.notify import policy
from wcs.notify.channels import Outgoing, email_message
from wcs.notify.queue import NOTIFY_ON
from wcs.notify.templates import render, template_names

C = policy.Contact


@pytest.mark.parametrize(
    ("kind", "contact", "email_on", "sms_on", "expected"),
    [
        ("shipped", C("a@x.org", "+49 1"), True, True, [("email", "a@x.org")]),
        (
            "out_for_delivery",
            C("a@x.org", "+49 1"),
            True,
            True,
            [("email", "a@x.org"), ("sms", "+49 1")],
        ),
        # No SMS gateway: the e-mail alone reaches the customer.
        ("out_for_delivery", C("a@x.org", "+49 1"), True, False, [("email", "a@x.org")]),
        # No address: a text message is the only way, even before SMS is configured.
        ("shipped", C(None, "+49 1"), True, False, [("sms", "+49 1")]),
        # E-mail off but SMS on: do not wait for SMTP when a phone reaches the customer.
        ("shipped", C("a@x.org", "+49 1"), False, True, [("email", "a@x.org"), ("sms", "+49 1")]),
        ("delivered", C(None, None), True, True, [("none", None)]),
        ("order_exception", C("a@x.org", "+49 1"), True, True, [("email", "cs@shop.example")]),
    ],
)
def test_channel_plan(
    kind: str,
    contact: policy.Contact,
    email_on: bool,
    sms_on: bool,
    expected: list[tuple[str, str | None]],
) -> None:
    planned = policy.plan_channels(
        kind, contact, email_on=email_on, sms_on=sms_on, staff_email="cs@shop.example"
    )
    assert [(p.channel, p.recipient) for p in planned] == expected
    assert all((p.problem is None) == (p.channel != "none") for p in planned)


def test_staff_notice_without_address_names_the_setting() -> None:
    (planned,) = policy.plan_channels(
        "order_exception", C("a@x.org", None), email_on=True, sms_on=True, staff_email=None
    )
    assert planned.channel == "none"
    assert planned.problem is not None and "CUSTOMER_SERVICE_EMAIL" in planned.problem


@pytest.mark.parametrize(
    ("pref", "order_lang", "country", "default", "lang"),
    [
        (None, None, "CN", "en", "zh-CN"),
        (None, None, "cn", "en", "zh-CN"),
        (None, None, "TW", "en", "zh-CN"),  # Traditional readers read Simplified
        (None, None, "DE", "en", "en"),
        (None, None, "SG", "zh-CN", "en"),  # English is Singapore's first language
        ("en", None, "CN", "en", "en"),
        ("zh-CN", None, "DE", "en", "zh-CN"),
        (None, "zh-CN", "DE", "en", "zh-CN"),
        (None, "zh-Hans", "DE", "en", "zh-CN"),
        (None, "zh", "DE", "en", "zh-CN"),
        (None, "en-GB", "CN", "en", "en"),
        ("en", "zh-CN", "DE", "en", "en"),  # the customer's later choice wins
        (None, "de-DE", "CN", "en", "zh-CN"),  # no German: the country's language next
        ("fr", None, "DE", "zh-CN", "zh-CN"),
        (None, None, None, "en", "en"),
    ],
)
def test_language(
    pref: str | None, order_lang: str | None, country: str | None, default: str, lang: str
) -> None:
    assert policy.choose_lang(pref, order_lang, country, default) == lang


def test_keys_and_message_ids_are_stable_per_channel() -> None:
    key = policy.order_key("o01abc", 7, "email")
    assert key == "order:o01abc:7:email"
    assert policy.notice_key(12, "sms") == "notice:12:sms"
    first = policy.message_id(key, "wh1", policy.domain_of("Shop <no-reply@shop.example>"))
    assert first == policy.message_id(key, "wh1", "shop.example")
    assert first == "<wcs.wh1.order.o01abc.7.email@shop.example>"
    assert first != policy.message_id(policy.order_key("o01abc", 7, "sms"), "wh1", "shop.example")
    assert policy.domain_of("no address") == "localhost"


def test_backoff_grows_is_capped_and_jittered() -> None:
    low = [policy.backoff_s(n, 10, 300, rand=lambda a, b: a) for n in range(1, 9)]
    high = [policy.backoff_s(n, 10, 300, rand=lambda a, b: b) for n in range(1, 9)]
    assert low == [5, 10, 20, 40, 80, 150, 150, 150]
    assert high == [10, 20, 40, 80, 160, 300, 300, 300]
    for n in range(1, 20):
        assert 0 < policy.backoff_s(n, 10, 300) <= 300
    assert policy.backoff_s(10_000, 1, 60) <= 60
    with pytest.raises(ValueError, match="at least one"):
        policy.backoff_s(0, 1, 10)


def _context(**extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "order": {
            "id": "o123",
            "external_id": "SHOP-9",
            "customer_name": "Ada <Lovelace>",
            "city": "Munich",
            "service": "express",
            "state": "shipped",
        },
        "reason": "unknown SKU 'X'",
        "message": "Your return R1 is refunded: 12.50 EUR.",
        "short": ["SKU-A x2"],
        "choice_url": "http://wcs.example/api/v1/orders/o123/backorder-choice",
        "links": {"receipt": None, "return": None, "label": None, "resolution": None},
        "shipment": {
            "tracking_no": "FC123",
            "carrier_name": "Fast Carrier",
            "tracking_url": "http://wcs.example/api/v1/track/FC123",
            "delivery_due": "2026-11-27 18:00 UTC",
        },
        "ret": {"id": "R1", "refund": "12.50 EUR", "replacement_order_id": None, "note": None},
    }
    context.update(extra)
    return context


def test_every_kind_has_a_template() -> None:
    kinds = {*NOTIFY_ON.values(), "delivery_delayed", "delivery_failed", "reshipment"}
    kinds |= {"return_label", "refund", "exchange", "rejected", "notice"}
    assert set(template_names()) == kinds


@pytest.mark.parametrize("lang", offered())
@pytest.mark.parametrize("kind", template_names())
def test_templates_render_subject_sms_and_both_bodies(kind: str, lang: str) -> None:
    out = render(kind, lang, _context())
    assert out.subject and "\n" not in out.subject
    assert out.sms and len(out.sms) <= 320
    assert out.text.strip()
    assert out.html.startswith("<!DOCTYPE html>") and f'lang="{lang}"' in out.html
    # The name is escaped in HTML and never smuggles markup in.
    assert "<Lovelace>" not in out.html
    if lang == "zh-CN":
        assert any("\u4e00" <= ch <= "\u9fff" for ch in out.subject + out.text)


def test_shipped_mail_has_the_tracking_link_as_text_and_link() -> None:
    out = render("shipped", "en", _context())
    url = "http://wcs.example/api/v1/track/FC123"
    assert url in out.text and "FC123" in out.text and "Fast Carrier" in out.text
    assert f'<a href="{url}">' in out.html
    assert url in out.sms
    zh = render("shipped", "zh-CN", _context())
    assert url in zh.text and "运单号" in zh.text


def test_backorder_mail_offers_the_three_choices_and_the_link() -> None:
    out = render("backordered", "en", _context())
    for word in ("wait", "substitute", "cancel", "SKU-A x2"):
        assert word in out.text
    assert "/backorder-choice" in out.text
    zh = render("backordered", "zh-CN", _context())
    assert "等待" in zh.text and "替换" in zh.text and "取消" in zh.text


def test_unknown_kind_falls_back_to_the_notice_message() -> None:
    out = render("something_new", "en", _context(message="Parcel held at customs."))
    assert "Parcel held at customs." in out.text


def test_templates_are_strict_about_missing_data() -> None:
    from jinja2 import UndefinedError

    context = _context()
    del context["order"]
    with pytest.raises(UndefinedError):
        render("shipped", "en", context)
    with pytest.raises(ValueError, match="no templates"):
        render("shipped", "fr", _context())


def test_email_carries_the_stable_message_id_and_both_parts() -> None:
    out = render("shipped", "zh-CN", _context())
    mail = email_message(
        Outgoing(
            key="order:o123:9:email",
            kind="shipped",
            order_id="o123",
            recipient="ada@example.org",
            lang="zh-CN",
            subject=out.subject,
            text=out.text,
            html=out.html,
            sms=out.sms,
            message_id="<wcs.wh1.order.o123.9.email@shop.example>",
        ),
        "Shop <no-reply@shop.example>",
    )
    parsed = message_from_bytes(mail.as_bytes(), policy=email_policy.default)
    assert parsed["Message-ID"] == "<wcs.wh1.order.o123.9.email@shop.example>"
    assert parsed["Subject"] == out.subject
    assert parsed["Content-Language"] == "zh-CN"
    assert parsed["X-WCS-Notification"] == "order:o123:9:email"
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert plain is not None and "运单号" in plain.get_content()
    assert html is not None and "<a href=" in html.get_content()
