"""One i18n mechanism (gettext catalogues with Babel): every text the source marks has
a translation in every catalogue, negotiation serves Chinese for every Chinese tag,
and the system's terms (states, devices, alerts, reasons) are all named."""

from __future__ import annotations

import copy
import re
import typing

import pytest

from wcs.contract.payloads import DeviceKind
from wcs.domain.alert_rules import ALERT_CATALOGUE
from wcs.domain.states import TRANSITIONS, OrderState, ReturnState
from wcs.flowchart import order_flow_svg, return_flow_svg
from wcs.i18n import messages
from wcs.i18n.catalogues import catalogue_dirs, offered, read_catalogue
from wcs.i18n.negotiation import (
    BadLanguageTag,
    accept_language,
    country_language,
    match,
    negotiate,
    normalise,
    parse_tag,
)
from wcs.i18n.terms import TERMS
from wcs.i18n.translator import translator, translator_for
from wcs.services.courier_app import FAILURE_REASONS
from wcs.services.shipments import LIVE

# Texts that read the same in Chinese (units, codes, language names).
SAME_IN_CHINESE = {"UTC", "English", "p50", "p95", "KPI"}


@pytest.fixture(scope="module")
def template() -> typing.Any:
    return messages.extract()


def test_extraction_finds_every_kind_of_text(template: typing.Any) -> None:
    sources = {f for m in template for f, _ in m.locations}
    for expected in (
        "api/templates/status.html",  # pages
        "api/templates/courier.html",
        "wcs/notify/templates/shipped.j2",  # notifications
        "wcs/domain/alert_rules.py",  # alert titles
        "wcs/report/render.py",  # reports
        "wcs/domain/states.py",  # diagram labels
        "wcs/i18n/terms.py",  # state names, device kinds, reasons
    ):
        assert expected in sources, f"nothing extracted from {expected}"
    assert template.get("received", "order state") is not None


@pytest.mark.parametrize("directory", catalogue_dirs())
def test_every_catalogue_translates_every_text(template: typing.Any, directory: str) -> None:
    found = messages.problems(template, read_catalogue(directory))
    assert found == [], "\n".join(found) + "\n(run `make messages`, then translate)"


def test_the_completeness_check_fails_for_a_missing_message(template: typing.Any) -> None:
    catalogue = read_catalogue("zh_CN")
    assert messages.problems(template, catalogue) == []
    cut = copy.deepcopy(catalogue)
    del cut["Warehouse status"]
    assert any("missing: 'Warehouse status'" in p for p in messages.problems(template, cut))
    blank = copy.deepcopy(catalogue)
    blank["Hello %(name)s,"].string = ""
    assert any("untranslated" in p for p in messages.problems(template, blank))
    wrong = copy.deepcopy(catalogue)
    wrong["Hello %(name)s,"].string = "%(nom)s，您好："
    assert any("placeholders" in p for p in messages.problems(template, wrong))


def test_chinese_is_chinese() -> None:
    for message in read_catalogue("zh_CN"):
        if not message.id or message.id in SAME_IN_CHINESE:
            continue
        assert re.search(r"[\u4e00-\u9fff]", str(message.string)), (
            f"{message.id!r} has no Chinese in its translation {message.string!r}"
        )


def test_every_term_is_named() -> None:
    assert set(TERMS["state"]) == {s.value for s in OrderState}
    assert set(TERMS["return_state"]) == {s.value for s in ReturnState}
    assert set(TERMS["shipment"]) >= {*LIVE, "pending", "cancelled"}
    assert set(TERMS["device_kind"]) == set(typing.get_args(DeviceKind))
    assert set(TERMS["failure_reason"]) == set(FAILURE_REASONS)
    assert set(TERMS["severity"]) >= {spec.severity for spec in ALERT_CATALOGUE.values()}
    zh = translator("zh-CN")
    assert zh.state("out_for_delivery") == "派送中"
    assert zh.term("device_kind", "ptl") == "亮灯拣货面板"
    assert zh.term("failure_reason", "not_home") == "无人在家"
    assert zh.state("no_such_state") == "no_such_state"
    assert zh.gettext(ALERT_CATALOGUE["device_offline"].title) == "设备离线"
    assert zh.gettext("Stop %(seq)s", seq=3) == "第 3 站"
    assert translator("en").state("qc_passed") == "QC passed"
    assert translator("en").gettext("Stop %(seq)s", seq=3) == "Stop 3"
    for label in {t.label for t in TRANSITIONS}:
        assert zh.gettext(label) != label, f"diagram label {label!r} is not translated"


@pytest.mark.parametrize(
    ("tag", "served"),
    [
        ("zh", "zh-CN"),
        ("zh-CN", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("ZH-cn", "zh-CN"),
        ("zh-SG", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("zh-Hant-HK", "zh-CN"),
        ("en", "en"),
        ("en-GB", "en"),
        ("de-DE", None),
        ("xx-!!", None),
        ("", None),
        (None, None),
    ],
)
def test_match(tag: str | None, served: str | None) -> None:
    assert match(tag) == served


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en-GB,en;q=0.9,zh;q=0.8", "en"),
        ("de-DE,de;q=0.9,zh;q=0.5,en;q=0.4", "zh-CN"),
        ("fr-FR,fr;q=0.9", "en"),
        ("en;q=0.3,zh;q=0.7", "zh-CN"),
        ("zh;q=0,en", "en"),
        ("zh;q=oops,en", "en"),
        ("*", "en"),
    ],
)
def test_accept_language(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_accept_language_order_and_tags() -> None:
    assert accept_language("en;q=0.3, zh-Hans;q=0.7, de") == ["de", "zh-Hans", "en"]


def test_tags_are_checked_and_normalised() -> None:
    assert normalise("ZH-hans-cn") == "zh-Hans-CN"
    assert normalise("de_ch") == "de-CH"
    assert parse_tag("zh-Hans").script == "Hans"
    for bad in ("!!", "e", "english please", "tlh-XX", "123"):
        with pytest.raises(BadLanguageTag):
            parse_tag(bad)


def test_the_language_of_a_country() -> None:
    assert country_language("CN") == "zh-CN"
    assert country_language("de") == "de-DE"
    assert country_language("TW") == "zh-Hant-TW"
    assert country_language("US") == "en-US"
    assert country_language("ZZ") is None and country_language(None) is None


def test_translator_for_negotiates() -> None:
    assert translator_for("de", "zh-Hans").lang == "zh-CN"
    assert translator_for("fr").lang == "en"
    assert translator_for().lang == "en"
    assert offered() == ("en", "zh-CN")
    assert translator("zh-CN").language_name("zh-CN") == "中文"
    assert translator("en").language_name("en") == "English"


def test_flow_diagram_speaks_the_language() -> None:
    zh = order_flow_svg({"reserved": 2}, translator("zh-CN"))
    assert ">已预留库存</text>" in zh and ">reserved</text>" not in zh
    assert 'id="state-reserved"' in zh and 'id="count-reserved"' in zh
    assert ">校验通过</text>" in zh  # a transition label
    assert "已预留库存：2 单" in zh  # a state's tooltip
    assert "已发运 之前的任何状态" in zh  # the cancellation note
    machine = order_flow_svg({"reserved": 2})
    assert ">reserved</text>" in machine and ">checks pass</text>" in machine
    returns = return_flow_svg(None, translator("zh-CN"))
    assert ">已申请退货</text>" in returns and "退货（按订单行）" in returns
