"""alert resolutions

Revision ID: 0004_alert_resolutions
Revises: 0003
Create Date: 2026-11-25 20:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004_alert_resolutions'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('alert_resolutions',
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_resolutions_alert_id_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('alert_id', name=op.f('pk_alert_resolutions'))
    )
    with op.batch_alter_table('alert_resolutions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_resolutions_resolved_at'), ['resolved_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('alert_resolutions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_resolutions_resolved_at'))

    op.drop_table('alert_resolutions')
