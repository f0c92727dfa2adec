"""partial post indexes: only the posts that have a thread, a group or a deletion

Most posts have no thread, no group and no deletion asked: their NULLs filled three indexes
that no query reads (every query on them asks for a value, or IS NOT NULL), and cost each
create three more b-tree writes (on SQLite about 3 of its 25 WAL pages per commit). The
indexes now hold the non-NULL rows only; `col = :value` and `col IS NOT NULL` still use them
(SQLite and PostgreSQL both prove `col IS NOT NULL` from `col = :value`).

Revision ID: 0024_partial_post_indexes
Revises: 0023_guards
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_partial_post_indexes"
down_revision: str | None = "0023_guards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "posts"
#: (index, column), each made partial: WHERE column IS NOT NULL.
INDEXES = (
    ("ix_posts_deletion_requested_at", "deletion_requested_at"),
    ("ix_posts_thread_id", "thread_id"),
    ("ix_posts_group_id", "group_id"),
)


def upgrade() -> None:
    for index, column in INDEXES:
        op.drop_index(index, TABLE)
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(index, TABLE, [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for index, column in INDEXES:
        op.drop_index(index, TABLE)
        op.create_index(index, TABLE, [column])
