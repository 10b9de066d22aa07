"""station ownership: station leases, controller instances, floor requests

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("down", sa.Boolean(), nullable=False),
        sa.Column("down_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
    )
    op.create_table(
        "controller_instances",
        sa.Column("instance", sa.String(length=64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("instance", name=op.f("pk_controller_instances")),
    )
    op.create_table(
        "floor_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("station", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_floor_requests")),
    )
    op.create_index("ix_floor_requests_pending", "floor_requests", ["station", "state"])


def downgrade() -> None:
    op.drop_index("ix_floor_requests_pending", table_name="floor_requests")
    op.drop_table("floor_requests")
    op.drop_table("controller_instances")
    op.drop_table("stations")
