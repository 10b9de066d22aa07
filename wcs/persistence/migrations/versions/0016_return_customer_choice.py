"""the customer's choice for a return: refund or exchange, and the variants

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 09:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("returns") as batch:
        batch.add_column(sa.Column("customer_choice", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("exchange_skus", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("returns") as batch:
        batch.drop_column("exchange_skus")
        batch.drop_column("customer_choice")
