"""partial platform URL index: only the posts that have a URL

A post has a platform URL once it is published; the verify page looks a post up by its exact
URL, never by NULL. The index held every unpublished post's NULL too, so each create wrote
one more b-tree (on SQLite one of its ~23 WAL pages per commit; on PostgreSQL one more index
insertion) for rows no query reads. It now holds the rows with a URL only; `platform_url =
:value` still uses it (SQLite and PostgreSQL both prove `IS NOT NULL` from `= :value`), as
0024 did for three other post indexes.

Revision ID: 0027_partial_platform_url_index
Revises: 0026_user_time_zone
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027_partial_platform_url_index"
down_revision: str | None = "0026_user_time_zone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX, TABLE, COLUMN = "ix_posts_platform_url", "posts", "platform_url"


def upgrade() -> None:
    op.drop_index(INDEX, TABLE)
    where = sa.text(f"{COLUMN} IS NOT NULL")
    op.create_index(INDEX, TABLE, [COLUMN], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_index(INDEX, TABLE)
    op.create_index(INDEX, TABLE, [COLUMN])
