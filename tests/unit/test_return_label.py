"""The return label: the configured returns address, the sender, the RMA as a Code 128
barcode, in the customer's language; WeasyPrint makes a PDF of it."""

from __future__ import annotations

from wcs.labels.return_pdf import code128_svg, return_label_html, return_label_pdf
from wcs.settings import ReturnsSettings

ADDRESS = ReturnsSettings(
    name="Retouren", line1="Lagerweg 5", postal_code="04109", city="Leipzig", country="DE"
).lines()


def label(lang: str) -> str:
    return return_label_html(
        lang,
        rma="rma_01TEST",
        order_ref="SHOP-7",
        sender=["Li Wei", "Invalidenstr. 117", "", "10115 Berlin", "DE"],
        returns_address=ADDRESS,
        items=[("Mug Blue", 2)],
    )


def test_the_label_carries_the_configured_address_and_the_barcode() -> None:
    html = label("en")
    for text in ("Retouren", "Lagerweg 5", "04109 Leipzig", "Li Wei", "RETURN · rma_01TEST"):
        assert text in html, text
    assert "2 × Mug Blue" in html and "<svg" in html
    assert code128_svg("rma_01TEST").count("<rect") > 30  # bars, not a placeholder
    zh = label("zh-CN")
    assert "退货 · rma_01TEST" in zh and "收件人" in zh and 'lang="zh-CN"' in zh


def test_the_label_is_a_pdf() -> None:
    pdf = return_label_pdf(label("en"))
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000
