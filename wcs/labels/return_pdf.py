"""The return label as a PDF (WeasyPrint): the warehouse's returns address
(``WCS_RETURNS__*``), the sender, the return's RMA number as a Code 128 barcode (what
the returns desk scans), in the customer's language."""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

import barcode
from barcode.writer import SVGWriter
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from wcs.i18n.jinja import localized


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("wcs.labels", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",)),
    )


environment = localized(_environment)


@functools.lru_cache(maxsize=256)
def code128_svg(value: str) -> str:
    """The value as a Code 128 barcode, an inline SVG with the text under it."""
    out = io.BytesIO()
    barcode.get("code128", value, writer=SVGWriter()).write(
        out,
        options={"module_height": 18.0, "font_size": 9, "text_distance": 4.0, "quiet_zone": 4.0},
    )
    svg = out.getvalue().decode("utf-8")
    return svg[svg.index("<svg") :]


def return_label_html(
    lang: str,
    *,
    rma: str,
    order_ref: str,
    sender: Sequence[str],
    returns_address: Sequence[str],
    items: Sequence[tuple[str, int]],
) -> str:
    return (
        environment(lang)
        .get_template("return_label.html.j2")
        .render(
            rma=rma,
            order_ref=order_ref,
            sender=[line for line in sender if line],
            returns_address=list(returns_address),
            barcode=code128_svg(rma),
            count=sum(q for _, q in items),
            items=", ".join(f"{q} × {name}" for name, q in items),
        )
    )


def return_label_pdf(html: str) -> bytes:
    from weasyprint import HTML

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf
