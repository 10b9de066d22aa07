"""SKU GTINs, minimum shelf life, picked units with their lots and dates

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 11:00:00.000000

A SKU's barcode that is a GTIN (right check digit) becomes its first GTIN, so a
catalogue loaded before GS1 scanning keeps matching its units.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from biip import ParseError
from biip.gtin import Gtin

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("skus", sa.Column("min_shelf_life_days", sa.Integer(), nullable=True))
    op.create_table(
        "sku_gtins",
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["sku"], ["skus.sku"], name="fk_sku_gtins_sku_skus", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("gtin", name="pk_sku_gtins"),
    )
    op.create_index("ix_sku_gtins_sku", "sku_gtins", ["sku"])
    op.create_table(
        "picked_units",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("lot", sa.String(length=20), nullable=True),
        sa.Column("use_by", sa.Date(), nullable=True),
        sa.Column("serial", sa.String(length=20), nullable=True),
        sa.Column("station", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_picked_units"),
    )
    op.create_index("ix_picked_units_order_id", "picked_units", ["order_id"])
    op.create_index("ix_picked_units_lot", "picked_units", ["lot"])

    conn = op.get_bind()
    skus = sa.table("skus", sa.column("sku", sa.String), sa.column("barcode", sa.String))
    gtins = sa.table("sku_gtins", sa.column("gtin", sa.String), sa.column("sku", sa.String))
    rows = conn.execute(sa.select(skus.c.sku, skus.c.barcode).where(skus.c.barcode.is_not(None)))
    found: dict[str, str] = {}
    for sku, barcode in rows:
        try:
            gtin = Gtin.parse(barcode).as_gtin_14()
        except ParseError:
            continue  # an in-house barcode, not a GTIN: matched as before, by itself
        found.setdefault(gtin, sku)
    if found:
        conn.execute(sa.insert(gtins), [{"gtin": g, "sku": s} for g, s in found.items()])


def downgrade() -> None:
    op.drop_index("ix_picked_units_lot", table_name="picked_units")
    op.drop_index("ix_picked_units_order_id", table_name="picked_units")
    op.drop_table("picked_units")
    op.drop_index("ix_sku_gtins_sku", table_name="sku_gtins")
    op.drop_table("sku_gtins")
    op.drop_column("skus", "min_shelf_life_days")
