"""screens: alert assignment, device status history, QC photos, repeated delivery attempts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "device_status_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_status_history")),
    )
    op.create_index(
        "ix_device_status_history_device", "device_status_history", ["device_id", "at"]
    )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("assigned_to", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("assigned_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("assigned_at", TS, nullable=True))
    with op.batch_alter_table("qc_checks") as batch:
        batch.add_column(sa.Column("photo", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("photo_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("fleet_stops") as batch:
        batch.add_column(
            sa.Column("attempt", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )


def downgrade() -> None:
    op.drop_index("ix_device_status_history_device", table_name="device_status_history")
    op.drop_table("device_status_history")
    with op.batch_alter_table("fleet_stops") as batch:
        batch.drop_column("attempt")
    with op.batch_alter_table("qc_checks") as batch:
        batch.drop_column("photo_sha256")
        batch.drop_column("photo")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("assigned_at")
        batch.drop_column("assigned_by")
        batch.drop_column("assigned_to")
