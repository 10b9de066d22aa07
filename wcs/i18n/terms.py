"""The names of the system's values as people read them, marked for translation.

Machine values (``out_for_delivery``, ``ptl``) never change; what a page, an e-mail
or a report shows is the name here, translated in its context (``order state``,
``device kind``...), since one English word can need two translations. A value
without a name shows as itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from wcs.i18n.markers import NP_

Term = Literal[
    "state",
    "return_state",
    "shipment",
    "parcel",
    "stage",
    "device",
    "device_kind",
    "severity",
    "failure_reason",
]

# Contexts are written out in each marker: extraction reads literal strings only.


TERMS: Mapping[Term, Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "state": MappingProxyType(
            {
                "received": NP_("order state", "received"),
                "validated": NP_("order state", "validated"),
                "exception": NP_("order state", "exception"),
                "backordered": NP_("order state", "backordered"),
                "reserved": NP_("order state", "reserved"),
                "pick_planned": NP_("order state", "pick planned"),
                "picking": NP_("order state", "picking"),
                "picked": NP_("order state", "picked"),
                "qc_passed": NP_("order state", "QC passed"),
                "qc_failed": NP_("order state", "QC failed"),
                "packing": NP_("order state", "packing"),
                "packed": NP_("order state", "packed"),
                "allocated": NP_("order state", "allocated"),
                "shipped": NP_("order state", "shipped"),
                "in_transit": NP_("order state", "in transit"),
                "out_for_delivery": NP_("order state", "out for delivery"),
                "delivered": NP_("order state", "delivered"),
                "delivery_failed": NP_("order state", "delivery failed"),
                "delayed": NP_("order state", "delayed"),
                "damaged": NP_("order state", "damaged"),
                "closed": NP_("order state", "closed"),
                "cancelled": NP_("order state", "cancelled"),
            }
        ),
        "return_state": MappingProxyType(
            {
                "return_requested": NP_("return line state", "return requested"),
                "return_in_transit": NP_("return line state", "on its way back"),
                "return_received": NP_("return line state", "received at the warehouse"),
                "inspected": NP_("return line state", "inspected"),
                "refunded": NP_("return line state", "refunded"),
                "exchanged": NP_("return line state", "exchanged"),
                "rejected": NP_("return line state", "return refused"),
            }
        ),
        "shipment": MappingProxyType(
            {
                "pending": NP_("shipment status", "being booked"),
                "booked": NP_("shipment status", "at the dock, not handed over"),
                "shipped": NP_("shipment status", "handed over"),
                "in_transit": NP_("shipment status", "in transit"),
                "out_for_delivery": NP_("shipment status", "out for delivery"),
                "delivered": NP_("shipment status", "delivered"),
                "delivery_failed": NP_("shipment status", "attempt failed"),
                "delayed": NP_("shipment status", "delayed"),
                "damaged": NP_("shipment status", "damaged"),
                "cancelled": NP_("shipment status", "cancelled"),
            }
        ),
        # A parcel's status as its customer reads it (tracking page).
        "parcel": MappingProxyType(
            {
                "pending": NP_("parcel status", "Shipment being prepared"),
                "booked": NP_("parcel status", "Label created, not handed over yet"),
                "shipped": NP_("parcel status", "Handed to the carrier"),
                "in_transit": NP_("parcel status", "On its way"),
                "out_for_delivery": NP_("parcel status", "Out for delivery today"),
                "delivered": NP_("parcel status", "Delivered"),
                "delivery_failed": NP_("parcel status", "Delivery attempt failed"),
                "delayed": NP_("parcel status", "Delayed"),
                "damaged": NP_("parcel status", "Damaged in transit"),
                "cancelled": NP_("parcel status", "Shipment cancelled"),
            }
        ),
        # The customer's journey on the tracking page.
        "stage": MappingProxyType(
            {
                "ordered": NP_("customer stage", "Order received"),
                "preparing": NP_("customer stage", "Being prepared"),
                "packed": NP_("customer stage", "Packed"),
                "shipped": NP_("customer stage", "Handed to the carrier"),
                "in_transit": NP_("customer stage", "On its way"),
                "out_for_delivery": NP_("customer stage", "Out for delivery"),
                "delivered": NP_("customer stage", "Delivered"),
            }
        ),
        "device": MappingProxyType(
            {
                "online": NP_("device state", "online"),
                "offline": NP_("device state", "offline"),
                "fault": NP_("device state", "fault"),
            }
        ),
        "device_kind": MappingProxyType(
            {
                "scanner": NP_("device kind", "scanner"),
                "scale": NP_("device kind", "scale"),
                "printer": NP_("device kind", "label printer"),
                "ptl": NP_("device kind", "pick-to-light panel"),
                "diverter": NP_("device kind", "conveyor diverter"),
            }
        ),
        "severity": MappingProxyType(
            {
                "critical": NP_("alert severity", "critical"),
                "warning": NP_("alert severity", "warning"),
                "info": NP_("alert severity", "info"),
            }
        ),
        "failure_reason": MappingProxyType(
            {
                "not_home": NP_("failed delivery reason", "Nobody home"),
                "refused": NP_("failed delivery reason", "Refused by the recipient"),
                "address_not_found": NP_("failed delivery reason", "Address not found"),
                "no_access": NP_("failed delivery reason", "No access to the building"),
                "other": NP_("failed delivery reason", "Other (say what)"),
            }
        ),
    }
)
