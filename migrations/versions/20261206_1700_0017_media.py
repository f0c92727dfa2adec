"""media: uploaded images, the images of a post, and a window's alt-text rule

`media_uploads` holds what was uploaded (who, content hash, format, size, alt text) and the post
it was attached to; `post_media` the images of a post in order, as approved and sent. The local
platform's statuses keep their images (by hash). Windows gain `alt_text_required` (true for
every existing window: images did not exist before).

Revision ID: 0017_media
Revises: 0016_post_deletion
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ghostpost.db.base import UTCDateTime

revision: str = "0017_media"
down_revision: str | None = "0016_post_deletion"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("uploaded_by", sa.String(length=120), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("mime_type", sa.String(length=40), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("alt_text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_media_uploads_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_media_uploads_post_id_posts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_uploads")),
        sa.UniqueConstraint("public_id", name=op.f("uq_media_uploads_public_id")),
    )
    op.create_index(op.f("ix_media_uploads_uploaded_by"), "media_uploads", ["uploaded_by"])
    op.create_index(op.f("ix_media_uploads_created_at"), "media_uploads", ["created_at"])
    op.create_index(op.f("ix_media_uploads_post_id"), "media_uploads", ["post_id"])
    op.create_table(
        "post_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.String(length=40), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("alt_text", sa.Text(), nullable=False),
        sa.Column("mime_type", sa.String(length=40), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name=op.f("fk_post_media_post_id_posts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_media")),
        sa.UniqueConstraint("post_id", "position", name=op.f("uq_post_media_post_id_position")),
    )
    op.add_column(
        "windows",
        sa.Column("alt_text_required", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        "local_statuses",
        sa.Column("media", sa.JSON(), nullable=False, server_default="[]"),
    )


def downgrade() -> None:
    # Plain ALTER TABLE (SQLite >= 3.35 drops columns): rebuilding `windows` (batch mode) is
    # refused by SQLite while other tables' foreign keys point at it.
    op.drop_column("local_statuses", "media")
    op.drop_column("windows", "alt_text_required")
    op.drop_table("post_media")
    for name in ("post_id", "created_at", "uploaded_by"):
        op.drop_index(op.f(f"ix_media_uploads_{name}"), "media_uploads")
    op.drop_table("media_uploads")
