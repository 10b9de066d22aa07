"""A simulated scanner with and without AIM identifiers, through the driver: the
codes mean the same to the kernel's GS1 module either way."""

from __future__ import annotations

import pytest

from device_sim import gs1 as sim_gs1
from device_sim.scanner import ScannerOptions, ScannerSim
from tests.integration.drivers.support import Watch, make_driver, running
from wcs.domain import gs1
from wcs.floor import ScannerDevice, SerialLink
from wcs.settings import MqttEndpoint

SSCC = "106141411234567897"
GTIN = "09506000134352"
READS = [
    (sim_gs1.ean13("400638133393"), "]E0"),
    (sim_gs1.element_string(("01", GTIN), ("17", "271231"), ("10", "LOT7"), ("21", "S1")), "]d2"),
    (sim_gs1.element_string(("420", "12345"), ("00", SSCC)), "]C1"),
    (sim_gs1.sscc_element(SSCC), "]C1"),
    ("T000123", "]C0"),
]


@pytest.mark.parametrize("aim_ids", [True, False], ids=["with-aim", "without-aim"])
async def test_codes_mean_the_same_with_or_without_aim_ids(
    aim_ids: bool, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    options = ScannerOptions(terminator="CR", aim_ids=aim_ids)
    async with ScannerSim.over_pty("scan-sim", options=options) as sim:
        device = ScannerDevice(id="scan-v", zone="pick", link=SerialLink(url=sim.url))
        async with running(make_driver(device, mqtt_endpoint, site)):
            await watch.status("scan-v", "online")
            for code, symbology in READS:
                await sim.scan(code, symbology)
            events = await watch.expect("dev/scan-v/evt/scan", len(READS))
    assert [e["symbology"] for e in events] == (
        [s for _, s in READS] if aim_ids else [None] * len(READS)
    )
    meanings = [gs1.read(e["code"], e["symbology"]) for e in events]
    assert isinstance(meanings[0], gs1.Gs1Scan) and meanings[0].gtin == "04006381333931"
    assert isinstance(meanings[1], gs1.Gs1Scan)
    assert (meanings[1].gtin, meanings[1].lot, meanings[1].serial) == (GTIN, "LOT7", "S1")
    assert [m.sscc for m in meanings[2:4] if isinstance(m, gs1.Gs1Scan)] == [SSCC, SSCC]
    assert meanings[4] is None  # a tote label is no GS1 data either way
    assert watch.on("dlq") == []
