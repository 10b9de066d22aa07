"""What a handler sees while one micro-batch is being committed.

Handlers write through ``conn`` for anything they must read back within the batch;
append-only rows (commands, activity, stock moves) are buffered here and written
with one statement each at ``flush`` — the difference between a few and a dozen
round trips per event on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from controller.index import FloorIndex
from controller.store import SqlStore
from wcs.contract.payloads import COMMAND_MODELS
from wcs.contract.topics import Topics
from wcs.ids import new_id
from wcs.persistence.orders import raise_alert
from wcs.persistence.outbox import OutboxMessage
from wcs.settings import Settings

# Commands whose acknowledgement changes what happens next: they go to the command
# log so the ack can be matched. Lights are re-sent on the next event anyway.
LOGGED_COMMANDS = frozenset({"print", "route", "weigh", "tare", "zero"})


@dataclass
class BatchContext:
    conn: AsyncConnection
    topics: Topics
    floor: FloorIndex
    settings: Settings
    now: datetime
    actor: str
    down_stations: set[str]
    store: SqlStore
    cause: str | None = None  # msg_id of the event being handled
    sku_cache: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    activity_rows: list[dict[str, Any]] = field(default_factory=list)
    messages: list[OutboxMessage] = field(default_factory=list)
    command_rows: list[dict[str, Any]] = field(default_factory=list)
    move_rows: list[dict[str, Any]] = field(default_factory=list)
    # Units taken ahead for this batch's scans, by id() of the scan event (None: the
    # batched take found nothing for it; the handler finds out why).
    taken: dict[int, Any] = field(default_factory=dict)

    async def command(
        self, device_id: str, name: str, *, subject: str | None = None, **fields: Any
    ) -> str:
        """Queue a device command; it is written with the batch and sent after commit."""
        model = COMMAND_MODELS[name]
        cmd_id = new_id("c")
        payload = model(cmd_id=cmd_id, ts=self.now, cause=self.cause, **fields)
        raw = payload.to_json()
        self.messages.append(OutboxMessage(self.topics.dev_cmd(device_id, name), raw))
        if name in LOGGED_COMMANDS:
            self.command_rows.append(
                {
                    "cmd_id": cmd_id,
                    "device_id": device_id,
                    "name": name,
                    "subject": subject,
                    "payload": raw.decode(),
                    "created_at": self.now,
                }
            )
        return cmd_id

    def record(
        self,
        kind: str,
        *,
        ok: bool = True,
        order_id: str | None = None,
        device_id: str | None = None,
        station: str | None = None,
        **detail: Any,
    ) -> None:
        self.activity_rows.append(
            {
                "at": self.now,
                "kind": kind,
                "ok": ok,
                "order_id": order_id,
                "device_id": device_id,
                "station": station,
                "detail": detail or None,
            }
        )

    def stock_move(
        self, sku: str, location: str | None, kind: str, qty: int, order_id: str | None
    ) -> None:
        self.move_rows.append(
            {
                "sku": sku,
                "location": location,
                "kind": kind,
                "qty": qty,
                "order_id": order_id,
                "actor": self.actor,
                "at": self.now,
            }
        )

    async def alert(self, code: str, severity: str, message: str, subject: str | None) -> None:
        await raise_alert(
            self.conn,
            self.topics,
            code=code,
            severity=severity,
            message_text=message,
            subject=subject,
            at=self.now,
        )

    def mark(self) -> tuple[int, int, int, int]:
        return (
            len(self.activity_rows),
            len(self.messages),
            len(self.command_rows),
            len(self.move_rows),
        )

    def rewind(self, mark: tuple[int, int, int, int]) -> None:
        """Forget what an event buffered when its savepoint is rolled back."""
        del self.activity_rows[mark[0] :]
        del self.messages[mark[1] :]
        del self.command_rows[mark[2] :]
        del self.move_rows[mark[3] :]

    async def flush(self) -> None:
        await self.store.flush(
            self.now, self.messages, self.command_rows, self.move_rows, self.activity_rows
        )
        self.messages.clear()
        self.command_rows.clear()
        self.move_rows.clear()
        self.activity_rows.clear()
