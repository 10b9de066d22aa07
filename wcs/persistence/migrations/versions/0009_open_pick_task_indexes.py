"""partial indexes on open and lit pick tasks

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "state IN ('open', 'lit')"
LIT = "state = 'lit'"


def upgrade() -> None:
    op.create_index(
        "ix_pick_tasks_open",
        "pick_tasks",
        ["batch_id", "seq"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_pick_tasks_lit",
        "pick_tasks",
        ["batch_id", "sku"],
        postgresql_where=sa.text(LIT),
        sqlite_where=sa.text(LIT),
    )


def downgrade() -> None:
    op.drop_index("ix_pick_tasks_lit", table_name="pick_tasks")
    op.drop_index("ix_pick_tasks_open", table_name="pick_tasks")
