"""The page languages: both catalogues complete and consistent, negotiation, and the
postal-code centroid table the own fleet plans with."""

from __future__ import annotations

import re
import string

import pytest

from api.i18n import (
    CATALOGUES,
    EN,
    LANGS,
    STATE_KEYS,
    ZH,
    negotiate,
    parse_lang,
    translate_flow_svg,
    translator,
)
from wcs.domain.states import OrderState
from wcs.fleet_data import MIN_PREFIX, centroids, parse
from wcs.flowchart import order_flow_svg
from wcs.services.courier_app import FAILURE_REASONS
from wcs.services.shipments import LIVE

TEMPLATES = ("status.html", "status_denied.html", "courier.html", "courier_login.html")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_exists_in_both_languages() -> None:
    only_en, only_zh = sorted(set(EN) - set(ZH)), sorted(set(ZH) - set(EN))
    assert only_en == [] and only_zh == [], f"only in English: {only_en}; in Chinese: {only_zh}"
    assert set(CATALOGUES) == set(LANGS)


def test_placeholders_match_and_no_text_is_left_untranslated() -> None:
    same_in_both = {"lang.en", "lang.zh-CN", "status.utc"}
    for key, english in EN.items():
        assert _fields(english) == _fields(ZH[key]), key
        assert english.strip() and ZH[key].strip(), key
        if key not in same_in_both:
            assert ZH[key] != english, f"{key} is not translated"
            assert re.search(r"[\u4e00-\u9fff]", ZH[key]), f"{key} has no Chinese in it"


def test_every_state_status_and_reason_is_named() -> None:
    assert {f"state.{s.value}" for s in OrderState} == set(STATE_KEYS)
    for catalogue in CATALOGUES.values():
        for key in STATE_KEYS:
            assert key in catalogue, key
        for status in (*LIVE, "pending", "cancelled"):
            assert f"shipment.{status}" in catalogue, status
        for reason in FAILURE_REASONS:
            assert f"courier.reason.{reason}" in catalogue, reason
    zh = translator("zh-CN")
    assert zh.state("out_for_delivery") == "派送中"
    assert zh.state("no_such_state") == "no_such_state"
    assert translator("en").state("qc_passed") == "QC passed"
    assert zh("courier.stop", seq=3) == "第 3 站"
    assert translator("fr").lang == "en"


def test_templates_only_use_known_keys() -> None:
    from importlib import resources

    used: set[str] = set()
    for name in TEMPLATES:
        text = resources.files("api").joinpath("templates", name).read_text("utf-8")
        # Literal keys only: t("status.title"), t("courier.stop", seq=...).
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.-]+)["']\s*[,)]""", text))
    assert used, "no translated text found in the templates"
    unknown = sorted(k for k in used if k not in EN)
    assert unknown == []


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


def test_explicit_choice() -> None:
    assert parse_lang("zh-cn") == "zh-CN"
    assert parse_lang("EN") == "en"
    assert parse_lang("zh") is None and parse_lang("") is None and parse_lang(None) is None


def test_flow_diagram_names_states_in_the_language() -> None:
    svg = order_flow_svg({"reserved": 2})
    zh = translate_flow_svg(svg, translator("zh-CN"))
    assert ">已预留库存</text>" in zh and ">reserved</text>" not in zh
    assert 'id="state-reserved"' in zh and 'id="count-reserved"' in zh
    en = translate_flow_svg(svg, translator("en"))
    assert ">out for delivery</text>" in en and 'id="state-out_for_delivery"' in en


def test_postal_centroids() -> None:
    table = centroids()
    assert len(table) > 200
    for code, point in table.points("DE"):
        assert code[:2] in ("10", "12", "13", "14"), code
        assert 52.33 < point.lat < 52.68 and 13.08 < point.lon < 13.77, (code, point)
    shanghai = table.points("CN")
    assert shanghai and all(code.startswith("200") for code, _ in shanghai)
    assert all(30.9 < p.lat < 31.5 and 121.1 < p.lon < 121.9 for _, p in shanghai)
    exact = table.locate("de", "10115")
    assert exact is not None and exact.source == "postal_code" and "Mitte" in exact.place
    near = table.locate("DE", "10116")
    assert near is not None and near.source == "postal_area"
    assert abs(near.point.lat - exact.point.lat) < 0.02
    assert table.locate("DE", "80331") is None  # Munich: not the own fleet's, not guessed
    assert table.locate("CN", "200 120") is not None
    assert MIN_PREFIX >= 3
    small = parse("country,postal_code,lat,lon,place\nDE,10115,52.53,13.38,Mitte\n")
    assert small.locate("DE", "10999") is None  # shares only "10": too far to guess
