"""Tables of the monitoring subsystem (alert lifecycle).

``alerts`` (core) records that an alert was raised and whether someone acknowledged
it. Rule-driven alerts also end on their own when their condition clears; that end is
recorded here, one row per resolved alert, so the alert row itself stays as raised.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from wcs.persistence.models import Base, BigId, Timestamp


class AlertResolution(Base):
    __tablename__ = "alert_resolutions"

    alert_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    resolved_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    # Who or what ended it: "condition cleared" from the engine, or a person's name.
    resolved_by: Mapped[str] = mapped_column(String(64))
