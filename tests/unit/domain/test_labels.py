"""The GS1 logistic label, measured from the ZPL it generates at 203 and 300 dpi.

The bar code's module width and bar height are read from the ZPL commands the printer
obeys (``^BY`` module width and default height, ``^BC`` height, ``^FO`` origin,
``^PW``/``^LL`` label size) and converted to millimetres at the printer's resolution;
the symbol's width comes from encoding its data as Code 128 here, independently of
the label code (start C, FNC1, digit pairs, check character, stop)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from device_sim.zpl import ZplInterpreter
from wcs.domain.labels import logistic_label_zpl, sscc_hri
from wcs.domain.packing import shipping_label_zpl
from wcs.floor import Floor, printer_dpi

SSCC = "106141411234567897"
MM = 25.4


def label(dpi: int, **changes: object) -> str:
    fields: dict[str, object] = {
        "sscc18": SSCC,
        "ship_from": ["ACME Fulfilment", "1 Dock Road", "20095 Hamburg", "DE"],
        "ship_to": ["Li Wei", "88 Century Avenue", "200120 Shanghai", "CN"],
        "order_id": "o01hx3k2m9",
        "carrier": "parcelco",
        "weight_g": 1234.0,
        "carton": "M",
        "dpi": dpi,
    }
    fields.update(changes)
    return logistic_label_zpl(**fields)  # type: ignore[arg-type]


def code128_modules(data: str) -> int:
    """Modules of a GS1-128 (ZPL mode D) for ``(AI)digits`` data, all numeric: start
    C, FNC1, one symbol per digit pair, check, stop (13 modules)."""
    digits = re.sub(r"[()]", "", data)
    assert digits.isdigit() and len(digits) % 2 == 0
    symbols = 1 + 1 + len(digits) // 2 + 1  # start C, FNC1, pairs, check
    return symbols * 11 + 13


@dataclass
class Measured:
    module_mm: float
    height_mm: float
    symbol_mm: float
    left_quiet_mm: float
    right_quiet_mm: float
    bottom_mm: float  # where the bar code ends
    label_mm: tuple[float, float]


def measure(zpl: str, dpi: int) -> Measured:
    dot = MM / dpi
    by = re.search(r"\^BY(\d+),[\d.]*,(\d+)", zpl)
    bc = re.search(r"\^FO(\d+),(\d+)\^BC(\w),(\d+),[YN],[YN],[YN],D\^FD([^\^]+)\^FS", zpl)
    width = re.search(r"\^PW(\d+)", zpl)
    length = re.search(r"\^LL(\d+)", zpl)
    assert by and bc and width and length, zpl
    module = int(by.group(1))
    height = int(bc.group(4)) or int(by.group(2))  # ^BC's height, else ^BY's
    x, y = int(bc.group(1)), int(bc.group(2))
    symbol = code128_modules(bc.group(5)) * module
    return Measured(
        module_mm=module * dot,
        height_mm=height * dot,
        symbol_mm=symbol * dot,
        left_quiet_mm=x * dot,
        right_quiet_mm=(int(width.group(1)) - x - symbol) * dot,
        bottom_mm=(y + height) * dot,
        label_mm=(int(width.group(1)) * dot, int(length.group(1)) * dot),
    )


@pytest.mark.parametrize("dpi", [203, 300])
def test_bar_code_within_the_gs1_logistic_label_minimums(dpi: int) -> None:
    m = measure(label(dpi), dpi)
    assert 0.495 <= m.module_mm <= 0.940, m
    assert m.height_mm >= 31.75, m
    assert m.left_quiet_mm >= 10 * m.module_mm and m.right_quiet_mm >= 10 * m.module_mm, m
    assert abs(m.label_mm[0] - 101.6) < 0.2 and abs(m.label_mm[1] - 152.4) < 0.2
    assert m.bottom_mm < m.label_mm[1] - 8  # room for the readable SSCC below it


def test_measured_values_at_each_resolution() -> None:
    """The figures themselves: whole dots, the nearest above the GS1 minimums."""
    at_203, at_300 = measure(label(203), 203), measure(label(300), 300)
    assert round(at_203.module_mm, 3) == 0.500 and round(at_300.module_mm, 3) == 0.508
    assert round(at_203.height_mm, 1) == 32.0 and round(at_300.height_mm, 1) == 32.0
    assert round(at_203.symbol_mm, 1) == 78.1 and round(at_300.symbol_mm, 1) == 79.2


@pytest.mark.parametrize("dpi", [203, 300])
def test_the_label_reads_back(dpi: int) -> None:
    (printed,) = ZplInterpreter().feed(label(dpi).encode())
    assert printed.sscc == SSCC  # decoded by the simulated printer's own ZPL reader
    texts = printed.texts
    assert "(00) 1 0614141 123456789 7" in texts  # readable, grouped as the guideline does
    assert texts.count("(00) 1 0614141 123456789 7") == 2  # in the SSCC block and under it
    for block in ("SHIP FROM", "ACME Fulfilment", "SHIP TO", "Li Wei", "200120 Shanghai"):
        assert block in texts
    assert "CARRIER parcelco" in texts


def test_hri_groups_by_company_prefix_and_data_cannot_inject_zpl() -> None:
    assert sscc_hri(SSCC) == "(00) 1 0614141 123456789 7"
    assert sscc_hri("012345678901234560", 9) == "(00) 0 123456789 0123456 0"
    with pytest.raises(ValueError, match="18 digits"):
        sscc_hri("123")
    zpl = label(203, ship_to=["^XZ~JR evil", "x"], carrier="~HS")
    assert "^XZ~JR" not in zpl and "~HS" not in zpl
    with pytest.raises(ValueError, match="150 dpi"):
        label(150)


def test_the_pack_station_label_is_the_logistic_label() -> None:
    zpl = shipping_label_zpl(
        sscc18=SSCC,
        order_id="o1",
        ship_to=["A", "B"],
        carrier="pending",
        weight_g=500.0,
        carton="S",
        dpi=300,
        ship_from=["Us"],
    )
    assert measure(zpl, 300).module_mm >= 0.495


def test_printer_resolution_from_the_floor() -> None:
    floor = Floor.model_validate(
        {
            "devices": [
                {
                    "id": "p3",
                    "kind": "printer",
                    "zone": "pack",
                    "link": {"type": "tcp"},
                    "dpi": 300,
                },
                {
                    "id": "p2",
                    "kind": "printer",
                    "zone": "pack",
                    "link": {"type": "tcp", "port": 9101},
                },
            ]
        }
    )
    assert printer_dpi(floor, "p3") == 300
    assert printer_dpi(floor, "p2") == 203
    assert printer_dpi(floor, "nope") == 203
