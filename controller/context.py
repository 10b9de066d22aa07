"""What a handler sees while one micro-batch is being committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.index import FloorIndex
from wcs.contract.payloads import COMMAND_MODELS
from wcs.contract.topics import Topics
from wcs.ids import new_id
from wcs.persistence.orders import raise_alert
from wcs.persistence.outbox import OutboxMessage, enqueue
from wcs.persistence.tables import activity, device_commands
from wcs.settings import Settings


@dataclass
class BatchContext:
    conn: AsyncConnection
    topics: Topics
    floor: FloorIndex
    settings: Settings
    now: datetime
    actor: str
    down_stations: set[str]
    cause: str | None = None  # msg_id of the event being handled
    sku_cache: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    activity_rows: list[dict[str, Any]] = field(default_factory=list)

    async def command(
        self, device_id: str, name: str, *, subject: str | None = None, **fields: Any
    ) -> str:
        """Queue a device command; it is sent after this batch commits."""
        model = COMMAND_MODELS[name]
        cmd_id = new_id("c")
        payload = model(cmd_id=cmd_id, ts=self.now, cause=self.cause, **fields)
        raw = payload.to_json()
        await enqueue(self.conn, [OutboxMessage(self.topics.dev_cmd(device_id, name), raw)])
        await self.conn.execute(
            insert(device_commands).values(
                cmd_id=cmd_id,
                device_id=device_id,
                name=name,
                subject=subject,
                payload=raw.decode(),
                created_at=self.now,
            )
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

    async def flush(self) -> None:
        if self.activity_rows:
            await self.conn.execute(insert(activity), self.activity_rows)
            self.activity_rows.clear()
