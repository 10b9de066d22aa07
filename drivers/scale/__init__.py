"""Scales on a serial port: METTLER TOLEDO MT-SICS, or Toledo continuous output."""
