"""SKU category, price and product variants (substitutes and exchanges)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 09:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("skus") as batch:
        batch.add_column(sa.Column("category", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("price_minor", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("product", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("variant", sa.String(length=100), nullable=True))
        batch.create_index(batch.f("ix_skus_category"), ["category"], unique=False)
        batch.create_index(batch.f("ix_skus_product"), ["product"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("skus") as batch:
        batch.drop_index(batch.f("ix_skus_product"))
        batch.drop_index(batch.f("ix_skus_category"))
        batch.drop_column("variant")
        batch.drop_column("product")
        batch.drop_column("currency")
        batch.drop_column("price_minor")
        batch.drop_column("category")
