"""Simulated floor devices that speak the real wire protocols over real transports.

Each simulator plays the *device* side of its protocol, written independently of the
drivers (which play the host side), so that a codec mistake shows up as a failed
exchange instead of hiding in both:

============================  ==========================================================
:mod:`device_sim.scanner`     barcode scanner, AIM prefix + data + CR/CRLF, pty or TCP
:mod:`device_sim.scale`       MT-SICS scale (or Toledo continuous output), pty or TCP
:mod:`device_sim.printer`     Zebra ZPL printer, raw TCP one client at a time, ``~HS``
:mod:`device_sim.ptl`         pick-to-light panel, Modbus TCP, scripted/automatic picker
:mod:`device_sim.diverter`    conveyor diverter PLC, Modbus TCP, plus a conveyor model
:mod:`device_sim.floor`       :class:`SimFloor`: every device of a floor file
:mod:`device_sim.runner`      ``wcs sim --floor FILE``
:mod:`device_sim.gs1`         EAN-13, SSCC-18, GS1 element strings (check digits: wcs)
============================  ==========================================================

Every simulator is an async context manager and carries fault injection suited to its
link and device (see each module).
"""

from device_sim.diverter import Conveyor, Delivery, Divert, DiverterOptions, DiverterSim
from device_sim.floor import SimFloor, SimOptions
from device_sim.printer import PrinterOptions, PrinterSim
from device_sim.ptl import PickerBehaviour, Press, PtlOptions, PtlSim, SlotView
from device_sim.scale import ScaleOptions, ScaleSim
from device_sim.scanner import ScannerOptions, ScannerSim
from device_sim.serial_link import PtyEndpoint, TcpSerialEndpoint

__all__ = [
    "Conveyor",
    "Delivery",
    "Divert",
    "DiverterOptions",
    "DiverterSim",
    "PickerBehaviour",
    "Press",
    "PrinterOptions",
    "PrinterSim",
    "PtlOptions",
    "PtlSim",
    "PtyEndpoint",
    "ScaleOptions",
    "ScaleSim",
    "ScannerOptions",
    "ScannerSim",
    "SimFloor",
    "SimOptions",
    "SlotView",
    "TcpSerialEndpoint",
]
