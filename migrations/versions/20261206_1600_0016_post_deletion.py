"""post deletion: the principal may take a published post back

A published post keeps its state, writer and text; three columns say that the principal asked
to delete it (when, who: committed before the platform is called) and when the platform
confirmed it gone. Existing posts were never deleted.

Revision ID: 0016_post_deletion
Revises: 0015_export_indexes
Create Date: 2026-12-06 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ghostpost.db.base import UTCDateTime

revision: str = "0016_post_deletion"
down_revision: str | None = "0015_export_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "posts"


FOREIGN_KEY = "fk_posts_deletion_requested_by_users"
INDEX = "ix_posts_deletion_requested_at"


def upgrade() -> None:
    # Plain ALTER TABLE, as in 0013: rebuilding `posts` (batch mode) is refused by SQLite
    # while other tables' foreign keys point at it.
    op.add_column(TABLE, sa.Column("deletion_requested_at", UTCDateTime(timezone=True)))
    op.add_column(TABLE, sa.Column("deleted_at", UTCDateTime(timezone=True)))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a foreign key only inline, with the column.
        op.execute(
            f"ALTER TABLE {TABLE} ADD COLUMN deletion_requested_by INTEGER "
            f"CONSTRAINT {FOREIGN_KEY} REFERENCES users (id)"
        )
    else:
        op.add_column(TABLE, sa.Column("deletion_requested_by", sa.Integer()))
        op.create_foreign_key(
            op.f(FOREIGN_KEY), TABLE, "users", ["deletion_requested_by"], ["id"]
        )


    op.create_index(INDEX, TABLE, ["deletion_requested_at"])


def downgrade() -> None:
    op.drop_index(INDEX, TABLE)
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(FOREIGN_KEY), TABLE, type_="foreignkey")
    for name in ("deleted_at", "deletion_requested_by", "deletion_requested_at"):
        op.drop_column(TABLE, name)
