"""Zebra-style label printers: ZPL II over raw TCP (port 9100) or serial."""
