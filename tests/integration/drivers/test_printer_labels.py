"""Labels through the printer driver to the simulated Zebra: the GS1 logistic label at
300 dpi read back by the printer's own ZPL reader, and a carrier's PDF label sent as
it is (a printer with PDF Direct prints it)."""

from __future__ import annotations

import base64

from device_sim.printer import PrinterSim
from tests.integration.drivers.support import Watch, make_driver, running
from wcs.domain.labels import logistic_label_zpl
from wcs.floor import PrinterDevice, TcpLink
from wcs.settings import MqttEndpoint

SSCC = "106141411234567897"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_labels_and_pdf_reach_the_printer(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with PrinterSim("prn-v", port=0) as sim:
        device = PrinterDevice(
            id="prn-v", zone="pack", link=TcpLink(port=sim.port), dpi=300, status_poll_s=0.2
        )
        async with running(make_driver(device, mqtt_endpoint, site)):
            await watch.status("prn-v", "online")
            zpl = logistic_label_zpl(
                sscc18=SSCC,
                ship_from=["ACME Fulfilment"],
                ship_to=["Li Wei", "200120 Shanghai"],
                order_id="o1",
                carrier="parcelco",
                weight_g=900.0,
                carton="M",
                dpi=device.dpi,
            )
            label = await watch.command("prn-v", "print", zpl=zpl, job_id=SSCC)
            assert (await watch.ack("prn-v", label))["ok"]
            pdf = await watch.command(
                "prn-v", "print", pdf=base64.b64encode(PDF).decode(), job_id="PC123"
            )
            assert (await watch.ack("prn-v", pdf))["ok"]
            cut = await watch.command(
                "prn-v", "print", pdf=base64.b64encode(PDF[:20]).decode(), job_id="PC124"
            )
            refused = await watch.ack("prn-v", cut)
            both = await watch.command("prn-v", "print", zpl=zpl, pdf="JVBERi0=")
            await watch.expect("dlq")
            await sim.wait_for(lambda: len(sim.labels) == 1 and len(sim.documents) == 1)
    assert sim.labels[0].sscc == SSCC
    assert "(00) 1 0614141 123456789 7" in sim.labels[0].texts
    assert sim.documents[0].data == PDF.rstrip(b"\n")  # to its %%EOF marker
    assert refused["ok"] is False and "cut short" in refused["error"]
    (dead,) = [d for d in watch.on("dlq") if both in d["raw"]]
    assert "give either zpl or pdf" in dead["error"]
