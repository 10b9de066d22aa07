"""The periodic review from real rows on SQLite and PostgreSQL, rendered to HTML and PDF.

PDF check: there is no pdftotext here, and WeasyPrint writes no PNG; the test lays the
same HTML out with WeasyPrint and walks the page boxes (tables with their text, the
SVG charts as replaced boxes), and checks the PDF bytes have that many pages.
"""

from __future__ import annotations

import contextlib
import re
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.persistence.tables import (
    activity,
    alerts,
    count_tasks,
    feedback,
    order_events,
    orders,
    stock_adjustments,
)
from wcs.report.data import review_data
from wcs.report.render import render_html, write_review
from wcs.services.catalog import SkuData, upsert_sku

DAY1 = datetime(2026, 3, 2, tzinfo=UTC)
FIRST, LAST = date(2026, 3, 2), date(2026, 3, 4)
HAPPY = (
    "received",
    "validated",
    "reserved",
    "pick_planned",
    "picking",
    "picked",
    "qc_passed",
    "packing",
    "packed",
)


async def _order(engine: AsyncEngine, order_id: str, steps: list[tuple[str, datetime]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(orders).values(
                id=order_id,
                external_id=order_id,
                state=steps[-1][0],
                seq=len(steps),
                priority=1,
                service="standard",
                customer_name="Test",
                line1="x",
                city="Munich",
                postal_code="80331",
                country="DE",
                sla_deadline=steps[0][1] + timedelta(hours=48),
                created_at=steps[0][1],
                updated_at=steps[-1][1],
            )
        )
        await conn.execute(
            insert(order_events),
            [
                {
                    "order_id": order_id,
                    "seq": n,
                    "from_state": steps[n - 2][0] if n > 1 else None,
                    "to_state": state,
                    "actor": "test",
                    "reason": None,
                    "at": at,
                }
                for n, (state, at) in enumerate(steps, start=1)
            ],
        )


def _walk(
    start: datetime, states: tuple[str, ...], minutes: list[int]
) -> list[tuple[str, datetime]]:
    return [(s, start + timedelta(minutes=m)) for s, m in zip(states, minutes, strict=True)]


async def _seed(engine: AsyncEngine) -> None:
    t1 = DAY1 + timedelta(hours=8)
    t2 = DAY1 + timedelta(days=1, hours=9)
    # o1 packed 90 min after intake, o2 60 min; o3 stopped in exception.
    await _order(engine, "o1", _walk(t1, HAPPY, [0, 0, 0, 10, 20, 60, 70, 80, 90]))
    await _order(engine, "o2", _walk(t2, HAPPY, [0, 0, 0, 5, 10, 40, 45, 50, 60]))
    await _order(engine, "o3", [("received", t2), ("exception", t2)])
    facts: list[dict[str, Any]] = []
    for day, good, bad in ((0, 9, 1), (1, 10, 0)):
        at = DAY1 + timedelta(days=day, hours=10)
        facts += [{"at": at, "kind": "pick", "ok": True}] * good
        facts += [{"at": at, "kind": "mispick", "ok": False}] * bad
    facts += [
        {"at": t1, "kind": "weight_ok", "ok": True},
        {"at": t2, "kind": "weight_ok", "ok": True},
    ]
    at_alert = DAY1 + timedelta(hours=12)
    async with engine.begin() as conn:
        await conn.execute(insert(activity), facts)
        await conn.execute(
            insert(alerts),
            [
                {"code": code, "severity": sev, "message": "m", "subject": s, "created_at": at}
                for code, sev, s, at in (
                    ("order_stuck", "warning", "o1", at_alert),
                    ("order_stuck", "warning", "o2", at_alert),
                    ("order_stuck", "warning", "o3", at_alert + timedelta(days=1)),
                    ("device_offline", "critical", "scale-1", at_alert),
                    ("device_offline", "critical", "scale-1", DAY1 - timedelta(days=3)),
                )
            ],
        )
        await conn.execute(
            insert(feedback),
            [
                {
                    "kind": kind,
                    "stage": stage,
                    "text": text,
                    "order_id": None,
                    "author": "someone",
                    "author_role": "customer",
                    "status": status,
                    "history": [],
                    "created_at": at_alert,
                    "updated_at": at_alert,
                }
                for kind, stage, status, text in (
                    ("complaint", "packing", "open", "Box far too big for one shirt"),
                    ("complaint", "packing", "done", "Label half printed"),
                    ("suggestion", "picking", "open", "Light the next slot earlier"),
                )
            ],
        )
    await _seed_counts(engine)


async def _seed_counts(engine: AsyncEngine) -> None:
    """Day 1: three counts matched, one found 4 units fewer; day 2: one found 1 more."""
    await upsert_sku(
        engine, SkuData("SKU-R", "mug", 340.0, 110, 90, 95, None, price_minor=250, currency="CNY")
    )
    rows: list[dict[str, Any]] = []
    adjusted: list[dict[str, Any]] = []
    for day, results, deltas in ((0, ["matched"] * 3 + ["adjusted"], [-4]), (1, ["adjusted"], [1])):
        at = DAY1 + timedelta(days=day, hours=11)
        rows += [
            {
                "sku": "SKU-R",
                "location": "A-01-01-1",
                "station": "PK1",
                "reason": "abc",
                "state": "done",
                "created_by": "rule",
                "created_at": at,
                "updated_at": at,
                "result": result,
                "closed_at": at,
            }
            for result in results
        ]
        adjusted += [
            {
                "sku": "SKU-R",
                "location": "A-01-01-1",
                "book": 10,
                "counted": 10 + delta,
                "delta": delta,
                "value_minor": delta * 250,
                "reason": "abc",
                "counted_by": "ann",
                "accepted_by": "ann",
                "replanned": [],
                "at": at,
            }
            for delta in deltas
        ]
    async with engine.begin() as conn:
        await conn.execute(insert(count_tasks), rows)
        await conn.execute(insert(stock_adjustments), adjusted)


def _row(html: str, table_id: str, first_cell: str) -> list[str]:
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in {table_id}")


async def test_review_numbers_tables_and_charts(engine: AsyncEngine, tmp_path: Path) -> None:
    await _seed(engine)
    data = await review_data(engine, FIRST, LAST)
    html = render_html(data, "en")

    assert _row(html, "kpi-summary", "Pick accuracy") == ["Pick accuracy", "95.0 %", "19/20"]
    assert _row(html, "kpi-summary", "Pack pass rate")[1:] == ["100.0 %", "2/2"]
    assert _row(html, "kpi-summary", "Processing p50 (min)")[1:] == ["75.0", "2"]
    assert _row(html, "kpi-summary", "Inventory accuracy")[1:] == ["60.0 %", "3/5"]
    assert _row(html, "kpi-summary", "Stock adjustments (units, net)")[1:] == ["-3", "2"]
    assert _row(html, "kpi-summary", "Stock adjustments (value, net)")[1:] == ["-7.50 CNY", "2"]
    assert _row(html, "kpi-summary", "Stock adjustments (value, gross)")[1] == "12.50 CNY"
    day1 = _row(html, "kpi-daily", "2026-03-02")
    assert day1[:4] == ["2026-03-02", "1", "1", "90.0 %"]
    assert _row(html, "kpi-daily", "2026-03-03")[:4] == ["2026-03-03", "2", "1", "100.0 %"]
    # inventory accuracy is the last rate of the daily table
    assert day1[8] == "75.0 %" and _row(html, "kpi-daily", "2026-03-03")[8] == "0.0 %"
    assert _row(html, "kpi-daily", "2026-03-04")[:4] == ["2026-03-04", "0", "0", "–"]

    assert _row(html, "alert-table", "order_stuck") == ["order_stuck", "warning", "3"]
    assert _row(html, "alert-table", "device_offline") == ["device_offline", "critical", "1"]
    packing = _row(html, "stage-table", "packing")
    assert packing[6:] == ["2", "0"]  # complaints, suggestions
    intake = _row(html, "stage-table", "intake")
    assert intake[5] == "1"  # the exception
    picking = _row(html, "stage-table", "picking")
    # o1: 10 + 40 min in pick_planned/picking, o2: 5 + 30 min; four stays.
    assert picking[1] == "4" and picking[4] == f"{85 / 60:.1f}"
    assert _row(html, "feedback-table", "packing")[1:] == ["complaint", "done", "1"]

    svgs = re.findall(r"<svg .*?</svg>", html, re.S)
    assert len(svgs) == 5 and all('class="chart' in s for s in svgs)
    rates = svgs[0]
    pick = rates.split('data-series="Pick accuracy"', 1)[1].split("</g>", 1)[0]
    assert re.findall(r'data-value="([^"]+)"', pick) == ["0.9", "1"]  # day 3: nothing measured
    volume = svgs[1]
    received = volume.split('data-series="Received"', 1)[1].split("</g>", 1)[0]
    assert re.findall(r'data-value="([^"]+)"', received) == ["1", "2", "0"]

    html_path, pdf_path = write_review(data, tmp_path / "out", "en")
    assert html_path.read_text(encoding="utf-8").count("<svg") == 5
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    layout = _layout(html_path.read_text(encoding="utf-8"))
    assert layout["svg"] == 5
    assert {"KPIs for the period", "Daily KPIs", "Worst stages", "Pick accuracy", "95.0 %"} <= set(
        layout["text"]
    )
    assert layout["tables"] >= 5
    objects = _pdf_objects(pdf)
    assert _pdf_page_count(objects) == layout["pages"] >= 2
    # The section headings are the PDF's bookmarks, readable in its own objects.
    outline = re.findall(rb"/Title \((.*?)\)/Dest", objects)
    assert outline[1:4] == [b"KPIs for the period", b"Daily KPIs", b"Worst stages"]


def _pdf_objects(pdf: bytes) -> bytes:
    """The PDF with its compressed streams (object streams included) inflated."""
    chunks = [pdf]
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        with contextlib.suppress(zlib.error):
            chunks.append(zlib.decompress(raw))
    return b"\n".join(chunks)


def _pdf_page_count(objects: bytes) -> int:
    (count,) = re.findall(rb"/Type\s*/Pages\b[^>]*?/Count (\d+)", objects)
    return int(count)


def _layout(html: str) -> dict[str, Any]:
    """What WeasyPrint puts on the pages: texts, tables and SVG images."""
    from weasyprint import HTML
    from weasyprint.formatting_structure import boxes

    document = HTML(string=html).render()
    texts: list[str] = []
    svg = tables = 0
    for page in document.pages:
        for box in page._page_box.descendants():
            if isinstance(box, boxes.TextBox):
                texts.append(box.text.strip())
            elif isinstance(box, boxes.TableBox):
                tables += 1
            elif (
                isinstance(box, boxes.ReplacedBox) and type(box.replacement).__name__ == "SVGImage"
            ):
                svg += 1
    # Lines break inside cells: join each line's words as they were laid out.
    return {"text": texts, "svg": svg, "tables": tables, "pages": len(document.pages)}


async def test_review_in_chinese_and_an_empty_period(engine: AsyncEngine) -> None:
    await _seed(engine)
    data = await review_data(engine, date(2026, 1, 5), date(2026, 1, 6))
    html = render_html(data, "zh-CN")
    assert 'lang="zh-CN"' in html and "拣货准确率" in html and "表现最差的环节" in html
    assert _row(html, "kpi-summary", "拣货准确率")[1:] == ["–", "0/0"]
    assert _row(html, "kpi-summary", "库存准确率")[1:] == ["–", "0/0"]
    assert _row(html, "kpi-summary", "库存调整（金额，净额）")[1:] == ["–", "0"]
    assert "本区间无数据。" in html
    assert html.count("<svg") == 5


async def test_the_period_never_counts_time_after_now(engine: AsyncEngine) -> None:
    """Today's review, asked at 10:00: an order received at 09:40 and still waiting has
    waited 20 minutes, not until midnight; tomorrow counts nothing."""
    now = DAY1 + timedelta(hours=10)
    await _order(engine, "o-wait", [("received", now - timedelta(minutes=20))])
    data = await review_data(engine, FIRST, date(2026, 3, 3), now=now)
    assert data.end == now
    intake = next(s for s in data.stages if s.stage == "intake")
    assert intake.visits == 1 and intake.mean_s == 20 * 60
    assert [d.received for d in data.days] == [1, 0]
    assert data.days[1].report.pick_accuracy.total == 0


def test_chinese_report_without_a_cjk_font_is_refused_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.app import app
    from wcs.persistence.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path}/review.db"
    upgrade(url)
    # fontconfig with no font directory at all: the machine "has no CJK font".
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><fontconfig></fontconfig>', encoding="utf-8")
    env = {"WCS_DATABASE_URL": url, "FONTCONFIG_FILE": str(conf)}
    args = ["report", "--from", "2026-03-02", "--to", "2026-03-03", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, [*args, "--lang", "zh-CN"], env=env)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Chinese font" in lines[0] and "fonts-noto-cjk" in lines[0]
    assert not (tmp_path / "r").exists()


def test_wcs_report_command_writes_html_and_pdf(tmp_path: Path) -> None:
    from wcs.report.fonts import missing_font

    if missing_font("zh-CN"):
        pytest.fail(f"this test renders Chinese: {missing_font('zh-CN')}")
    from typer.testing import CliRunner

    from cli.app import app
    from wcs.persistence.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path}/review.db"
    upgrade(url)
    runner = CliRunner()
    env = {"WCS_DATABASE_URL": url}
    args = ["report", "--from", "2026-03-02", "--to", "2026-03-03", "--out", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, "--lang", "zh-CN"], env=env)
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert written == [
        "review-2026-03-02_2026-03-03.zh-CN.html",
        "review-2026-03-02_2026-03-03.zh-CN.pdf",
    ]
    assert (tmp_path / "r" / written[1]).read_bytes().startswith(b"%PDF-")
    bad = runner.invoke(app, ["report", "--from", "2026-03-05", "--to", "2026-03-01"], env=env)
    assert bad.exit_code == 1 and "before" in bad.output
    assert runner.invoke(app, [*args, "--lang", "fr"], env=env).exit_code == 2
