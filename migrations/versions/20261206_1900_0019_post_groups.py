"""post groups: one compose, several accounts

The posts one compose makes for several accounts share an unguessable group id; a post page
lists the others of its group (indexed). Existing posts were made alone (NULL).

Revision ID: 0019_post_groups
Revises: 0018_threads
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_post_groups"
down_revision: str | None = "0018_threads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "posts"
INDEX = "ix_posts_group_id"


def upgrade() -> None:
    # Plain ALTER TABLE, as in 0013 and 0016: SQLite refuses to rebuild `posts`.
    op.add_column(TABLE, sa.Column("group_id", sa.String(36)))
    op.create_index(INDEX, TABLE, ["group_id"])


def downgrade() -> None:
    op.drop_index(INDEX, TABLE)
    op.drop_column(TABLE, "group_id")
