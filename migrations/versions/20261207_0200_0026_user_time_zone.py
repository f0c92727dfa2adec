"""user time zone: the IANA zone each staff user reads times in (NULL: not chosen yet, UTC)

Revision ID: 0026_user_time_zone
Revises: 0025_notifications
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_user_time_zone"
down_revision: str | None = "0025_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column: plain ADD COLUMN, no table rebuild on SQLite; existing users have
    # chosen nothing yet, so their next sign-in takes the browser's zone.
    op.add_column("users", sa.Column("time_zone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of users would trip the foreign keys
    # that point at it.
    op.drop_column("users", "time_zone")
