"""inventory accuracy: pick faces, count tasks, move tasks, stock adjustments

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pick_faces",
        sa.Column("location", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("min_qty", sa.Integer(), nullable=False),
        sa.Column("max_qty", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("min_qty >= 0", name=op.f("ck_pick_faces_min_nonneg")),
        sa.CheckConstraint(
            "max_qty > 0 AND max_qty >= min_qty", name=op.f("ck_pick_faces_max_over_min")
        ),
        sa.ForeignKeyConstraint(
            ["location"], ["locations.code"], name=op.f("fk_pick_faces_location_locations")
        ),
        sa.ForeignKeyConstraint(["sku"], ["skus.sku"], name=op.f("fk_pick_faces_sku_skus")),
        sa.PrimaryKeyConstraint("location", name=op.f("pk_pick_faces")),
    )
    op.create_index(op.f("ix_pick_faces_sku"), "pick_faces", ["sku"])
    op.create_table(
        "count_tasks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=32), nullable=False),
        sa.Column("station", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("first_delta", sa.Integer(), nullable=True),
        sa.Column("first_by", sa.String(length=64), nullable=True),
        sa.Column("last_delta", sa.Integer(), nullable=True),
        sa.Column("last_by", sa.String(length=64), nullable=True),
        sa.Column("counted", sa.Integer(), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_count_tasks")),
    )
    op.create_index("ix_count_tasks_station_state", "count_tasks", ["station", "state"])
    op.create_index("ix_count_tasks_pile", "count_tasks", ["location", "sku", "state"])
    op.create_table(
        "move_tasks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("src", sa.String(length=32), nullable=False),
        sa.Column("dst", sa.String(length=32), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("station", sa.String(length=80), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_move_tasks")),
    )
    op.create_index("ix_move_tasks_station_state", "move_tasks", ["station", "state"])
    op.create_table(
        "stock_adjustments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("count_id", sa.Integer(), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=32), nullable=False),
        sa.Column("book", sa.Integer(), nullable=False),
        sa.Column("counted", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("value_minor", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("counted_by", sa.String(length=64), nullable=False),
        sa.Column("accepted_by", sa.String(length=64), nullable=False),
        sa.Column("replanned", sa.JSON(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_adjustments")),
    )
    op.create_index(op.f("ix_stock_adjustments_at"), "stock_adjustments", ["at"])
    op.create_index(op.f("ix_stock_adjustments_count_id"), "stock_adjustments", ["count_id"])
    op.create_index(
        "ix_stock_adjustments_pile_at", "stock_adjustments", ["location", "sku", "at"]
    )
    op.create_index("ix_stock_moves_kind_at", "stock_moves", ["kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_stock_moves_kind_at", table_name="stock_moves")
    op.drop_table("stock_adjustments")
    op.drop_table("move_tasks")
    op.drop_table("count_tasks")
    op.drop_index(op.f("ix_pick_faces_sku"), table_name="pick_faces")
    op.drop_table("pick_faces")
