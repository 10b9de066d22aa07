"""outbox rows to publish now wake the relay (PostgreSQL NOTIFY)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 21:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows with a deferral are the controller's: it publishes them itself right after
# commit, so they must not wake the relay. PostgreSQL folds repeats of the same
# notification within a transaction: one wake-up per commit, however many rows.
FUNCTION = """
CREATE FUNCTION wcs_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wcs_outbox', '');
    RETURN NULL;
END
$$
"""
TRIGGER = """
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH ROW
WHEN (NEW.deferred_until IS NULL) EXECUTE FUNCTION wcs_outbox_notify()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: the relay polls
    op.execute(FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS wcs_outbox_notify()")
