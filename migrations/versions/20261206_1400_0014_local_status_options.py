"""local status options: the local platform keeps a status's content warning, visibility,
language and sensitive flag

`local` is ghostpost's own Mastodon-like server; it used to refuse every option. It now shows
a content warning in front of the text, marks unlisted statuses and sets the language, so it
keeps them. Existing statuses were all public, without a warning or language.

Revision ID: 0014_local_status_options
Revises: 0013_post_fields
Create Date: 2026-12-06 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_local_status_options"
down_revision: str | None = "0013_post_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "local_statuses"


def upgrade() -> None:
    # Plain ALTER TABLE, as in 0013: SQLite adds and drops columns in place (3.35+).
    op.add_column(TABLE, sa.Column("content_warning", sa.Text(), nullable=False, server_default=""))
    op.add_column(
        TABLE,
        sa.Column("visibility", sa.String(length=20), nullable=False, server_default="public"),
    )
    op.add_column(TABLE, sa.Column("language", sa.String(length=35), nullable=True))
    op.add_column(
        TABLE, sa.Column("sensitive", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    for name in ("sensitive", "language", "visibility", "content_warning"):
        op.drop_column(TABLE, name)
