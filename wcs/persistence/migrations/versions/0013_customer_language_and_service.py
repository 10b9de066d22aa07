"""customer language, order corrections, used customer links

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("lang", sa.String(length=35), nullable=True))
    op.create_table(
        "order_corrections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=False),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_corrections_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_corrections")),
    )
    op.create_index(
        op.f("ix_order_corrections_order_id"), "order_corrections", ["order_id"], unique=False
    )
    op.create_table(
        "link_uses",
        sa.Column("link_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=24), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("used_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("link_id", name=op.f("pk_link_uses")),
    )
    op.create_index(op.f("ix_link_uses_order_id"), "link_uses", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_link_uses_order_id"), table_name="link_uses")
    op.drop_table("link_uses")
    op.drop_index(op.f("ix_order_corrections_order_id"), table_name="order_corrections")
    op.drop_table("order_corrections")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("lang")
