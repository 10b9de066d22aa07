"""Simulated barcode scanner on a serial line (pty or TCP serial device server).

Models a fixed or handheld scanner configured the way warehouses run them: one code per
transmission, the AIM symbology identifier in front (``]C1`` GS1-128, ``]E0`` EAN-13,
``]Q3`` GS1 QR ...), the decoded data with FNC1 separators sent as GS (0x1D), then a CR
or CR LF terminator. Bytes the host sends (configuration commands) are kept in
``host_bytes`` and otherwise ignored.

Without AIM identifiers (``ScannerOptions(aim_ids=False)``, as most handhelds ship)
the data goes out alone.

Faults: link down/up (:meth:`disconnect`, :meth:`reconnect`, :meth:`outage`), line noise
(:meth:`send_garbage`), late transmissions (``reply_delay_s``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from device_sim.serial_link import PtyEndpoint, SerialEndpoint, SerialSim, TcpSerialEndpoint

Terminator = Literal["CR", "CRLF"]
TERMINATORS: dict[str, bytes] = {"CR": b"\r", "CRLF": b"\r\n"}
DEFAULT_SYMBOLOGY = "]C1"


@dataclass(frozen=True)
class ScannerOptions:
    terminator: Terminator = "CRLF"
    reply_delay_s: float = 0.0
    # Most handheld scanners ship with AIM identifiers off: they send the data alone
    # (a GS1-128's implied leading FNC1 included: nothing marks it as GS1 data).
    aim_ids: bool = True


@dataclass(frozen=True)
class Scan:
    code: str
    symbology: str | None
    frame: bytes


def scan_frame(
    code: str, symbology: str | None = DEFAULT_SYMBOLOGY, terminator: str = "CRLF"
) -> bytes:
    """The bytes a scanner sends for one read."""
    if terminator not in TERMINATORS:
        raise ValueError(f"terminator must be one of {sorted(TERMINATORS)}, got {terminator!r}")
    if symbology is not None and (len(symbology) != 3 or symbology[0] != "]"):
        raise ValueError(f"AIM symbology identifier looks like ']C1', got {symbology!r}")
    if "\r" in code or "\n" in code:
        raise ValueError("a scanned code cannot contain CR or LF: they end the transmission")
    return (symbology or "").encode("ascii") + code.encode("utf-8") + TERMINATORS[terminator]


class ScannerSim(SerialSim):
    kind = "scanner"

    def __init__(
        self, device_id: str, endpoint: SerialEndpoint, options: ScannerOptions | None = None
    ):
        self.options = options or ScannerOptions()
        super().__init__(device_id, endpoint, reply_delay_s=self.options.reply_delay_s)
        self.scans: list[Scan] = []
        self.host_bytes = bytearray()

    @classmethod
    def over_tcp(
        cls,
        device_id: str,
        host: str = "127.0.0.1",
        port: int = 0,
        options: ScannerOptions | None = None,
    ) -> ScannerSim:
        return cls(device_id, TcpSerialEndpoint(device_id, host, port), options)

    @classmethod
    def over_pty(
        cls, device_id: str, link_path: str | None = None, options: ScannerOptions | None = None
    ) -> ScannerSim:
        return cls(device_id, PtyEndpoint(device_id, link_path), options)

    def _received(self, data: bytes) -> None:
        # Bounded: a host that streams configuration junk must not grow memory forever.
        self.host_bytes.extend(data)
        del self.host_bytes[:-4096]

    async def scan(
        self,
        code: str,
        symbology: str | None = DEFAULT_SYMBOLOGY,
        terminator: Terminator | None = None,
    ) -> bytes:
        """Transmit one read; returns the exact bytes put on the line.

        ``symbology`` is what was read; it goes on the line only with ``aim_ids``."""
        sent = symbology if self.options.aim_ids else None
        frame = scan_frame(code, sent, terminator or self.options.terminator)
        await self.send(frame)
        self.scans.append(Scan(code, symbology, frame))
        self.log.debug("scan", code=code, symbology=symbology)
        self.changes.notify()
        return frame
