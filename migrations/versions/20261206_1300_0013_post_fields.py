"""post fields: a post's content warning, visibility, language and sensitive flag

Mastodon clients send these with a status; ghostpost used to accept and drop them. A post now
keeps each in its own column: the content warning as the writer gave it and as sent (the policy
may add the disclosure tag to it), the visibility asked of the platform, the language and the
sensitive flag. Existing posts were all sent public, without a warning or language.

Revision ID: 0013_post_fields
Revises: 0012_mastodon_apps
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_post_fields"
down_revision: str | None = "0012_mastodon_apps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy): SQLite adds and drops columns in place (3.35+), and a
    # copied `posts` could not be dropped under the foreign keys pointing at it.
    op.add_column("posts", sa.Column("content_warning", sa.Text(), nullable=False, server_default=""))
    op.add_column(
        "posts", sa.Column("final_content_warning", sa.Text(), nullable=False, server_default="")
    )
    op.add_column(
        "posts",
        sa.Column("visibility", sa.String(length=20), nullable=False, server_default="public"),
    )
    op.add_column("posts", sa.Column("language", sa.String(length=35), nullable=True))
    op.add_column(
        "posts", sa.Column("sensitive", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    for name in ("sensitive", "language", "visibility", "final_content_warning", "content_warning"):
        op.drop_column("posts", name)
