"""replies and threads: a post may answer a post, and a thread's parts are linked

Four nullable columns on posts: the ghostpost post answered (a thread's previous part), or the
platform id of a post answered that ghostpost did not publish; the thread's id (its first part's
public id) and the part's position. Existing posts answer nothing and belong to no thread.
The local platform's statuses gain the id of the status they answer.

Revision ID: 0018_threads
Revises: 0017_media
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_threads"
down_revision: str | None = "0017_media"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "posts"
FOREIGN_KEY = "fk_posts_reply_to_post_id_posts"
INDEX = "ix_posts_thread_id"


def upgrade() -> None:
    # Plain ALTER TABLE, as in 0013 and 0016: SQLite refuses to rebuild `posts` (batch mode)
    # while other tables' foreign keys point at it.
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a foreign key only inline, with the column.
        op.execute(
            f"ALTER TABLE {TABLE} ADD COLUMN reply_to_post_id INTEGER "
            f"CONSTRAINT {FOREIGN_KEY} REFERENCES posts (id)"
        )
    else:
        op.add_column(TABLE, sa.Column("reply_to_post_id", sa.Integer()))
        op.create_foreign_key(op.f(FOREIGN_KEY), TABLE, TABLE, ["reply_to_post_id"], ["id"])
    op.add_column(TABLE, sa.Column("reply_to_platform_id", sa.String(200)))
    op.add_column(TABLE, sa.Column("thread_id", sa.String(36)))
    op.add_column(TABLE, sa.Column("thread_position", sa.Integer()))
    op.create_index(INDEX, TABLE, ["thread_id"])
    # Existing windows tag only a thread's first part (no thread existed before).
    op.add_column(
        "windows",
        sa.Column("tag_every_part", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # The local platform's statuses answer one another as Mastodon's do.
    op.add_column("local_statuses", sa.Column("in_reply_to_id", sa.Integer()))


def downgrade() -> None:
    op.drop_column("windows", "tag_every_part")
    op.drop_column("local_statuses", "in_reply_to_id")
    op.drop_index(INDEX, TABLE)
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(FOREIGN_KEY), TABLE, type_="foreignkey")
    for name in ("thread_position", "thread_id", "reply_to_platform_id", "reply_to_post_id"):
        op.drop_column(TABLE, name)
