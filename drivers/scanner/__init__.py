"""Barcode scanners on a serial port: one code per line, optional AIM identifier."""
