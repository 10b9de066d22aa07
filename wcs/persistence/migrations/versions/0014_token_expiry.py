"""api token expiry and last use

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 12:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
# Tokens issued before expiry existed get the default lifetime from today, not from
# their creation: nobody is locked out by the upgrade itself.
EXISTING_TOKEN_TTL = timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", TS, nullable=True))
        batch.add_column(sa.Column("last_used_at", TS, nullable=True))
        batch.create_index(batch.f("ix_api_tokens_name"), ["name"], unique=False)
    tokens = sa.table("api_tokens", sa.column("expires_at", TS), sa.column("revoked_at", TS))
    op.execute(
        tokens.update()
        .where(tokens.c.expires_at.is_(None), tokens.c.revoked_at.is_(None))
        .values(expires_at=datetime.now(UTC) + EXISTING_TOKEN_TTL)
    )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index(batch.f("ix_api_tokens_name"))
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
