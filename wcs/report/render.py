"""The review as HTML (Jinja2, shipped in the package) and PDF (WeasyPrint).

The HTML is complete on its own (inline CSS, inline SVG charts); the PDF is that same
HTML laid out on A4 pages, so the two never disagree. Texts come from the gettext
catalogues (``wcs.i18n``), in every offered language; Chinese PDF text needs a CJK
font installed on the machine (Noto Sans CJK or WenQuanYi), otherwise WeasyPrint
draws placeholder boxes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from wcs.domain.kpis import AdjustmentValue, Ratio
from wcs.i18n.catalogues import offered
from wcs.i18n.markers import N_
from wcs.i18n.translator import translator
from wcs.report.charts import Series, bar_chart, line_chart
from wcs.report.data import ReviewData
from wcs.timeutil import utcnow

# Texts of the review, in English; each language's comes from its catalogue.
LABELS: Mapping[str, str] = {
    "title": N_("Periodic review"),
    "period": N_("Period"),
    "generated": N_("Generated"),
    "summary": N_("KPIs for the period"),
    "kpi": N_("KPI"),
    "value": N_("Value"),
    "measured": N_("Measured"),
    "daily": N_("Daily KPIs"),
    "day": N_("Day"),
    "received": N_("Received"),
    "packed": N_("Packed"),
    "processing_p50": N_("Processing p50 (min)"),
    "processing_p95": N_("Processing p95 (min)"),
    "pick_accuracy": N_("Pick accuracy"),
    "pack_pass_rate": N_("Pack pass rate"),
    "qc_pass_rate": N_("QC pass rate"),
    "on_time_shipping": N_("On-time shipping"),
    "on_time_delivery": N_("On-time delivery"),
    "satisfaction": N_("Customer satisfaction (1-5)"),
    "returns_rate": N_("Returns rate"),
    "inventory_accuracy": N_("Inventory accuracy"),
    "adjusted_units": N_("Stock adjustments (units, net)"),
    "adjusted_value": N_("Stock adjustments (value, net)"),
    "adjusted_gross": N_("Stock adjustments (value, gross)"),
    "chart_rates": N_("Daily rates"),
    "chart_volume": N_("Orders per day"),
    "chart_processing": N_("Processing time per day (minutes)"),
    "chart_alerts": N_("Alerts by code"),
    "chart_feedback": N_("Feedback by stage"),
    "stages": N_("Worst stages"),
    "stage": N_("Stage"),
    "visits": N_("Stays"),
    "mean": N_("Mean stay (h)"),
    "p95": N_("p95 stay (h)"),
    "total": N_("Total (h)"),
    "exceptions": N_("Exceptions"),
    "complaints": N_("Complaints"),
    "suggestions": N_("Suggestions"),
    "alerts": N_("Alerts by code"),
    "code": N_("Code"),
    "severity": N_("Severity"),
    "count": N_("Count"),
    "feedback": N_("Feedback"),
    "kind": N_("Kind"),
    "status": N_("Status"),
    "open_complaints": N_("Open complaints"),
    "none": N_("none"),
    "no_data": N_("No data in this period."),
}

RATES = (
    "pick_accuracy",
    "pack_pass_rate",
    "qc_pass_rate",
    "on_time_shipping",
    "on_time_delivery",
    "inventory_accuracy",
)


@dataclass(frozen=True, slots=True)
class Rendered:
    html: str
    pdf: bytes | None = None


@functools.cache
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("wcs.report", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _hours(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 3600:.1f}"


def _money(values: tuple[AdjustmentValue, ...], *, gross: bool) -> str:
    """Per currency, in major units of two decimals: ``-12.50 CNY``."""
    if not values:
        return "–"
    if gross:
        return ", ".join(f"{v.gross_minor / 100:.2f} {v.currency}" for v in values)
    return ", ".join(f"{v.net_minor / 100:+.2f} {v.currency}" for v in values)


def _ratio_row(label: str, ratio: Ratio | None) -> dict[str, str]:
    if ratio is None:
        return {"label": label, "value": "–", "measured": "–"}
    return {"label": label, "value": pct(ratio.rate), "measured": f"{ratio.good}/{ratio.total}"}


def _context(data: ReviewData, lang: str) -> dict[str, Any]:
    words = translator(lang)
    t = {key: words.gettext(text) for key, text in LABELS.items()}
    period = data.period
    sat = period.satisfaction
    kpi_rows = [_ratio_row(t[name], getattr(period, name)) for name in RATES]
    kpi_rows.append(_ratio_row(t["returns_rate"], period.returns_rate))
    kpi_rows.append(
        {
            "label": t["satisfaction"],
            "value": "–" if sat is None or sat.average is None else f"{sat.average:.2f}",
            "measured": "0" if sat is None else str(sat.count),
        }
    )
    adjusted = period.adjustments
    measured = str(adjusted.count)
    kpi_rows += [
        {
            "label": t["adjusted_units"],
            "value": f"{adjusted.units_net:+d}" if adjusted.units_net else "0",
            "measured": measured,
        },
        {
            "label": t["adjusted_value"],
            "value": _money(adjusted.values, gross=False),
            "measured": measured,
        },
        {
            "label": t["adjusted_gross"],
            "value": _money(adjusted.values, gross=True),
            "measured": measured,
        },
    ]
    pt = period.processing_time
    for key, value in (("processing_p50", pt.p50_s), ("processing_p95", pt.p95_s)):
        minutes = _minutes(value)
        kpi_rows.append(
            {
                "label": t[key],
                "value": "–" if minutes is None else f"{minutes:.1f}",
                "measured": str(pt.count),
            }
        )
    labels = [d.day.strftime("%m-%d") for d in data.days]
    daily_rows = [
        {
            "day": d.day.isoformat(),
            "received": d.received,
            "packed": d.packed,
            "rates": [pct(getattr(d.report, name).rate) for name in RATES],
            "p50": "–"
            if d.report.processing_time.p50_s is None
            else f"{d.report.processing_time.p50_s / 60:.1f}",
        }
        for d in data.days
    ]
    charts = {
        "rates": line_chart(
            t["chart_rates"],
            labels,
            [Series(t[name], [getattr(d.report, name).rate for d in data.days]) for name in RATES],
            y_max=1.0,
            y_format=lambda v: f"{v * 100:.0f}%",
        ),
        "volume": bar_chart(
            t["chart_volume"],
            labels,
            [
                Series(t["received"], [float(d.received) for d in data.days]),
                Series(t["packed"], [float(d.packed) for d in data.days]),
            ],
        ),
        "processing": line_chart(
            t["chart_processing"],
            labels,
            [
                Series("p50", [_minutes(d.report.processing_time.p50_s) for d in data.days]),
                Series("p95", [_minutes(d.report.processing_time.p95_s) for d in data.days]),
            ],
        ),
        "alerts": bar_chart(
            t["chart_alerts"],
            [code for code, _, _ in data.alerts_by_code] or [t["none"]],
            [Series(t["count"], [float(n) for _, _, n in data.alerts_by_code] or [0.0])],
        ),
        "feedback": bar_chart(
            t["chart_feedback"],
            [s.stage for s in data.stages],
            [
                Series(t["complaints"], [float(s.complaints) for s in data.stages]),
                Series(t["suggestions"], [float(s.suggestions) for s in data.stages]),
            ],
        ),
    }
    stage_rows = [
        {
            "stage": s.stage,
            "visits": s.visits,
            "mean": _hours(s.mean_s),
            "p95": _hours(s.p95_s),
            "total": _hours(s.total_s if s.visits else None),
            "exceptions": s.exceptions,
            "complaints": s.complaints,
            "suggestions": s.suggestions,
        }
        for s in data.stages
    ]
    feedback_rows = [
        {"stage": stage, "kind": kind, "status": status, "count": n}
        for (stage, kind, status), n in sorted(data.feedback.items())
    ]
    return {
        "t": t,
        "lang": lang,
        "first": data.first.isoformat(),
        "last": data.last.isoformat(),
        "generated": utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "kpi_rows": kpi_rows,
        "rate_names": [t[name] for name in RATES],
        "daily_rows": daily_rows,
        "charts": charts,
        "stage_rows": stage_rows,
        "alert_rows": [
            {"code": c, "severity": words.term("severity", s), "count": n}
            for c, s, n in data.alerts_by_code
        ],
        "feedback_rows": feedback_rows,
        "open_complaints": data.open_complaints,
    }


def render_html(data: ReviewData, lang: str = "en") -> str:
    """The review in ``lang`` (an offered tag: ``wcs.i18n.catalogues.offered()``)."""
    if lang not in offered():
        raise ValueError(f"no report texts for {lang!r}; have {', '.join(offered())}")
    return _env().get_template("review.html.j2").render(**_context(data, lang))


def render_pdf(html: str) -> bytes:
    from weasyprint import HTML

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


def write_review(data: ReviewData, out_dir: Path, lang: str = "en") -> tuple[Path, Path]:
    """``review-<from>_<to>.<lang>.html`` and ``.pdf`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"review-{data.first.isoformat()}_{data.last.isoformat()}.{lang}"
    html = render_html(data, lang)
    html_path = out_dir / f"{stem}.html"
    pdf_path = out_dir / f"{stem}.pdf"
    html_path.write_text(html, encoding="utf-8")
    pdf_path.write_bytes(render_pdf(html))
    return html_path, pdf_path
